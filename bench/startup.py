"""Benchmark: start-up with 2,000 stored instances, and installing the demo series.

Prints one JSON object per line (medians over repeated runs). Targets: the library of 2,000
instances listed (``Library(...)`` + ``load()`` + ``list_series()``) in <= 5 s; the demo series
(48 slices of 512x512, generation included) installed in < 5 s.

The 2,000 instances are real phantom slices at 64x64 with fresh UIDs, 20 series of 100 slices,
stored once through `Library.ingest_dataset` into a temporary folder. Start-up is timed with the
index journal in place (the normal case) and with it deleted (a full header rescan, what a lost
or corrupt index costs). The files are in the page cache after generation, as on a warm server.

Run from the repository root: ``.venv/bin/python bench/startup.py``
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydicom.uid import generate_uid  # noqa: E402

from bench._timing import report  # noqa: E402
from mediastream.dicom.demo import install_demo  # noqa: E402
from mediastream.dicom.library import Library  # noqa: E402
from mediastream.dicom.phantom import phantom_datasets  # noqa: E402
from mediastream.dicom.store import INDEX_NAME  # noqa: E402

SERIES, SLICES, SIZE = 20, 100, 64


def generate(root: Path) -> float:
    """Store SERIES x SLICES phantom instances under `root`; return seconds per instance."""
    library = Library(root, cache_bytes=0)
    library.load()
    slices = list(phantom_datasets(SLICES, SIZE))
    elapsed = 0.0
    for _ in range(SERIES):
        series_uid = generate_uid()
        for ds in slices:
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            start = time.perf_counter()
            outcome = library.ingest_dataset(ds, filename="x.dcm")
            elapsed += time.perf_counter() - start
            assert outcome.outcome == "stored", outcome
    return elapsed / (SERIES * SLICES)


def start_up(root: Path) -> float:
    start = time.perf_counter()
    library = Library(root, cache_bytes=512 << 20)
    library.load()
    listed = library.list_series()
    elapsed = time.perf_counter() - start
    assert len(listed) == SERIES and sum(s.frame_count for s in listed) == SERIES * SLICES
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "library"
        per_instance = generate(root)
        print(
            json.dumps(
                {
                    "bench": "startup",
                    "case": "generate_2000_instances",
                    "ingest_dataset_mean_ms": round(per_instance * 1000, 3),
                }
            ),
            flush=True,
        )
        report("startup", "2000_instances_with_index", [start_up(root) for _ in range(7)])
        rescans = []
        for _ in range(5):
            (root / INDEX_NAME).unlink()
            rescans.append(start_up(root))
        report("startup", "2000_instances_rescan_without_index", rescans)

        demo_runs = []
        for run in range(3):
            library = Library(Path(tmp) / f"demo{run}", cache_bytes=0)
            library.load()
            start = time.perf_counter()
            outcomes = install_demo(library)
            demo_runs.append(time.perf_counter() - start)
            assert all(o.outcome == "stored" for o in outcomes)
        report("startup", "install_demo_48x512x512", demo_runs)


if __name__ == "__main__":
    main()
