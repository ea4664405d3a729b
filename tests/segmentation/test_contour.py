"""Contour geometry (segmentation/contour.py) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segmentation.contour import (
    clip_to_image,
    contour_stats,
    distance_to_polygon,
    ellipse,
    perimeter,
    remove_loops,
    resample_closed,
)

SQUARE = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 10.0], [10.0, 0.0]])  # (row, col)


def test_square_stats() -> None:
    stats = contour_stats(SQUARE + [5.0, 20.0], spacing=(0.5, 2.0), iterations=7)
    assert stats == {
        "area_px": 100.0,
        "area_mm2": 100.0,
        "perimeter_px": 40.0,
        "perimeter_mm": 2 * (10 * 0.5) + 2 * (10 * 2.0),
        "centroid_x": 25.0,
        "centroid_y": 10.0,
        "iterations": 7,
    }
    assert contour_stats(SQUARE[::-1], None, 0)["area_px"] == 100.0  # orientation-free


def test_collapsed_contour_has_zero_area_and_its_mean_as_centre() -> None:
    line = np.array([[1.0, 1.0], [1.0, 5.0], [1.0, 3.0]])
    stats = contour_stats(line, None, 0)
    assert stats["area_px"] == 0.0 and stats["perimeter_px"] == 8.0
    assert (stats["centroid_x"], stats["centroid_y"]) == (3.0, 1.0)


def test_ellipse_points_and_size() -> None:
    points = ellipse((50.0, 60.0), (20.0, 30.0))
    circumference = math.pi * (3 * (20 + 30) - math.sqrt((3 * 20 + 30) * (20 + 3 * 30)))
    assert len(points) == math.ceil(circumference / 2) == 80
    rows, cols = points.T
    assert np.allclose(((rows - 50) / 20) ** 2 + ((cols - 60) / 30) ** 2, 1.0)
    assert contour_stats(points, None, 0)["area_px"] == pytest.approx(math.pi * 600, rel=0.002)
    assert len(ellipse((0.0, 0.0), (1.0, 1.0))) == 32


def test_clip_to_image_clamps_into_the_pixel_grid() -> None:
    clipped = clip_to_image(np.array([[-3.0, 4.5], [9.7, 12.0]]), (8, 10))
    assert clipped.tolist() == [[0.0, 4.5], [7.0, 9.0]]


def test_resample_is_even_and_stays_on_the_polygon() -> None:
    points = resample_closed(SQUARE, 8)
    assert np.allclose(np.diff(np.vstack([points, points[:1]]), axis=0).__abs__().sum(axis=1), 5.0)
    assert np.allclose(distance_to_polygon(points, SQUARE), 0.0)
    repeated = np.vstack([SQUARE[:1], SQUARE[:1], SQUARE])  # zero-length edges are skipped
    assert np.allclose(resample_closed(repeated, 8), points)
    assert resample_closed(np.zeros((4, 2)), 5).tolist() == [[0.0, 0.0]] * 5


def test_distance_to_polygon_reference_values() -> None:
    probes = np.array([[5.0, 5.0], [-3.0, 5.0], [13.0, 14.0], [10.0, 10.0]])
    assert np.allclose(distance_to_polygon(probes, SQUARE), [5.0, 3.0, 5.0, 0.0])


def test_remove_loops_cuts_the_small_loop_of_a_figure_eight() -> None:
    # A square whose right side has a small loop tied into it.
    tangled = np.array(
        [[0, 0], [0, 10], [4, 10], [4, 12], [6, 12], [6, 10], [10, 10], [10, 0]], dtype=float
    )
    untangled = remove_loops(tangled)
    assert untangled.tolist() == tangled.tolist()  # a bump, not a loop: nothing to cut
    looped = np.array(
        [[0, 0], [0, 10], [6, 10], [6, 12], [4, 12], [4, 9], [10, 9], [10, 0]], dtype=float
    )
    cut = remove_loops(looped)
    assert len(cut) < len(looped)
    assert contour_stats(cut, None, 0)["area_px"] == pytest.approx(95.0, abs=5.0)
    assert remove_loops(SQUARE).tolist() == SQUARE.tolist()


def test_perimeter_with_anisotropic_spacing() -> None:
    assert perimeter(SQUARE) == 40.0
    assert perimeter(SQUARE, (1.0, 3.0)) == 80.0
