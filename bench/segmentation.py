"""Benchmark: segmentation of a 512x512 slice of the demo CT phantom.

Prints one JSON object per line (medians over repeated runs; the machine is shared and noisy).
Targets (docs/segmentation.md): watershed <= 12 ms per slice, all steps included; snakes with
default parameters <= 150 ms per slice; the snake preview <= 5 ms.

Cases:

* ``watershed`` - slice 24, soft-tissue window (40/400), default parameters.
* ``snakes_default`` - slice 24, soft-tissue window, default parameters (x=100, y=100, r=50:
  the older service's start, which on this phantom lies in the air, so the snake collapses).
* ``snakes_aorta`` / ``snakes_lung`` - the same defaults started around a structure: the aorta
  (slice 24) and the right lung in the lung window (-600/1500, slice 30); ``max_error_px`` is the
  final contour's largest distance from the structure's true border (HU threshold).
* ``snakes_lung_warm`` - slice 31 started from slice 30's contour (what a playing stream does).
* ``snakes_chunk`` - one ``next()`` of ``evolve`` (what the stream waits for per picture).
* ``snakes_preview`` - the initial ellipse only.
* ``snakes_older_service`` - the baseline: ``active_contour`` called as the older service did,
  on the whole preprocessed slice with 400 points and up to 2,500 iterations (few runs: seconds).
* ``region_grow_512`` / ``snakes_click_512`` / ``snakes_ellipse_512`` - real anatomy at the
  size the stream sees: the real CT of ../shared/data resampled to 512×512 (about 0.7 mm,
  spacing adjusted), HU as ``values``, window 40/400 as ``gray``; one run per labelled
  structure of every fourth slice (click at its deepest point; snakes with a 5 mm radius from
  the click, or the bounding box × 1.25 ellipse). Targets: region_grow <= 30 ms, snakes (final
  contour) <= 150 ms, medians; ``median_dice`` shows that the timed runs found the structure.

Run from the repository root: ``.venv/bin/python bench/segmentation.py``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import distance_transform_edt, map_coordinates
from skimage.segmentation import active_contour

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._realdata import deepest, dice, display, load, resample, structures  # noqa: E402
from bench._timing import report, timed  # noqa: E402
from mediastream.dicom.phantom import phantom_hu_slice  # noqa: E402
from segmentation import get_algorithm  # noqa: E402
from segmentation.contour import ellipse  # noqa: E402
from segmentation.preprocess import smooth  # noqa: E402
from segmentation.snakes import Snakes  # noqa: E402

BENCH = "segmentation"
SOFT_TISSUE, LUNG = (40.0, 400.0), (-600.0, 1500.0)


def window(hu: NDArray[np.int16], center: float, width: float) -> NDArray[np.uint8]:
    scaled = (hu.astype(np.float64) - (center - width / 2)) / width * 255
    return np.clip(scaled, 0, 255).astype(np.uint8)


def max_error(contour: NDArray[np.float64], inside: NDArray[np.bool_]) -> float:
    """Largest distance from a contour point to the border of ``inside`` (half a pixel out)."""
    to_inside = map_coordinates(distance_transform_edt(~inside), contour.T, order=1)
    to_outside = map_coordinates(distance_transform_edt(inside), contour.T, order=1)
    return round(float(np.maximum(np.maximum(to_inside, to_outside) - 0.5, 0).max()), 2)


def structure(hu: NDArray[np.int16], mask: NDArray[np.bool_], seed: tuple[int, int]) -> Any:
    _, pieces = cv2.connectedComponents(mask.astype(np.uint8))
    return pieces == pieces[seed]


def main() -> None:
    hu_24, hu_30, hu_31 = (phantom_hu_slice(i) for i in (24, 30, 31))
    soft_24 = window(hu_24, *SOFT_TISSUE)
    lung_30, lung_31 = window(hu_30, *LUNG), window(hu_31, *LUNG)
    spacing = (0.7, 0.7)

    watershed = get_algorithm("watershed")
    ws_params = watershed.default_params()
    result = watershed.segment(soft_24, ws_params, spacing=spacing)
    report(
        BENCH,
        "watershed",
        timed(lambda: watershed.segment(soft_24, ws_params, spacing=spacing), runs=40),
        limit_ms=12,
        regions=result.stats["regions"],
    )

    snakes = get_algorithm("snakes")
    assert isinstance(snakes, Snakes)
    defaults = snakes.default_params()
    result = snakes.segment(soft_24, defaults)
    area = result.stats["area_px"]
    assert isinstance(area, float)
    report(
        BENCH,
        "snakes_default",
        timed(lambda: snakes.segment(soft_24, defaults), runs=25),
        limit_ms=150,
        iterations=result.stats["iterations"],
        area_px=round(area, 1),
    )

    aorta = snakes.parse_params({"x": 270, "y": 293, "radius": 18})
    result = snakes.segment(soft_24, aorta)
    assert result.contour is not None
    report(
        BENCH,
        "snakes_aorta",
        timed(lambda: snakes.segment(soft_24, aorta), runs=25),
        limit_ms=150,
        iterations=result.stats["iterations"],
        max_error_px=max_error(result.contour, structure(hu_24, hu_24 > 100, (295, 272))),
    )

    lung = snakes.parse_params({"x": 164, "y": 245, "radius": 70, "radius_y": 110})
    lung_result = snakes.segment(lung_30, lung)
    assert lung_result.contour is not None
    report(
        BENCH,
        "snakes_lung",
        timed(lambda: snakes.segment(lung_30, lung), runs=25),
        limit_ms=150,
        iterations=lung_result.stats["iterations"],
        max_error_px=max_error(lung_result.contour, structure(hu_30, hu_30 < -400, (245, 164))),
    )

    previous = lung_result.contour
    warm = snakes.segment(lung_31, lung, init=previous)
    assert warm.contour is not None
    report(
        BENCH,
        "snakes_lung_warm",
        timed(lambda: snakes.segment(lung_31, lung, init=previous), runs=25),
        iterations=warm.stats["iterations"],
        cold_iterations=snakes.segment(lung_31, lung).stats["iterations"],
        max_error_px=max_error(warm.contour, structure(hu_31, hu_31 < -400, (245, 164))),
    )

    chunks: list[float] = []
    for _ in range(5):
        steps = snakes.evolve(lung_30, lung)
        while True:
            start = time.perf_counter()
            if next(steps, None) is None:
                break
            chunks.append(time.perf_counter() - start)
    report(BENCH, "snakes_chunk", chunks)

    report(
        BENCH,
        "snakes_preview",
        timed(lambda: snakes.preview(soft_24, defaults), runs=50),
        limit_ms=5,
    )

    # The older service: active_contour on the whole preprocessed slice, 400 points, up to
    # 2,500 iterations, the same snake parameters and scikit-image's default convergence.
    older_input = smooth(soft_24, 3)
    older_init = ellipse((100.0, 100.0), (50.0, 50.0), n_points=400)

    def older_service() -> None:
        active_contour(
            older_input, older_init, alpha=0.015, beta=10, gamma=0.001, max_num_iter=2500
        )

    report(BENCH, "snakes_older_service", timed(older_service, runs=3, warmup=0), max_num_iter=2500)

    real_ct_512()


def real_ct_512() -> None:
    """Click algorithms on the real CT resampled to 512×512: time and Dice per run."""
    slices, labels = load("ct-abdomen")
    cases: dict[str, tuple[list[float], list[float]]] = {}
    for k, _, mask in structures(labels):
        if k % 4:
            continue
        values, spacing, _ = slices[k]
        values, mask, spacing = resample(values, mask, spacing, 512)
        gray = display(values, "CT")
        row, col = deepest(mask)
        rows, cols = np.nonzero(mask)
        ellipse_params = {
            "x": round((cols.min() + cols.max()) / 2),
            "y": round((rows.min() + rows.max()) / 2),
            "radius": round((np.ptp(cols) + 1) * 1.25 / 2),
            "radius_y": round((np.ptp(rows) + 1) * 1.25 / 2),
        }
        runs = {
            "region_grow_512": ("region_grow", {"x": col, "y": row}),
            "snakes_click_512": ("snakes", {"x": col, "y": row, "radius": round(5 / spacing[1])}),
            "snakes_ellipse_512": ("snakes", ellipse_params),
        }
        for case, (name, raw) in runs.items():
            algorithm = get_algorithm(name)
            params = algorithm.parse_params(raw)

            def run(
                algorithm: Any = algorithm,
                params: Any = params,
                gray: Any = gray,
                spacing: Any = spacing,
                values: Any = values,
            ) -> Any:
                return algorithm.segment(gray, params, spacing=spacing, values=values)

            timings = timed(run, runs=3, warmup=1)
            result = run()
            found = result.stats["found"] and result.mask is not None
            times, scores = cases.setdefault(case, ([], []))
            times.extend(timings)
            scores.append(dice(result.mask, mask) if found else 0.0)
    for case, (times, scores) in cases.items():
        limit = 30 if case.startswith("region_grow") else 150
        report(
            BENCH,
            case,
            times,
            limit_ms=limit,
            structures=len(scores),
            median_dice=round(float(np.median(scores)), 3),
        )


if __name__ == "__main__":
    main()
