"""Process-wide configuration: the one place that changes state shared by a whole process.

Applied once at start-up — `server.py` calls `configure_process`, upload-validation workers call
`route_pydicom_reports` in their initializer, and the test suite applies the same settings once
per session — never from the app factory, so two applications in one process do not overwrite
each other's settings. `configured` applies them for a while and restores what was there.

What is changed, and why it cannot be done per connection or per call:

* **pydicom's reports.** pydicom warns about sloppy-but-readable files (invalid VRs, odd
  padding, J2K signedness) through ``warn_and_log``, which logs the message to its ``pydicom``
  logger *and* emits it with `warnings.warn`. The log line is kept; the warning copy is ignored.
  Left alone it would be printed, or raised under ``-W error``, making a file's fate depend on
  the warning filters in force; capturing it per call needs `warnings.catch_warnings`, which
  swaps process-global state and is not thread-safe, so decodes would have to be serialised.
  Its decoders also log a traceback for every plugin that fails on a frame; the
  `FrameDecodeError` raised afterwards names every plugin's reason and is logged once per frame
  by the library, so those tracebacks are dropped.
* **ICE host addresses.** aioice gathers host candidates on every interface *except loopback*
  and has no option to choose them; `--ice-host` replaces its lookup function, so a server (or a
  test peer) gathers on exactly the addresses given, 127.0.0.1 included.
* **JPEG 2000 decoding.** pydicom's JPEG 2000 plugins hold the GIL while they decode, so render
  threads would take turns; `mediastream.dicom.codecs` adds one that does not, registered on
  pydicom's decoders here (pydicom's `add_plugin` is not thread-safe).
* **Video bitrate.** aiortc's encoders read their bitrate range from module constants; see
  `mediastream.streaming.video` for why the range is raised.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mediastream.settings import Settings
from mediastream.streaming.video import bitrate_range

# aioice and aiortc are imported inside the functions that patch them: the upload-validation
# workers call `route_pydicom_reports` and must start without loading the WebRTC stack.

__all__ = [
    "configure_process",
    "configured",
    "restrict_ice_host_addresses",
    "route_pydicom_reports",
    "set_video_bitrate",
]

_DECODER_LOGGER = "pydicom.pixels.decoders.base"
_BITRATE_NAMES = ("MIN_BITRATE", "DEFAULT_BITRATE", "MAX_BITRATE")
_original: dict[str, Callable[..., Any]] = {}  # aioice's own lookup, kept at the first patch


def _drop_tracebacks(record: logging.LogRecord) -> bool:
    return record.exc_info is None


def route_pydicom_reports() -> None:
    """Keep pydicom's log lines, ignore its duplicate `warnings`, drop decoder tracebacks."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
    decoder_log = logging.getLogger(_DECODER_LOGGER)
    if _drop_tracebacks not in decoder_log.filters:
        decoder_log.addFilter(_drop_tracebacks)


def configure_decoding() -> None:
    """What every process that reads DICOM needs: pydicom's reports routed, the JPEG 2000 plugin."""
    from mediastream.dicom import codecs

    route_pydicom_reports()
    codecs.register()


def restrict_ice_host_addresses(addresses: Sequence[str]) -> None:
    """Gather ICE host candidates on `addresses` only (aioice's own choice again when empty)."""
    import aioice.ice

    own = _original.setdefault("get_host_addresses", aioice.ice.get_host_addresses)
    if not addresses:
        aioice.ice.get_host_addresses = own
        return
    chosen = list(dict.fromkeys(addresses))

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def set_video_bitrate(max_kbps: int) -> None:
    """Let aiortc's VP8 and H.264 encoders use `bitrate_range(max_kbps)`."""
    from aiortc.codecs import h264, vpx

    low, start, top = bitrate_range(max_kbps)
    for module in (vpx, h264):
        for name, value in zip(_BITRATE_NAMES, (low, start, top), strict=True):
            setattr(module, name, value)


def configure_process(settings: Settings) -> None:
    """Apply every process-wide setting `settings` asks for; call once, at start-up."""
    configure_decoding()
    restrict_ice_host_addresses(settings.ice_hosts)
    set_video_bitrate(settings.video_kbps)


@contextlib.contextmanager
def configured(settings: Settings) -> Iterator[None]:
    """`configure_process` for a ``with`` block, then what was there before.

    For tests and benchmarks that run servers and peers in their own process. The `warnings`
    filter is left to the caller: a test runner manages its filters itself (this project's are
    in ``pyproject.toml``).
    """
    import aioice.ice
    from aiortc.codecs import h264, vpx

    lookup = aioice.ice.get_host_addresses
    bitrates = {(m, n): getattr(m, n) for m in (vpx, h264) for n in _BITRATE_NAMES}
    from mediastream.dicom import codecs

    decoder_log = logging.getLogger(_DECODER_LOGGER)
    filters = list(decoder_log.filters)
    restrict_ice_host_addresses(settings.ice_hosts)
    set_video_bitrate(settings.video_kbps)
    decoder_log.addFilter(_drop_tracebacks)
    codecs.register()  # stays: it decodes exactly as pydicom's plugins do, without the GIL
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = lookup
        for (module, name), value in bitrates.items():
            setattr(module, name, value)
        decoder_log.filters[:] = filters
