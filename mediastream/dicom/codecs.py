"""A pydicom decoding plugin for JPEG 2000 that lets other threads run: imagecodecs.

pydicom's JPEG 2000 plugins (pylibjpeg-openjpeg and Pillow) hold the GIL while they decode —
both feed OpenJPEG through Python file-object callbacks — so render threads cannot decode two
JPEG 2000 frames at once. imagecodecs wraps the same OpenJPEG library with in-memory streams and
releases the GIL for the whole decode (measured in `bench/decode.py`). This module is only the
glue pydicom's plugin interface asks for (see pydicom's "decoder plugins" guide); it follows
pydicom's own pylibjpeg plugin for what the runner must be told about the decoded data, and
tests check it decodes every JPEG 2000 file pydicom ships exactly as pydicom's plugins do.

`decode.decode_frame` asks for this plugin by name (``decoding_plugin="imagecodecs"``) where it
is available; `PLUGIN` is registered on pydicom's JPEG 2000 decoders by `register` (called by
`mediastream.process`, at start-up: pydicom's `add_plugin` is not thread-safe).
"""

from __future__ import annotations

from typing import Any

import imagecodecs
from pydicom import uid
from pydicom.pixels.common import PhotometricInterpretation as PI

__all__ = ["DECODER_DEPENDENCIES", "PLUGIN", "SYNTAXES", "is_available", "register"]

PLUGIN = "imagecodecs"
SYNTAXES = (uid.JPEG2000Lossless, uid.JPEG2000)
DECODER_DEPENDENCIES = {syntax: ("numpy", "imagecodecs") for syntax in SYNTAXES}


def is_available(transfer_syntax: str) -> bool:
    """Whether this plugin can decode `transfer_syntax` here (pydicom's plugin interface)."""
    return transfer_syntax in SYNTAXES


def _decode_frame(src: bytes, runner: Any) -> bytes:
    """Decode one JPEG 2000 codestream; tell `runner` how the returned bytes are laid out."""
    # numthreads=1: the server decodes frames in parallel threads already.
    arr = imagecodecs.jpeg2k_decode(src, numthreads=1)
    # OpenJPEG undoes the multiple-component transform: YBR_ICT and YBR_RCT come back as RGB.
    if runner.photometric_interpretation in (PI.YBR_ICT, PI.YBR_RCT):
        runner.set_option("photometric_interpretation", PI.RGB)
    # The container follows the codestream's precision, as with pydicom's other J2K plugins.
    runner.set_option("bits_allocated", 8 * arr.dtype.itemsize)
    if arr.ndim == 3:
        runner.set_option("planar_configuration", 0)  # colour-by-pixel
    return bytes(arr.tobytes())


def register() -> None:
    """Add this plugin to pydicom's JPEG 2000 decoders, once (not thread-safe: at start-up)."""
    from pydicom.pixels import get_decoder

    for syntax in SYNTAXES:
        decoder = get_decoder(syntax)
        if PLUGIN not in decoder.available_plugins:
            decoder.add_plugin(PLUGIN, (__name__, "_decode_frame"))
