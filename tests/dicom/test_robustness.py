"""Damaged uploads: whatever the bytes, ingest answers with an outcome and rendering with a
frame or a LibraryError - never another exception (which the web layer would turn into a 500)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mediastream.dicom.errors import LibraryError
from mediastream.dicom.library import Library

from .conftest import StoreFile, pydicom_file

BASES = [
    "CT_small.dcm",  # explicit VR little endian
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "rtdose.dcm",  # multi-frame
]


def mutations(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        buf = bytearray(data)
        kind = rng.randrange(3)
        if kind == 0:  # flip some bytes in the header region, where structure lives
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(min(len(buf), 1500))] = rng.randrange(256)
        elif kind == 1:  # cut anywhere
            del buf[rng.randrange(len(buf)) :]
        else:  # overwrite a run anywhere
            start = rng.randrange(len(buf))
            buf[start : start + rng.randint(1, 64)] = bytes(rng.randrange(256) for _ in range(64))
        out.append(bytes(buf))
    return out


@pytest.mark.parametrize("base", BASES)
def test_damaged_files_never_raise(
    tmp_path: Path, store_file: StoreFile, base: str, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(base)
    library = Library(tmp_path / "lib", cache_bytes=1 << 20)
    outcomes = set()
    for i, data in enumerate(mutations(pydicom_file(base).read_bytes(), rng, 60)):
        outcome = store_file(library, data, f"{i}.dcm")
        outcomes.add(outcome.outcome)
        if outcome.outcome == "rejected":
            assert outcome.reason
            continue
        assert outcome.series_uid is not None
        info = library.get_series(outcome.series_uid)
        for index in range(info.frame_count):
            try:
                library.frame(outcome.series_uid, index)
            except LibraryError:
                pass
        library.delete_series(outcome.series_uid)
    assert "rejected" in outcomes
    # the catch-all in Library.ingest logs an error: it must not have been needed
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    assert list((library.root / ".incoming").iterdir()) == []
