"""segmentation.propagation: one click, every slice the structure spans, and where it ends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from segmentation import get_algorithm
from segmentation.propagation import (
    NothingFound,
    continues,
    deepest_point,
    is_click_algorithm,
    propagate,
    seed_point,
)

SHAPE = (96, 96)
SLICES = 21


def ellipsoid_volume(
    centre: tuple[float, float, float] = (10, 48, 40),
    radii: tuple[float, float, float] = (7, 20, 14),
) -> NDArray[np.bool_]:
    z, y, x = np.ogrid[:SLICES, : SHAPE[0], : SHAPE[1]]
    return np.asarray(
        ((z - centre[0]) / radii[0]) ** 2
        + ((y - centre[1]) / radii[1]) ** 2
        + ((x - centre[2]) / radii[2]) ** 2
        <= 1
    )


def scene(truth: NDArray[np.bool_], seed: int = 1) -> tuple[list[Any], list[Any]]:
    """A structure of 120 (noise SD 8) in a body of 40, with a second, brighter blob beside."""
    rng = np.random.default_rng(seed)
    values = np.full((SLICES, *SHAPE), -1000.0, np.float32)
    y, x = np.ogrid[: SHAPE[0], : SHAPE[1]]
    body = ((y - 48) / 44) ** 2 + ((x - 48) / 46) ** 2 <= 1
    values[:, body] = 40
    values[truth] = 120
    values += rng.normal(0, 8, values.shape).astype(np.float32)
    grays = [np.clip((v + 160) / 400 * 255, 0, 255).astype(np.uint8) for v in values]
    return grays, list(values)


def dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    return float(2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)))


def test_follows_the_structure_to_both_ends() -> None:
    truth = ellipsoid_volume()
    grays, values = scene(truth)
    alg = get_algorithm("region_grow")
    params = alg.parse_params({"x": 40, "y": 48})
    result = propagate(lambda i: (grays[i], values[i]), SLICES, 10, alg, params, spacing=(1.0, 1.0))
    covered = np.flatnonzero(truth.any(axis=(1, 2)))
    assert result.indices == list(range(result.indices[0], result.indices[-1] + 1))
    # The end slices of an ellipsoid are a few pixels: the walk may stop one short of them.
    assert result.indices[0] <= covered[0] + 1 and result.indices[-1] >= covered[-1] - 1
    assert dice(result.volume_mask(), truth) > 0.9
    assert set(result.stopped) == {"down", "up"}


def test_both_directions_in_an_executor_give_the_same_result() -> None:
    truth = ellipsoid_volume()
    grays, values = scene(truth)
    alg = get_algorithm("region_grow")
    params = alg.parse_params({"x": 40, "y": 48})
    alone = propagate(lambda i: (grays[i], values[i]), SLICES, 10, alg, params)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pooled = propagate(lambda i: (grays[i], values[i]), SLICES, 10, alg, params, executor=pool)
    assert np.array_equal(alone.volume_mask(), pooled.volume_mask())


def test_one_slice_only() -> None:
    truth = ellipsoid_volume()
    grays, values = scene(truth)
    alg = get_algorithm("region_grow")
    result = propagate(
        lambda i: (grays[i], values[i]),
        SLICES,
        10,
        alg,
        alg.parse_params({"x": 40, "y": 48}),
        through=False,
    )
    assert result.indices == [10]
    assert dice(result.slices[0].mask, truth[10]) > 0.9


def test_a_structure_that_moves_is_followed() -> None:
    # A tube drifting 2 px per slice to the right.
    truth = np.zeros((SLICES, *SHAPE), bool)
    y, x = np.ogrid[: SHAPE[0], : SHAPE[1]]
    for k in range(3, 18):
        truth[k] = (y - 48) ** 2 + (x - (20 + 2 * k)) ** 2 <= 8**2
    grays, values = scene(truth)
    alg = get_algorithm("region_grow")
    result = propagate(
        lambda i: (grays[i], values[i]), SLICES, 10, alg, alg.parse_params({"x": 40, "y": 48})
    )
    assert result.indices == list(range(3, 18))
    assert dice(result.volume_mask(), truth) > 0.85


def test_snakes_propagate_with_a_warm_start() -> None:
    truth = ellipsoid_volume()
    grays, values = scene(truth)
    alg = get_algorithm("snakes")
    assert is_click_algorithm(alg)
    params = alg.parse_params({"x": 40, "y": 48, "radius": 5})
    result = propagate(lambda i: (grays[i], values[i]), SLICES, 10, alg, params, spacing=(1, 1))
    assert len(result.indices) >= 7
    assert dice(result.volume_mask(), truth) > 0.8


def test_click_on_nothing_and_bad_arguments() -> None:
    grays, values = scene(ellipsoid_volume())
    alg = get_algorithm("region_grow")

    def source(i: int) -> tuple[Any, Any]:
        return grays[i], values[i]

    flat = np.full(SHAPE, 40.0, np.float32)

    def uniform(i: int) -> tuple[Any, Any]:
        return np.full(SHAPE, 128, np.uint8), flat

    # A uniform image: whatever grows spreads over everything, which is no structure.
    with pytest.raises(NothingFound, match=r"nothing found at \(1, 1\) on slice 4"):
        propagate(uniform, SLICES, 4, alg, alg.parse_params({"x": 1, "y": 1}))
    with pytest.raises(ValueError, match="start must be between 0 and 20"):
        propagate(source, SLICES, 21, alg, alg.parse_params({"x": 40, "y": 48}))
    with pytest.raises(ValueError, match="click algorithm"):
        watershed = get_algorithm("watershed")
        propagate(source, SLICES, 4, watershed, watershed.default_params())
    with pytest.raises(ValueError, match="x must be between"):
        propagate(source, SLICES, 4, alg, alg.parse_params({"x": 500, "y": 48}))


def test_stop_rules() -> None:
    previous = np.zeros((20, 20), bool)
    previous[5:15, 5:15] = True
    assert continues(previous[:], previous) is None
    assert continues(np.zeros_like(previous), previous) == "nothing found"
    tiny = np.zeros_like(previous)
    tiny[8, 8] = True
    assert "collapsed" in str(continues(tiny, previous))
    huge = np.ones_like(previous)
    assert "exploded" in str(continues(huge, previous))
    beside = np.zeros_like(previous)
    beside[5:15, 14:20] = True
    assert "overlap" in str(continues(beside, previous))


def test_seed_is_inside_and_on_similar_values() -> None:
    ring = np.zeros((41, 41), bool)
    y, x = np.ogrid[:41, :41]
    ring[(y - 20) ** 2 + (x - 20) ** 2 <= 15**2] = True
    assert deepest_point(ring) == (20, 20)
    # The centre holds other values (a kidney's sinus): the seed moves onto the structure.
    values = np.where((y - 20) ** 2 + (x - 20) ** 2 <= 6**2, 0.0, 100.0) * np.ones((41, 41))
    row, col = seed_point(ring, values, (100.0, 5.0))
    assert ring[row, col] and values[row, col] == 100.0
