"""Benchmark: decode + display of one 512x512 16-bit CT frame, and the per-file ingest cost.

Prints one JSON object per line (medians over repeated runs; the machine is shared and noisy).
Target: decode + display of a CT frame whose file is already in memory <= 5 ms. Also timed:
the same through `Library.frame` from disk with the cache off, and a window change on a cached
frame (what the streaming code does when only the window moves).

The "ingest" lines measure `Library.ingest` on a ~512 KB CT file already written to its temp
path: header validation, rename into place and the index append - the library's share of the
upload benchmark (which needs well under 1 ms per file on top of the write).

Run from the repository root: ``.venv/bin/python bench/decode.py``
"""

from __future__ import annotations

import copy
import io
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydicom import dcmwrite  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402

from bench._timing import report, timed  # noqa: E402
from mediastream.dicom.decode import decode_frame  # noqa: E402
from mediastream.dicom.display import Window, display_frame, prepare_frame, render  # noqa: E402
from mediastream.dicom.ingest import Limits, inspect_file  # noqa: E402
from mediastream.dicom.library import Library  # noqa: E402
from mediastream.dicom.phantom import phantom_datasets  # noqa: E402
from mediastream.process import configure_decoding  # noqa: E402


def file_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def decode_and_display(data: bytes, window: Window | None = None) -> None:
    ds, arr, photometric = decode_frame(io.BytesIO(data), 0)
    frame = display_frame(arr, ds, window, photometric=photometric)
    assert frame.gray.shape == arr.shape[:2]


def main() -> None:
    configure_decoding()  # what the server does at start-up: the JPEG 2000 plugin among others
    ct = next(iter(phantom_datasets(1)))  # 512x512 int16, intercept -1024, window presets
    ct_bytes = file_bytes(ct)
    no_presets = file_bytes(_without_windows(ct))
    runs = 50

    report("decode", "ct_512_int16", timed(lambda: decode_and_display(ct_bytes), runs))
    report(
        "decode",
        "ct_512_int16_percentile_window",
        timed(lambda: decode_and_display(no_presets), runs),
    )
    report(
        "decode",
        "ct_512_int16_explicit_window",
        timed(lambda: decode_and_display(ct_bytes, Window(-600, 1500)), runs),
    )
    ds, arr, photometric = decode_frame(io.BytesIO(ct_bytes), 0)
    prepared = prepare_frame(arr, ds, photometric=photometric)
    report(
        "decode",
        "ct_512_int16_cached_window_change",
        timed(lambda: render(prepared, Window(300, 1500)), runs),
    )
    j2k = get_testdata_file("693_J2KI.dcm")  # 512x512 16-bit JPEG 2000 (lossy)
    if j2k is not None:
        j2k_bytes = Path(str(j2k)).read_bytes()
        report("decode", "j2k_512_int16", timed(lambda: decode_and_display(j2k_bytes), 20))
        report_thread_scaling(j2k_bytes)

    with tempfile.TemporaryDirectory() as tmp:
        library = Library(Path(tmp) / "frames", cache_bytes=0)
        assert library.ingest_dataset(ct, filename="ct.dcm").outcome == "stored"
        uid = ct.SeriesInstanceUID
        report(
            "decode",
            "ct_512_int16_library_frame_uncached",
            timed(lambda: library.frame(uid, 0), runs),
        )
        source = Path(tmp) / "ct.dcm"
        source.write_bytes(ct_bytes)
        limits = Limits()
        report(
            "ingest",
            "inspect_ct_512_int16",
            timed(lambda: inspect_file(source, limits=limits), 200),
            file_bytes=len(ct_bytes),
        )
        report(
            "ingest",
            "ct_512_int16",
            _ingest_timings(Path(tmp) / "lib", ct, 200),
            file_bytes=len(ct_bytes),
        )


def _frames_per_second(data: bytes, threads: int, seconds: float) -> float:
    """JPEG 2000 frames decoded per second by `threads` threads decoding for `seconds`."""
    deadline = time.perf_counter() + seconds
    counts = [0] * threads

    def work(slot: int) -> None:
        while time.perf_counter() < deadline:
            decode_and_display(data)
            counts[slot] += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return sum(counts) / (time.perf_counter() - start)


def report_thread_scaling(data: bytes, rounds: int = 5, seconds: float = 1.0) -> None:
    """Decodes run in parallel threads (no process-wide lock): 2 threads vs 1, median ratio.

    Rounds alternate one and two threads, so a load change on the shared machine hits both.
    Target: >= 1.6x (the codecs release the GIL while they decode).
    """
    one, two = [], []
    for _ in range(rounds):
        one.append(_frames_per_second(data, 1, seconds))
        two.append(_frames_per_second(data, 2, seconds))
    ratio = statistics.median(b / a for a, b in zip(one, two, strict=True))
    line = {
        "bench": "decode",
        "case": "j2k_512_int16_two_threads",
        "one_thread_fps": round(statistics.median(one), 1),
        "two_threads_fps": round(statistics.median(two), 1),
        "speedup": round(ratio, 2),
        "target": ">= 1.6",
        "meets_target": ratio >= 1.6,
        "rounds": rounds,
    }
    print(json.dumps(line), flush=True)


def _without_windows(ds: Dataset) -> Dataset:
    out = copy.deepcopy(ds)
    for keyword in ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation"):
        delattr(out, keyword)
    return out


def _ingest_timings(root: Path, ds: Dataset, runs: int) -> list[float]:
    """Time `Library.ingest` alone: each file is in its temp path before the clock starts."""
    library = Library(root, cache_bytes=0)
    library.load()
    timings = []
    for i in range(runs + 5):
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{i + 1}"
        data = file_bytes(ds)
        temp = library.new_temp_path()
        temp.write_bytes(data)
        start = time.perf_counter()
        outcome = library.ingest(temp, filename="ct.dcm")
        elapsed = time.perf_counter() - start
        assert outcome.outcome == "stored", outcome
        if i >= 5:
            timings.append(elapsed)
    return timings


if __name__ == "__main__":
    main()
