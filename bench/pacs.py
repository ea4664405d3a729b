"""PACS benchmark (issue 13): ``server.py --dicomweb`` on a real Orthanc, on loopback; JSON lines.

Debian's Orthanc (``orthanc``, ``orthanc-dicomweb``) is started on a free port with its own
storage and holds a 100-slice 512² CT phantom series, stored with STOW-RS before any server
starts. Every case prints one JSON object per line, with its target, whether it is met, and the
load average (the machine is shared):

* ``first_frame_cold`` — a fresh server (empty memory and disk caches) whose library is the PACS:
  offer sent → first decoded video frame (<= 1.5 s median), over several fresh servers.
  ``first_frame_warm`` — the same on a server that has shown the slice before.
* ``fps_second_pass`` — image_delay 0, algorithm none: decoded frames per second over the
  second pass of the series (>= 25); ``first_pass_s`` is the first pass, which retrieves every
  instance from the PACS.
* ``list_50_series`` — ``GET /images`` with 50 series in the PACS: ``cold_ms`` is the first
  listing after 49 series were added (their metadata is read), ``median_ms`` the warm ones
  (<= 500 ms).

Run (WebRTC and Orthanc stay on loopback in a private network namespace):
``unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/pacs.py [--quick]'``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydicom.dataset import Dataset  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from bench.streamkit.capacity import first_pass, rate_fields  # noqa: E402
from bench.streamkit.measure import require_loopback_namespace  # noqa: E402
from bench.streamkit.server import Server  # noqa: E402
from bench.streamkit.viewers import viewer  # noqa: E402
from mediastream.dicom.phantom import phantom_datasets  # noqa: E402
from mediastream.process import restrict_ice_host_addresses  # noqa: E402
from tests.orthanc import Orthanc  # noqa: E402  (the same Orthanc runner as the tests)

SLICES, SIZE = 100, 512
LISTED_SERIES = 50


def emit(case: str, **fields: Any) -> None:
    load = round(os.getloadavg()[0], 1)
    print(json.dumps({"bench": "pacs", "case": case, **fields, "load1": load}), flush=True)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def file_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def stow(orthanc: Orthanc, datasets: Iterable[Dataset], batch: int = 10) -> int:
    files = [file_bytes(ds) for ds in datasets]
    for start in range(0, len(files), batch):
        orthanc.stow(files[start : start + batch])
    return len(files)


def pacs_server(orthanc: Orthanc) -> Server:
    return Server(["--dicomweb", orthanc.dicomweb, "--no-demo"])


async def first_frame(url: str) -> float:
    """Offer sent → first decoded frame, paused on the middle slice."""
    async with viewer(url) as client:
        await client.start({"algorithm": "none", "playing": False, "index": SLICES // 2})
        first = await client.log.wait_decoded()
        seconds = first.at - client.sent_at["offer"]
        await client.stop()
    return seconds


async def case_first_frame(orthanc: Orthanc, runs: int) -> None:
    cold, warm = [], []
    for _ in range(runs):
        async with pacs_server(orthanc) as server:
            cold.append(await first_frame(server.url))
            await server.wait_idle()
            warm.append(await first_frame(server.url))
    median = statistics.median(cold)
    emit(
        "first_frame_cold",
        runs=runs,
        median_ms=ms(median),
        max_ms=ms(max(cold)),
        target_median_ms=1500,
        meets_target=median <= 1.5,
    )
    emit("first_frame_warm", runs=runs, median_ms=ms(statistics.median(warm)))


async def case_fps(orthanc: Orthanc, window: float) -> None:
    async with pacs_server(orthanc) as server, viewer(server.url) as client:
        await client.start({"algorithm": "none", "image_delay": 0, "playing": True})
        began = (await client.log.wait_decoded()).at
        await first_pass(client.log, SLICES)
        passed = time.perf_counter()
        await asyncio.sleep(window)
        fields = rate_fields(client.log, passed, time.perf_counter())
        await client.stop()
    emit(
        "fps_second_pass",
        first_pass_s=round(passed - began, 2),
        first_pass_fps=round(SLICES / (passed - began), 1),
        window_s=window,
        **fields,
        target_fps=25,
        meets_target=fields["fps"] >= 25,
    )


async def case_listing(orthanc: Orthanc, runs: int) -> None:
    async with pacs_server(orthanc) as server:
        assert server.http is not None
        extra = LISTED_SERIES - 1
        for _ in range(extra):
            ds = next(phantom_datasets(n_slices=1, size=64))
            ds.SeriesInstanceUID = generate_uid()
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            stow(orthanc, [ds])

        async def listing() -> float:
            assert server.http is not None
            start = time.perf_counter()
            async with server.http.get(server.url + "/images") as response:
                body = await response.json()
            elapsed = time.perf_counter() - start
            assert response.status == 200 and len(body["series"]) == LISTED_SERIES, body
            return elapsed

        cold = await listing()
        warm = [await listing() for _ in range(runs)]
    median = statistics.median(warm)
    emit(
        "list_50_series",
        series=LISTED_SERIES,
        cold_ms=ms(cold),
        median_ms=ms(median),
        max_ms=ms(max(warm)),
        runs=runs,
        target_median_ms=500,
        meets_target=median <= 0.5,
    )


async def main(quick: bool) -> None:
    require_loopback_namespace()
    restrict_ice_host_addresses(["127.0.0.1"])  # this process's peers, like the server's
    with tempfile.TemporaryDirectory(prefix="bench-pacs-") as folder:
        orthanc = Orthanc(Path(folder) / "orthanc")
        orthanc.start()
        try:
            start = time.perf_counter()
            stored = stow(orthanc, phantom_datasets(n_slices=SLICES, size=SIZE))
            emit(
                "stow_series",
                instances=stored,
                size=SIZE,
                seconds=round(time.perf_counter() - start, 2),
            )
            await case_first_frame(orthanc, runs=2 if quick else 5)
            await case_fps(orthanc, window=4.0)
            await case_listing(orthanc, runs=5 if quick else 20)
        finally:
            orthanc.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    asyncio.run(main(parser.parse_args().quick))
