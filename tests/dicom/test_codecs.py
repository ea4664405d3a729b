"""The JPEG 2000 plugin decodes exactly as pydicom's own plugins do (it only lets threads run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder

from mediastream.dicom import codecs
from mediastream.dicom.decode import decode_frame

# The folder of the files pydicom ships (get_testdata_files would also try to download more).
TEST_FILES = Path(str(get_testdata_file("CT_small.dcm"))).parent


def jpeg2000_files() -> list[str]:
    found = []
    for path in map(str, TEST_FILES.rglob("*.dcm")):
        try:
            syntax = dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        except Exception:  # broken on purpose: not this test's subject
            continue
        if syntax in codecs.SYNTAXES:
            found.append(path)
    return sorted(found)


FILES = jpeg2000_files()


def test_the_corpus_has_jpeg2000_files_and_the_plugin_is_registered() -> None:
    assert len(FILES) >= 6
    for syntax in codecs.SYNTAXES:
        assert codecs.PLUGIN in get_decoder(syntax).available_plugins


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.rsplit("/", 1)[-1])
def test_every_jpeg2000_frame_decodes_as_with_pydicoms_plugins(path: str) -> None:
    ds = dcmread(path)
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
    reference = None
    for plugin in [p for p in decoder.available_plugins if p != codecs.PLUGIN]:
        try:
            reference, _ = decoder.as_array(ds, index=0, decoding_plugin=plugin)
            break
        except Exception:  # noqa: S112 - that plugin cannot; the next may
            continue
    if reference is None:  # broken for every plugin: for ours too
        with pytest.raises(RuntimeError):
            decode_frame(Path(path), 0)
        return
    _, ours, _ = decode_frame(Path(path), 0)
    direct, _ = decoder.as_array(ds, index=0, decoding_plugin=codecs.PLUGIN)
    assert ours.dtype == reference.dtype and direct.dtype == reference.dtype
    np.testing.assert_array_equal(direct, reference)
    np.testing.assert_array_equal(ours, reference)
