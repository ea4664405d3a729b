"""Snakes (segmentation/snakes.py, snake_engine.py) against synthetic discs and the phantom."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

import segmentation
from segmentation import EvolvingAlgorithm, SegmentationResult
from segmentation.snake_engine import CHUNK
from segmentation.snakes import SnakeParams, Snakes

from .conftest import LUNG, SOFT_TISSUE, boundary_distance, disc_mask, noisy, window

algorithm = segmentation.get_algorithm("snakes")
assert isinstance(algorithm, Snakes) and isinstance(algorithm, EvolvingAlgorithm)
SNAKES: Snakes = algorithm

SHAPE = (256, 256)
CENTRE, RADIUS = (120, 130), 40


def reddish(overlay: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Pixels the anti-aliased red line tinted: more red than green, green equal to blue."""
    blue, green, red = (overlay[..., i].astype(int) for i in range(3))
    return (red - green > 40) & (green == blue)


def params(**changes: Any) -> SnakeParams:
    parsed = SNAKES.parse_params(changes)
    assert isinstance(parsed, SnakeParams)
    return parsed


@pytest.fixture(scope="module")
def disc() -> NDArray[np.bool_]:
    return disc_mask(SHAPE, CENTRE, RADIUS)


@pytest.fixture(scope="module")
def disc_image(disc: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """A bright disc on a dark background with noise (σ 8 grey levels)."""
    return noisy(60.0 + 120.0 * disc, 8.0, seed=0)


AROUND_DISC = {"x": 125, "y": 125, "radius": 60}


@pytest.fixture(scope="module")
def disc_result(disc_image: NDArray[np.uint8]) -> SegmentationResult:
    return SNAKES.segment(disc_image, params(**AROUND_DISC), spacing=(0.5, 0.8))


def test_snake_around_a_disc_lands_on_its_boundary(
    disc_result: SegmentationResult, disc: NDArray[np.bool_]
) -> None:
    assert disc_result.contour is not None
    assert boundary_distance(disc_result.contour, disc).max() <= 2.0
    radii = np.hypot(*(disc_result.contour - CENTRE).T)
    assert abs(radii.mean() - RADIUS) < 1.0


@pytest.mark.parametrize(
    ("noise", "start"),
    [(0.0, {"x": 140, "y": 110, "radius": 80}), (8.0, {"x": 140, "y": 110, "radius": 80})],
)
def test_a_larger_offset_start_still_lands_on_the_disc(
    noise: float, start: dict[str, int], disc: NDArray[np.bool_]
) -> None:
    image = noisy(60.0 + 120.0 * disc, noise, seed=5)
    result = SNAKES.segment(image, params(**start))
    assert result.contour is not None
    assert boundary_distance(result.contour, disc).max() <= 2.0


def test_small_disc_is_found_in_an_upscaled_working_frame() -> None:
    small = disc_mask(SHAPE, (60, 70), 12)
    result = SNAKES.segment(noisy(60.0 + 120.0 * small, 8.0, seed=6), params(x=70, y=60, radius=20))
    assert result.contour is not None
    assert boundary_distance(result.contour, small).max() <= 2.0


def test_disc_stats_match_the_geometry(disc_result: SegmentationResult) -> None:
    stats: dict[str, Any] = disc_result.stats
    assert stats["area_px"] == pytest.approx(math.pi * RADIUS**2, rel=0.05)
    assert stats["area_mm2"] == pytest.approx(stats["area_px"] * 0.4)
    assert stats["perimeter_px"] == pytest.approx(2 * math.pi * RADIUS, rel=0.05)
    # 0.5 mm rows, 0.8 mm columns: the perimeter in mm lies between the two isotropic cases.
    assert 0.5 * stats["perimeter_px"] < stats["perimeter_mm"] < 0.8 * stats["perimeter_px"]
    assert stats["centroid_x"] == pytest.approx(CENTRE[1], abs=0.5)
    assert stats["centroid_y"] == pytest.approx(CENTRE[0], abs=0.5)
    assert 0 < stats["iterations"] < 2500 and stats["iterations"] % CHUNK == 0


def test_overlay_draws_the_closed_contour_in_red(
    disc_result: SegmentationResult, disc_image: NDArray[np.uint8]
) -> None:
    overlay = disc_result.overlay
    red = reddish(overlay)
    assert disc_result.contour is not None
    on_contour = np.round(disc_result.contour).astype(int)
    assert red[on_contour[:, 0], on_contour[:, 1]].mean() > 0.9
    untouched = ~cv2.dilate(red.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert np.array_equal(overlay[untouched][:, 0], disc_image[untouched])
    assert SNAKES.segment(disc_image, params(**AROUND_DISC)).stats["area_mm2"] is None


def test_phantom_lung_boundary_within_2_px(hu_30: NDArray[np.int16]) -> None:
    gray = window(hu_30, *LUNG)
    _, pieces = cv2.connectedComponents((hu_30 < -400).astype(np.uint8))
    lung = pieces == pieces[245, 164]  # the patient's right lung, image left
    result = SNAKES.segment(gray, params(x=164, y=245, radius=70, radius_y=110))
    assert result.contour is not None
    assert boundary_distance(result.contour, lung).max() <= 2.0
    assert result.stats["area_px"] == pytest.approx(lung.sum(), rel=0.03)


def test_phantom_aorta_boundary_within_2_px(hu_24: NDArray[np.int16]) -> None:
    gray = window(hu_24, *SOFT_TISSUE)
    _, pieces = cv2.connectedComponents((hu_24 > 100).astype(np.uint8))
    aorta = pieces == pieces[295, 272]
    result = SNAKES.segment(gray, params(x=270, y=293, radius=18), spacing=(0.7, 0.7))
    assert result.contour is not None
    assert boundary_distance(result.contour, aorta).max() <= 2.0


def test_evolve_yields_a_moving_contour_then_the_segment_result(
    disc_image: NDArray[np.uint8], disc_result: SegmentationResult
) -> None:
    steps = list(SNAKES.evolve(disc_image, params(**AROUND_DISC), spacing=(0.5, 0.8)))
    assert len(steps) >= 3
    assert [s.stage for s in steps] == ["evolving"] * (len(steps) - 1) + ["final"]
    iterations: list[Any] = [s.stats["iterations"] for s in steps]
    assert iterations == sorted(set(iterations)) and iterations[0] == CHUNK
    start_area: Any = SNAKES.preview(disc_image, params(**AROUND_DISC)).stats["area_px"]
    areas: list[Any] = [s.stats["area_px"] for s in steps]
    # The ellipse drawn around the disc gives way to the disc's grown outline at once, which
    # the snake then settles onto the border.
    assert start_area > 1.5 * areas[0]
    assert areas[-1] == pytest.approx(math.pi * RADIUS**2, rel=0.05)
    # The stream sees it move: consecutive chunks differ until it settles.
    assert steps[0].contour is not None and steps[1].contour is not None
    assert not np.allclose(steps[0].contour, steps[1].contour, atol=0.5)
    final = steps[-1]
    assert final.contour is not None and disc_result.contour is not None
    assert np.array_equal(final.contour, disc_result.contour)
    assert np.array_equal(final.overlay, disc_result.overlay)
    assert final.stats == disc_result.stats


def test_evolve_can_be_abandoned_midway(disc_image: NDArray[np.uint8]) -> None:
    chunks = SNAKES.evolve(disc_image, params(**AROUND_DISC))
    first = next(chunks)
    assert first.stage == "evolving"
    chunks.close()
    with pytest.raises(StopIteration):
        next(chunks)


def test_evolve_checks_its_arguments_when_called(disc_image: NDArray[np.uint8]) -> None:
    with pytest.raises(ValueError, match="x must be between 0 and 255 for this 256×256 image"):
        SNAKES.evolve(disc_image, params(x=300))


def test_max_num_iter_counts_every_stage(disc_image: NDArray[np.uint8]) -> None:
    # convergence 0: nothing stops early, so the count is the budget whatever the start.
    for limit in (1, 45, CHUNK * 4 + 7):
        run = params(**AROUND_DISC, convergence=0, max_num_iter=limit)
        steps = list(SNAKES.evolve(disc_image, run))
        assert steps[-1].stats["iterations"] == limit and steps[-1].stage == "final"
    # With no tolerance nothing converges: the whole budget is spent in the working frame.
    endless = SNAKES.segment(disc_image, params(**AROUND_DISC, convergence=0, max_num_iter=400))
    assert endless.stats["iterations"] == 400


def test_warm_start_from_the_previous_result_converges_quickly(
    disc_image: NDArray[np.uint8], disc_result: SegmentationResult, disc: NDArray[np.bool_]
) -> None:
    assert disc_result.contour is not None
    moved = np.roll(disc_image, 3, axis=1)  # the next "slice": the disc shifted 3 px right
    moved_disc = np.roll(disc, 3, axis=1)
    cold = SNAKES.segment(moved, params(**AROUND_DISC))
    warm = SNAKES.segment(moved, params(**AROUND_DISC), init=disc_result.contour)
    assert warm.contour is not None
    assert boundary_distance(warm.contour, moved_disc).max() <= 2.0
    # Both start from the structure grown under their centre (the warm start's centre), so
    # the warm start is no slower than the cold one.
    warm_iterations: Any = warm.stats["iterations"]
    assert warm_iterations <= cold.stats["iterations"]
    warm_steps = list(SNAKES.evolve(moved, params(**AROUND_DISC), init=disc_result.contour))
    assert warm_steps[-1].stats == warm.stats


def test_warm_start_is_validated(disc_image: NDArray[np.uint8]) -> None:
    with pytest.raises(ValueError, match=r"init must be a \(K, 2\) array"):
        SNAKES.segment(disc_image, params(), init=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="init must contain only finite coordinates"):
        SNAKES.segment(disc_image, params(), init=np.full((5, 2), np.nan))


def test_preview_draws_the_initial_ellipse_only(disc_image: NDArray[np.uint8]) -> None:
    preview = SNAKES.preview(disc_image, params(x=100, y=90, radius=30, radius_y=20))
    assert preview.stage == "preview" and preview.stats["iterations"] == 0
    assert preview.contour is not None
    rows, cols = preview.contour.T
    assert np.allclose(((rows - 90) / 20) ** 2 + ((cols - 100) / 30) ** 2, 1.0)
    assert preview.stats["area_px"] == pytest.approx(math.pi * 30 * 20, rel=0.01)
    on_ellipse = np.round(preview.contour).astype(int)
    assert reddish(preview.overlay)[on_ellipse[:, 0], on_ellipse[:, 1]].mean() > 0.9
    circumference: Any = preview.stats["perimeter_px"]
    assert reddish(preview.overlay).sum() < 3 * circumference


def test_preview_clips_the_ellipse_to_the_image(disc_image: NDArray[np.uint8]) -> None:
    preview = SNAKES.preview(disc_image, params(x=10, y=250, radius=100))
    assert preview.contour is not None
    assert preview.contour.min() == 0.0 and preview.contour[:, 0].max() == 255.0
    result = SNAKES.segment(disc_image, params(x=0, y=0, radius=256))
    assert result.contour is not None
    assert (result.contour >= 0).all() and (result.contour <= 255).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"x": 256}, "x must be between 0 and 255 for this 256×256 image, got 256"),
        ({"y": 300}, "y must be between 0 and 255 for this 256×256 image, got 300"),
        ({"radius": 257}, "radius must be between 1 and 256 for this 256×256 image, got 257"),
        ({"radius_y": 1000}, "radius_y must be between 0 and 256 for this 256×256 image"),
    ],
)
def test_centre_and_radius_must_fit_the_image(
    changes: dict[str, int], message: str, disc_image: NDArray[np.uint8]
) -> None:
    for call in (SNAKES.segment, SNAKES.preview):
        with pytest.raises(ValueError, match=message):
            call(disc_image, params(**changes))


def test_kernel_larger_than_the_image_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="kernel_size must be at most 7 for this 8×8 image, got 9"):
        SNAKES.segment(np.zeros((8, 8), np.uint8), params(x=4, y=4, radius=3, kernel_size=9))


def test_degenerate_inputs_do_not_crash() -> None:
    flat = np.full((40, 40), 90, np.uint8)
    for changes in ({"x": 0, "y": 0, "radius": 1}, {"x": 20, "y": 20, "radius": 1, "radius_y": 40}):
        result = SNAKES.segment(flat, params(**changes, kernel_size=1))
        assert result.contour is not None and np.isfinite(result.contour).all()
    tiny = SNAKES.segment(
        np.eye(3, dtype=np.uint8) * 255, params(x=1, y=1, radius=1, kernel_size=1)
    )
    assert tiny.contour is not None and np.isfinite(tiny.contour).all()


BASE = {"x": 128, "y": 128, "radius": 60, "max_num_iter": 600}
VARIATIONS = {
    "x": 134,
    "y": 122,
    "radius": 66,
    "radius_y": 50,
    "alpha": 0.3,
    "beta": 0.5,
    "gamma": 0.02,
    "w_line": 1.5,
    "w_edge": 0.0,
    "max_num_iter": 60,
    "convergence": 0.0,
    "kernel_size": 9,
}


@pytest.fixture(scope="module")
def square_scene() -> NDArray[np.uint8]:
    """A bright rounded square with a faint bright spot inside: every force has something to do."""
    image = np.full(SHAPE, 50.0)
    cv2.rectangle(image, (93, 93), (163, 163), 170.0, thickness=-1)
    image = cv2.GaussianBlur(image, (0, 0), 3.0)
    image[disc_mask(SHAPE, (120, 120), 6)] = 230.0
    return noisy(image, 5.0, seed=7)


@pytest.fixture(scope="module")
def base_result(square_scene: NDArray[np.uint8]) -> SegmentationResult:
    return SNAKES.segment(square_scene, params(**BASE))


def test_every_parameter_is_covered() -> None:
    assert set(VARIATIONS) == set(SnakeParams.specs())


@pytest.mark.parametrize("name", sorted(VARIATIONS))
def test_every_parameter_changes_the_result(
    name: str, square_scene: NDArray[np.uint8], base_result: SegmentationResult
) -> None:
    changed = SNAKES.segment(square_scene, params(**{**BASE, name: VARIATIONS[name]}))
    assert changed.contour is not None and base_result.contour is not None
    assert changed.contour.shape != base_result.contour.shape or not np.allclose(
        changed.contour, base_result.contour, atol=0.05
    )
    assert not np.array_equal(changed.overlay, base_result.overlay)
    if name in ("x", "y", "radius", "radius_y"):  # the start moves visibly, whatever it finds
        before = SNAKES.preview(square_scene, params(**BASE)).stats
        after = SNAKES.preview(square_scene, params(**{**BASE, name: VARIATIONS[name]})).stats
        assert before != after


def test_parameters_act_in_the_documented_direction(
    square_scene: NDArray[np.uint8], base_result: SegmentationResult
) -> None:
    base: dict[str, Any] = base_result.stats
    assert 0.85 * 70 * 70 < base["area_px"] < 70 * 70

    def stats(**changes: Any) -> dict[str, Any]:
        return SNAKES.segment(square_scene, params(**{**BASE, **changes})).stats

    # The snake starts from the outline of the structure grown under its centre, so even 10
    # iterations are close to the answer (the older snake was still a large circle then).
    early = stats(max_num_iter=10)
    assert early["iterations"] == 10 and early["area_px"] == pytest.approx(base["area_px"], rel=0.1)
    assert stats(convergence=0.0)["iterations"] == 600 > base["iterations"]
    # Without edge attraction the pressure still holds it on the square: no collapse (the
    # older snake shrank to under half the area here).
    assert stats(w_edge=0.0)["area_px"] > 0.9 * base["area_px"]
    assert stats(alpha=0.3)["area_px"] < base["area_px"]  # tension pulls it in
    assert stats(w_line=-1.5)["area_px"] > base["area_px"]  # drawn to the dark outside
    assert stats(w_line=1.5)["area_px"] < base["area_px"]  # drawn to the bright inside


def test_input_arrays_are_not_modified(square_scene: NDArray[np.uint8]) -> None:
    gray = square_scene.copy()
    background = np.dstack([gray, gray // 2, gray // 3])
    init = np.array([[100.0, 100.0], [100.0, 160.0], [160.0, 160.0], [160.0, 100.0]])
    copies = (gray.copy(), background.copy(), init.copy())
    for array in (gray, background, init):
        array.setflags(write=False)
    p = params(**BASE)
    SNAKES.segment(gray, p, background=background, init=init)
    list(SNAKES.evolve(gray, p, background=background, init=init))
    SNAKES.preview(gray, p, background=background)
    for array, copy in zip((gray, background, init), copies, strict=True):
        assert np.array_equal(array, copy)


def test_check_image_refuses_what_segment_would_refuse() -> None:
    snakes = segmentation.get_algorithm("snakes")
    params = snakes.parse_params({"x": 300, "y": 10, "radius": 20})
    snakes.check_image(params, (512, 512))  # fits
    with pytest.raises(ValueError, match="x must be between 0 and 255 for this 128×256 image"):
        snakes.check_image(params, (128, 256))
    with pytest.raises(ValueError, match="x must be between 0 and 255"):
        snakes.segment(np.zeros((128, 256), np.uint8), params)


def test_defaults_adapt_to_a_small_image() -> None:
    snakes = segmentation.get_algorithm("snakes")
    assert snakes.default_params((512, 512)) == snakes.default_params()  # the older defaults
    small = snakes.default_params((64, 80))
    assert (small.to_json()["x"], small.to_json()["y"], small.to_json()["radius"]) == (39, 31, 16)
    snakes.check_image(small, (64, 80))
