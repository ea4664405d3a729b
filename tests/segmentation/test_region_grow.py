"""Region growing (segmentation/region_grow.py) and what every click result carries."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

import segmentation
from segmentation.masks import fill_holes
from segmentation.region_grow import RegionGrowParams, grow_region

from .conftest import disc_mask, noisy

RG = segmentation.get_algorithm("region_grow")
SHAPE = (160, 200)
STATS = {
    "found", "reason", "area_px", "area_mm2", "perimeter_px", "perimeter_mm",
    "mean", "sd", "centroid_x", "centroid_y", "tolerance",
}  # fmt: skip


def params(**changes: Any) -> RegionGrowParams:
    parsed = RG.parse_params(changes)
    assert isinstance(parsed, RegionGrowParams)
    return parsed


def hu_scene() -> NDArray[np.float32]:
    """An "organ" (60 HU) with a bright "vessel" (200 HU) inside, on fat (-100 HU), in noise;
    a second organ of the same values joined to the first by a 2 px bridge."""
    rng = np.random.default_rng(11)
    hu = np.full(SHAPE, -100.0)
    hu[disc_mask(SHAPE, (80, 60), 35)] = 60.0
    hu[disc_mask(SHAPE, (80, 150), 30)] = 60.0
    hu[79:81, 90:125] = 60.0  # the bridge
    hu[disc_mask(SHAPE, (75, 55), 6)] = 200.0  # the vessel
    return (hu + rng.normal(0.0, 10.0, SHAPE)).astype(np.float32)


def window(hu: NDArray[np.float32], centre: float, width: float) -> NDArray[np.uint8]:
    return np.clip((hu - (centre - width / 2)) / width * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scene() -> NDArray[np.float32]:
    return hu_scene()


def test_is_listed_right_after_none() -> None:
    assert segmentation.algorithm_names()[:2] == ["none", "region_grow"]
    assert RG.label == "Region growing"


def test_schema_says_each_unit() -> None:
    units = {name: spec["unit"] for name, spec in RG.schema()["params"].items()}
    assert units == {"x": "px", "y": "px", "tolerance": "modality units", "smoothing": "mm"}
    assert "millimetres" in RG.schema()["params"]["smoothing"]["description"]
    assert RG.default_params().to_json()["tolerance"] == 0.0  # automatic


def test_defaults_click_the_centre_of_any_image() -> None:
    for shape in ((3, 3), (101, 122), (512, 512), (4096, 10)):
        p = RG.default_params(shape)
        assert isinstance(p, RegionGrowParams)
        assert (p.x, p.y) == ((shape[1] - 1) // 2, (shape[0] - 1) // 2)
        RG.check_image(p, shape)  # fits


def test_click_outside_the_image_names_the_coordinate(scene: NDArray[np.float32]) -> None:
    gray = window(scene, 40, 400)
    with pytest.raises(ValueError, match="x must be between 0 and 199 for this 160×200 image"):
        RG.segment(gray, params(x=200, y=10), values=scene)
    with pytest.raises(ValueError, match="y must be between 0 and 159 for this 160×200 image"):
        RG.segment(gray, params(x=10, y=160), values=scene)


def test_grows_the_organ_fills_the_vessel_and_stops_at_the_bridge(
    scene: NDArray[np.float32],
) -> None:
    organ = disc_mask(SHAPE, (80, 60), 35)
    result = RG.segment(window(scene, 40, 400), params(x=60, y=95), values=scene)
    assert result.mask is not None and result.mask.dtype == bool and result.mask.shape == SHAPE
    assert result.stats["found"] is True and result.stats["reason"] is None
    dice = 2 * (result.mask & organ).sum() / (result.mask.sum() + organ.sum())
    assert dice > 0.95
    assert result.mask[disc_mask(SHAPE, (75, 55), 5)].all()  # the vessel is filled
    assert not result.mask[:, 115:].any()  # nothing of the neighbour across the bridge
    assert result.contour is not None and result.contour.shape[1] == 2


def test_values_make_the_result_independent_of_the_display_window(
    scene: NDArray[np.float32],
) -> None:
    soft = RG.segment(window(scene, 40, 400), params(x=60, y=95, tolerance=50), values=scene)
    narrow = RG.segment(window(scene, 60, 80), params(x=60, y=95, tolerance=50), values=scene)
    assert soft.mask is not None and narrow.mask is not None
    assert np.array_equal(soft.mask, narrow.mask)
    # Mean and SD are of the values (HU), not of the display bytes.
    assert soft.stats["mean"] == pytest.approx(60.0, abs=8.0)
    assert soft.stats["tolerance"] == 50.0


def test_without_values_it_grows_on_gray(scene: NDArray[np.float32]) -> None:
    gray = window(scene, 40, 400)
    result = RG.segment(gray, params(x=60, y=95))
    assert result.stats["found"] is True
    assert result.stats["mean"] == pytest.approx(float(gray[result.mask].mean()), rel=1e-4)


def test_stats_keys_units_and_json(scene: NDArray[np.float32]) -> None:
    result = RG.segment(
        window(scene, 40, 400), params(x=60, y=95), values=scene, spacing=(0.5, 2.0)
    )
    stats: dict[str, Any] = result.stats
    assert set(stats) == STATS
    json.dumps(stats, allow_nan=False)
    assert stats["area_mm2"] == pytest.approx(stats["area_px"] * 1.0)
    assert stats["area_px"] == int(result.mask.sum()) if result.mask is not None else False
    assert 0.5 * stats["perimeter_px"] < stats["perimeter_mm"] < 2.0 * stats["perimeter_px"]
    assert abs(stats["centroid_x"] - 60) < 2 and abs(stats["centroid_y"] - 80) < 2


def test_nothing_found_says_why_instead_of_a_tiny_or_huge_area() -> None:
    flat = np.full((64, 64), 80, np.uint8)
    everywhere = RG.segment(flat, params(x=32, y=32))
    assert everywhere.stats["found"] is False
    assert "whole body" in str(everywhere.stats["reason"])
    assert everywhere.contour is None
    # A snake with nothing to hold it (no structure, no edges) collapses: no "0.001 px²".
    snakes = segmentation.get_algorithm("snakes")
    collapsed = snakes.segment(flat, snakes.parse_params({"x": 32, "y": 32, "radius": 10}))
    assert collapsed.stats["found"] is False
    assert "below 5 px" in str(collapsed.stats["reason"])
    assert collapsed.mask is not None and collapsed.mask.shape == (64, 64)


@pytest.mark.parametrize("name", segmentation.algorithm_names())
@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.zeros((8, 8), np.float32), r"values must be a numeric array of shape \(96, 128\)"),
        (np.zeros((96, 128, 3), np.float32), r"values must be a numeric array of shape"),
        (np.full((96, 128), "a"), r"values must be a numeric array"),
        ([[1.0]], "values must be a numeric array .* got list"),
        (np.full((96, 128), np.nan, np.float32), "values must be finite"),
        (np.full((96, 128), 1e300), "values must be finite"),
    ],
)
def test_bad_values_are_named(name: str, values: Any, message: str) -> None:
    gray = np.zeros((96, 128), np.uint8)
    algorithm = segmentation.get_algorithm(name)
    p = algorithm.default_params(gray.shape)
    with pytest.raises(ValueError, match=message):
        algorithm.segment(gray, p, values=values)


@pytest.mark.parametrize("name", segmentation.algorithm_names())
def test_no_input_is_modified(name: str, scene: NDArray[np.float32]) -> None:
    gray = window(scene, 40, 400)
    values = scene.copy()
    background = np.dstack([gray, gray // 2, gray // 3])
    for array in (gray, values, background):
        array.setflags(write=False)
    algorithm = segmentation.get_algorithm(name)
    p = algorithm.default_params(gray.shape)
    result = algorithm.segment(gray, p, values=values, background=background, spacing=(1, 1))
    assert np.array_equal(values, scene)
    assert not np.shares_memory(result.overlay, background)
    if result.mask is not None:
        assert not np.shares_memory(result.mask, values)


def test_integer_values_are_accepted_as_modality_units(scene: NDArray[np.float32]) -> None:
    gray = window(scene, 40, 400)
    as_int16 = np.round(scene).astype(np.int16)
    result = RG.segment(gray, params(x=60, y=95), values=as_int16)
    assert result.stats["found"] is True


def test_watershed_returns_labels_and_their_union() -> None:
    image = noisy(
        60.0 + 120.0 * (disc_mask((96, 128), (48, 40), 18) | disc_mask((96, 128), (48, 90), 18)),
        4.0,
        seed=2,
    )
    ws = segmentation.get_algorithm("watershed")
    result = ws.segment(image, ws.default_params())
    assert result.labels is not None and result.labels.dtype == np.int32
    assert result.mask is not None and np.array_equal(result.mask, result.labels > 0)
    assert set(np.unique(result.labels)) >= {0, 1, 2}
    assert int(result.stats["regions"]) == len(np.unique(result.labels)) - 1  # type: ignore[arg-type]


def test_fill_holes_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        mask = rng.random((30, 41)) < rng.uniform(0.2, 0.9)
        assert np.array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
    assert not fill_holes(np.zeros((5, 5), bool)).any()


def test_a_bound_keeps_the_largest_region_that_stays_inside_it() -> None:
    """A mottled blob (values 100 and 140) against tissue of 85 across a broad contact: the
    automatic tolerance alone keeps to one phase of the mottle (about 100 of its 1,961 px);
    with the ellipse drawn around the blob as ``bound`` the region is the whole blob, and
    none of the tissue outside it."""
    rng = np.random.default_rng(5)
    values = np.full(SHAPE, -50.0)
    values[20:140, 100:190] = 85.0  # the neighbour it touches
    blob = disc_mask(SHAPE, (80, 80), 25)
    values[blob] = 100.0 + 40.0 * (rng.random(SHAPE) > 0.5)[blob]
    values = (values + rng.normal(0, 4, SHAPE)).astype(np.float32)
    bound = disc_mask(SHAPE, (80, 80), 32)
    mask, tolerance = grow_region(values, (80, 80), (1.0, 1.0), bound=bound)
    assert tolerance is not None and tolerance > 0
    assert np.count_nonzero(mask & ~bound) <= 0.05 * np.count_nonzero(mask)
    overlap = 2 * np.count_nonzero(mask & blob) / (np.count_nonzero(mask) + blob.sum())
    assert overlap >= 0.9
    # An explicit tolerance is the user's: the bound does not change it.
    fixed, used = grow_region(values, (80, 80), (1.0, 1.0), tolerance=60.0, bound=bound)
    assert used == 60.0 and np.count_nonzero(fixed & ~bound) > np.count_nonzero(mask & ~bound)
