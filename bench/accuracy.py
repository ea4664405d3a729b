"""Benchmark: accuracy of the click algorithms on the real labelled series in ../shared/data.

For every labelled structure (connected piece of a label) covering at least 200 px on a slice,
click at its deepest interior point (maximum of its distance transform) and run

* ``region_grow`` from that click,
* ``snakes_click``: snakes from that click with a 5 mm radius,
* ``snakes_ellipse``: snakes from the enclosing ellipse (bounding box × 1.25, centred on it).

``values`` are the modality values (CT: HU via RescaleSlope/Intercept), ``gray`` the display
window (CT 40/400; MR the 1-99.5 percentile range), ``spacing`` the PixelSpacing. A result with
``found: false`` counts as Dice 0. Prints one JSON line per run, then per algorithm and
modality the median Dice, median mean contour distance (mm), median time and the fraction of
runs with Dice >= 0.75, with the targets. The CT is also run resampled to 512×512 (about
0.7 mm, spacing adjusted; modality ``CT-512``): that is what unseen 512² series look like, so
the figures there show whether the millimetre-based parameters carry over.

Run from the repository root: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/accuracy.py``
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._realdata import (  # noqa: E402
    contour_distance_mm,
    deepest,
    dice,
    display,
    load,
    resample,
    structures,
)
from segmentation import get_algorithm  # noqa: E402

BENCH = "accuracy"
TARGETS = {
    ("CT", "region_grow"): 0.90,
    ("CT", "snakes_click"): 0.85,
    ("CT", "snakes_ellipse"): 0.85,
    ("MR", "region_grow"): 0.80,
    ("MR", "snakes_click"): 0.80,
    ("MR", "snakes_ellipse"): 0.80,
}


def runs(
    values: NDArray[np.float32], mask: NDArray[np.bool_], spacing: tuple[float, float]
) -> dict[str, tuple[str, dict[str, int]]]:
    row, col = deepest(mask)
    rows, cols = np.nonzero(mask)
    return {
        "region_grow": ("region_grow", {"x": col, "y": row}),
        "snakes_click": ("snakes", {"x": col, "y": row, "radius": max(2, round(5 / spacing[1]))}),
        "snakes_ellipse": (
            "snakes",
            {
                "x": round((cols.min() + cols.max()) / 2),
                "y": round((rows.min() + rows.max()) / 2),
                "radius": max(1, round((np.ptp(cols) + 1) * 1.25 / 2)),
                "radius_y": max(1, round((np.ptp(rows) + 1) * 1.25 / 2)),
            },
        ),
    }


def main() -> None:
    series = [("ct-abdomen", False), ("mr-brain-tumour", False), ("ct-abdomen", True)]
    summary: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for name, fine in series:
        slices, labels = load(name)
        for k, label, mask in structures(labels):
            values, spacing, modality = slices[k]
            if fine:
                values, mask, spacing = resample(values, mask, spacing, 512)
                modality_key = "CT-512"
            else:
                modality_key = modality
            gray = display(values, modality)
            for case, (algorithm_name, raw) in runs(values, mask, spacing).items():
                algorithm = get_algorithm(algorithm_name)
                params = algorithm.parse_params(raw)
                start = time.perf_counter()
                result = algorithm.segment(gray, params, spacing=spacing, values=values)
                elapsed = time.perf_counter() - start
                found = bool(result.stats["found"]) and result.mask is not None
                score = dice(result.mask, mask) if found and result.mask is not None else 0.0
                distance = (
                    contour_distance_mm(result.mask, mask, spacing)
                    if found and result.mask is not None
                    else float("nan")
                )
                line = {
                    "bench": BENCH,
                    "series": name,
                    "modality": modality_key,
                    "slice": k,
                    "label": label,
                    "case": case,
                    "found": found,
                    "dice": round(score, 3),
                    "mean_contour_distance_mm": round(distance, 2),
                    "ms": round(elapsed * 1000, 2),
                }
                print(json.dumps(line), flush=True)
                summary.setdefault((modality_key, case), []).append((score, distance, elapsed))
    for (modality_key, case), rows in summary.items():
        scores = [r[0] for r in rows]
        distances = [r[1] for r in rows if r[1] == r[1]]
        target = TARGETS.get((modality_key.split("-")[0], case))
        median = statistics.median(scores)
        line = {
            "bench": BENCH,
            "case": f"{case}_median",
            "modality": modality_key,
            "runs": len(rows),
            "median_dice": round(median, 3),
            "fraction_dice_ge_0.75": round(sum(s >= 0.75 for s in scores) / len(scores), 3),
            "median_contour_distance_mm": round(statistics.median(distances), 2)
            if distances
            else None,
            "median_ms": round(statistics.median(r[2] for r in rows) * 1000, 2),
            "target_median_dice": target,
            "meets_target": None if target is None else median >= target,
        }
        if case == "region_grow" and modality_key.startswith("CT"):
            line["target_fraction_ge_0.75"] = 0.9
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
