"""A slice that cannot be decoded: one error per viewer per slice, one log line per frame."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mediastream.client import StreamClient
from mediastream.dicom.library import Library
from tests.conftest import broken_second_frame
from tests.streaming.conftest import ServerFactory

PASSES = 6


async def test_a_looping_series_reports_a_broken_slice_once_per_viewer(
    make_server: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "uploads"
    library = Library(root, cache_bytes=0)
    library.load()
    ds = broken_second_frame()
    assert library.ingest_dataset(ds, filename="broken.dcm").outcome == "stored"
    server = await make_server(uploads=root)
    caplog.set_level(logging.DEBUG)

    viewers = [StreamClient(str(server.make_url(""))) for _ in range(2)]
    try:
        for viewer in viewers:
            await viewer.connect()
            await viewer.start({"series": ds.SeriesInstanceUID, "image_delay": 0.02})
        for viewer in viewers:  # the series loops: frame 0 comes back pass after pass
            for _ in range(PASSES):
                mark = len(viewer.messages)
                await viewer.frame_message(lambda m: m["index"] == 0, start=mark)
    finally:
        for viewer in viewers:
            await viewer.close()

    for viewer in viewers:
        errors = [m for m in viewer.messages if m["type"] == "error"]
        assert [e["error"] for e in errors] == ["decode_failed"], errors
        assert "cannot decode frame 1 of SOP Instance UID" in errors[0]["detail"]
        assert not any(m["type"] == "frame" and m["index"] == 1 for m in viewer.messages)
    lines = [r for r in caplog.records if "cannot decode frame 1" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert [r for r in caplog.records if r.exc_info and r.name.startswith("pydicom")] == []
