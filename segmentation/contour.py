"""Closed-contour geometry: ellipses, resampling, measurements and drawing.

Contours are ``(K, 2)`` float arrays of (row, col) points in image pixels, closed implicitly
(the last point connects to the first, and is not repeated).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from segmentation.base import Spacing, StatValue

__all__ = [
    "CONTOUR_BGR",
    "check_contour",
    "clip_to_image",
    "contour_stats",
    "distance_to_polygon",
    "draw_closed",
    "ellipse",
    "perimeter",
    "remove_loops",
    "resample_closed",
]

CONTOUR_BGR = (0, 0, 255)
_DRAW_SHIFT = 4  # cv2 fixed-point bits: sub-pixel accurate polylines


def ellipse(
    center: tuple[float, float], radii: tuple[float, float], n_points: int | None = None
) -> NDArray[np.float64]:
    """Points on the ellipse with ``center`` (row, col) and ``radii`` (row, col).

    By default about one point per two pixels of circumference (at least 32).
    """
    if n_points is None:
        a, b = radii
        # Ramanujan's approximation of the circumference.
        circumference = math.pi * (3 * (a + b) - math.sqrt((3 * a + b) * (a + 3 * b)))
        n_points = max(32, math.ceil(circumference / 2))
    t = np.linspace(0.0, 2 * np.pi, n_points, endpoint=False)
    return np.column_stack([center[0] + radii[0] * np.sin(t), center[1] + radii[1] * np.cos(t)])


def clip_to_image(points: NDArray[np.floating[Any]], shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Clamp (row, col) points into the image (a new array)."""
    upper = np.array([shape[0] - 1, shape[1] - 1], dtype=np.float64)
    return np.clip(np.asarray(points, dtype=np.float64), 0.0, upper)


def check_contour(points: object, name: str = "init") -> NDArray[np.float64]:
    """Validate a user-supplied (K, 2) (row, col) contour; return it as float64 (a new array)."""
    array = np.array(points, dtype=np.float64) if points is not None else None
    if array is None or array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 3:
        shape = None if array is None else array.shape
        raise ValueError(f"{name} must be a (K, 2) array of (row, col) points, K >= 3, got {shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must contain only finite coordinates")
    return array


def _segment_lengths(points: NDArray[np.float64], spacing: Spacing = (1.0, 1.0)) -> NDArray[Any]:
    steps = np.diff(np.vstack([points, points[:1]]), axis=0) * np.asarray(spacing)
    return np.hypot(steps[:, 0], steps[:, 1])


def perimeter(points: NDArray[np.float64], spacing: Spacing = (1.0, 1.0)) -> float:
    """Length of the closed polygon, in pixels or (with ``spacing``) millimetres."""
    return float(_segment_lengths(points, spacing).sum())


def resample_closed(points: NDArray[np.float64], n_points: int) -> NDArray[np.float64]:
    """``n_points`` points evenly spaced along the closed polygon's arc length."""
    lengths = _segment_lengths(points)
    keep = lengths > 1e-9  # repeated points (e.g. clipped onto a corner) add nothing
    if keep.sum() < 2:
        return np.repeat(points[:1], n_points, axis=0).astype(np.float64)
    points = points[keep]
    lengths = lengths[keep]
    closed = np.vstack([points, points[:1]])
    arc = np.concatenate([[0.0], np.cumsum(lengths)])
    at = np.linspace(0.0, arc[-1], n_points, endpoint=False)
    return np.column_stack([np.interp(at, arc, closed[:, 0]), np.interp(at, arc, closed[:, 1])])


def distance_to_polygon(points: NDArray[np.float64], polygon: NDArray[np.float64]) -> NDArray[Any]:
    """Distance from each point to the closed ``polygon`` (to its nearest edge)."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    length2 = np.maximum(np.einsum("ij,ij->i", edges, edges), 1e-12)
    # (points × edges) arrays, rows and columns handled separately to stay 2-D and fast.
    d_row = points[:, :1] - polygon[:, 0]
    d_col = points[:, 1:] - polygon[:, 1]
    t = np.clip((d_row * edges[:, 0] + d_col * edges[:, 1]) / length2, 0.0, 1.0)
    d_row -= t * edges[:, 0]
    d_col -= t * edges[:, 1]
    return np.sqrt((d_row * d_row + d_col * d_col).min(axis=1))


def _crossing_segments(points: NDArray[np.float64]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Index pairs (i, j), i < j, of non-adjacent polygon edges that properly cross."""
    start = points
    end = np.roll(points, -1, axis=0)

    def side(p: NDArray[Any], q: NDArray[Any], r: NDArray[Any]) -> NDArray[Any]:
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
            r[..., 0] - p[..., 0]
        )

    a, b = start[:, None, :], end[:, None, :]
    c, d = start[None, :, :], end[None, :, :]
    crossing = (side(a, b, c) * side(a, b, d) < 0) & (side(c, d, a) * side(c, d, b) < 0)
    i, j = np.nonzero(np.triu(crossing, 2))
    wraps = (i == 0) & (j == len(points) - 1)  # first and last edges are adjacent
    return i[~wraps], j[~wraps]


def remove_loops(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cut self-intersection loops out of a closed polygon, keeping the larger part each time.

    Snake points can overtake each other and tie small loops; left in, a loop can unfold into
    a spike when the contour is refined, and it corrupts the area.
    """
    for _ in range(len(points)):
        i, j = _crossing_segments(points)
        if i.size == 0 or len(points) <= 3:
            break
        inside = j - i  # points i+1 .. j lie between the two crossing edges
        k = int(np.argmin(np.minimum(inside, len(points) - inside)))
        first, last = int(i[k]), int(j[k])
        if inside[k] <= len(points) - inside[k]:
            points = np.vstack([points[: first + 1], points[last + 1 :]])
        else:
            points = points[first + 1 : last + 1]
    return points


def contour_stats(
    points: NDArray[np.float64], spacing: Spacing | None, iterations: int
) -> dict[str, StatValue]:
    """Enclosed area, perimeter and centroid of the closed polygon (shoelace formulas).

    Keys: ``area_px``, ``area_mm2``, ``perimeter_px``, ``perimeter_mm``, ``centroid_x``
    (column), ``centroid_y`` (row), ``iterations``; millimetre values are None without
    ``spacing``.
    """
    rows, cols = points[:, 0], points[:, 1]
    rows_next, cols_next = np.roll(rows, -1), np.roll(cols, -1)
    cross = cols * rows_next - cols_next * rows
    signed_area = 0.5 * float(cross.sum())
    area = abs(signed_area)
    if area > 1e-9:
        centroid_x = float(((cols + cols_next) * cross).sum() / (6.0 * signed_area))
        centroid_y = float(((rows + rows_next) * cross).sum() / (6.0 * signed_area))
    else:  # degenerate (collapsed) polygon: the mean point is the only sensible centre
        centroid_x, centroid_y = float(cols.mean()), float(rows.mean())
    return {
        "area_px": area,
        "area_mm2": None if spacing is None else area * spacing[0] * spacing[1],
        "perimeter_px": perimeter(points),
        "perimeter_mm": None if spacing is None else perimeter(points, spacing),
        "centroid_x": centroid_x,
        "centroid_y": centroid_y,
        "iterations": int(iterations),
    }


def draw_closed(overlay: NDArray[np.uint8], points: NDArray[np.float64]) -> None:
    """Draw the closed contour on ``overlay`` in place, anti-aliased, in red."""
    xy = np.round(points[:, ::-1] * (1 << _DRAW_SHIFT)).astype(np.int32)
    cv2.polylines(overlay, [xy], True, CONTOUR_BGR, 1, cv2.LINE_AA, _DRAW_SHIFT)
