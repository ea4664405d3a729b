"""Watershed (segmentation/watershed.py) against synthetic references and the demo phantom."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

import segmentation
from segmentation.watershed import BOUNDARY_BGR, WatershedParams

from .conftest import SOFT_TISSUE, disc_mask, noisy, window

WATERSHED = segmentation.get_algorithm("watershed")
SHAPE = (200, 300)
LEFT, RIGHT = ((100, 110), 50), ((100, 195), 45)  # (centre, radius): they overlap by 10 px


def run(image: NDArray[np.uint8], **changes: Any) -> segmentation.SegmentationResult:
    return WATERSHED.segment(image, WATERSHED.parse_params(changes))


def red(overlay: NDArray[np.uint8]) -> NDArray[np.bool_]:
    return np.all(overlay == BOUNDARY_BGR, axis=2)


def outline(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    return mask & (inner == 0)


@pytest.fixture(scope="module")
def touching_discs() -> NDArray[np.uint8]:
    discs = disc_mask(SHAPE, *LEFT) | disc_mask(SHAPE, *RIGHT)
    return noisy(40.0 + 150.0 * discs, 4.0, seed=1)


@pytest.fixture(scope="module")
def two_tone_blob() -> NDArray[np.uint8]:
    """A grey disc with a brighter disc overlapping most of it: one blob, no neck, two objects."""
    grey = disc_mask(SHAPE, (100, 130), 50)
    bright = disc_mask(SHAPE, (100, 175), 50) & ~grey
    image = np.full(SHAPE, 30.0)
    image[grey] = 120.0
    image[bright] = 220.0
    return noisy(image, 5.0, seed=2)


def test_two_touching_discs_become_two_regions(touching_discs: NDArray[np.uint8]) -> None:
    result = run(touching_discs)
    assert result.stats["regions"] == 2
    # The larger disc's region, against its drawn area (the split runs through the overlap).
    left_area = disc_mask(SHAPE, *LEFT).sum()
    largest: Any = result.stats["largest_area_px"]
    assert abs(largest - left_area) < 0.05 * left_area
    border = red(result.overlay)
    # A border crosses the waist between the discs (columns 150-160 at the centre row) ...
    assert border[90:111, 150:161].any()
    # ... and the outlines follow the discs: 95 % of the outline pixels are within 2 px of red.
    near_red = cv2.dilate(border.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    both = disc_mask(SHAPE, *LEFT) | disc_mask(SHAPE, *RIGHT)
    assert near_red[outline(both)].mean() > 0.95


def test_threshold_ratio_changes_the_region_count(touching_discs: NDArray[np.uint8]) -> None:
    # The waist is ~20 px from the border, the centres 45-50 px: a low ratio keeps one marker.
    assert run(touching_discs, threshold_ratio=0.2).stats["regions"] == 1
    assert run(touching_discs, threshold_ratio=0.5).stats["regions"] == 2
    assert run(touching_discs, threshold_ratio=0.0).stats["regions"] == 1


def test_canny_edges_separate_touching_objects_of_different_brightness(
    two_tone_blob: NDArray[np.uint8],
) -> None:
    without = run(two_tone_blob, edge_threshold=0)
    with_edges = run(two_tone_blob)
    assert without.stats["regions"] == 1
    assert with_edges.stats["regions"] == 2
    grey = disc_mask(SHAPE, (100, 130), 50)
    largest: Any = with_edges.stats["largest_area_px"]
    assert abs(largest - grey.sum()) < 0.05 * grey.sum()
    # The border between the two follows the grey disc's right-hand arc.
    arc = outline(grey) & ~disc_mask(SHAPE, (100, 175), 50)
    near_red = cv2.dilate(red(with_edges.overlay).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    inner_arc = outline(grey) & disc_mask(SHAPE, (100, 175), 48)
    assert near_red[inner_arc].mean() > 0.9 and near_red[arc].mean() > 0.9


def test_edge_threshold_decides_which_edges_count() -> None:
    grey = disc_mask(SHAPE, (100, 130), 50)
    image = np.full(SHAPE, 30.0)
    image[grey] = 150.0
    image[disc_mask(SHAPE, (100, 175), 50) & ~grey] = 185.0  # a faint step of 35 grey levels
    faint = noisy(image, 3.0, seed=4)
    assert run(faint, edge_threshold=60).stats["regions"] == 2
    assert run(faint, edge_threshold=400).stats["regions"] == 1


def test_kernel_size_removes_specks_smaller_than_it(touching_discs: NDArray[np.uint8]) -> None:
    specked = touching_discs.copy()
    corners = [(10, 10), (10, 280), (180, 10), (180, 280), (10, 150)]
    for row, col in corners:
        specked[row : row + 9, col : col + 9] = 200
    fine, coarse = run(specked, kernel_size=1), run(specked, kernel_size=11)
    assert fine.stats["regions"] == 7  # two discs and five 9×9 specks
    coarse_regions: Any = coarse.stats["regions"]
    assert coarse_regions < 7
    for row, col in corners:  # an 11×11 opening removes every speck
        assert red(fine.overlay)[row - 2 : row + 11, col - 2 : col + 11].any()
        assert not red(coarse.overlay)[row - 2 : row + 11, col - 2 : col + 11].any()
    assert not np.array_equal(
        run(specked, kernel_size=3).overlay, run(specked, kernel_size=5).overlay
    )


def test_area_in_mm2_uses_both_spacings(touching_discs: NDArray[np.uint8]) -> None:
    result = WATERSHED.segment(touching_discs, WatershedParams(), spacing=(0.5, 0.8))
    largest: Any = result.stats["largest_area_px"]
    assert result.stats["largest_area_mm2"] == pytest.approx(largest * 0.4)
    assert run(touching_discs).stats["largest_area_mm2"] is None


def test_overlay_is_the_image_or_background_plus_red_borders(
    touching_discs: NDArray[np.uint8],
) -> None:
    plain = run(touching_discs)
    border = red(plain.overlay)
    assert 0 < border.sum() < 0.05 * border.size
    grey = np.repeat(touching_discs[:, :, None], 3, axis=2)
    assert np.array_equal(plain.overlay[~border], grey[~border])
    assert not border[[0, -1], :].any() and not border[:, [0, -1]].any()

    background = np.zeros((*SHAPE, 3), np.uint8)
    background[..., 0] = 90
    on_colour = WATERSHED.segment(touching_discs, WatershedParams(), background=background)
    assert np.array_equal(red(on_colour.overlay), border)
    assert np.array_equal(on_colour.overlay[~border], background[~border])
    assert (background[..., 2] == 0).all()  # the caller's background is not drawn on


def test_images_without_contrast_have_no_regions() -> None:
    for value in (0, 128, 255):
        result = run(np.full((40, 50), value, np.uint8))
        assert result.stats == {"regions": 0, "largest_area_px": 0, "largest_area_mm2": None}
        assert not red(result.overlay).any()


def test_kernel_larger_than_the_image_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match="kernel_size must be at most 9 for this 10×12 image, got 11"
    ):
        run(np.zeros((10, 12), np.uint8), kernel_size=11)


def test_phantom_aorta_and_vertebra_are_outlined(hu_24: NDArray[np.int16]) -> None:
    gray = window(hu_24, *SOFT_TISSUE)
    result = WATERSHED.segment(gray, WatershedParams(), spacing=(0.7, 0.7))
    regions: Any = result.stats["regions"]
    assert regions >= 3  # body, aorta, spine at least
    near_red = cv2.dilate(red(result.overlay).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    # Contrast-filled aorta (150 HU) inside soft tissue, and the bone of the vertebral body.
    _, pieces = cv2.connectedComponents((hu_24 > 100).astype(np.uint8))
    aorta = pieces == pieces[295, 272]
    vertebra = pieces == pieces[345, 256]
    assert 400 < aorta.sum() < 700
    assert near_red[outline(aorta)].mean() > 0.95
    assert near_red[outline(vertebra)].mean() > 0.9
