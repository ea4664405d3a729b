"""Measuring a 3-D region: volume in mL, slices covered, bounding box and values inside.

The slice spacing comes from where the slices are (Image Position (Patient) projected on the
slice normal of Image Orientation (Patient)), never from Slice Thickness: an overlapping
series (thickness 5 mm every 2.5 mm) or a gapped one (1 mm every 5 mm) would otherwise be
counted twice or a fifth. Each slice stands for the slab half-way to its neighbours, so a
series with an uneven spacing is measured right too; on an even one this is exactly
voxel count × PixelSpacing × slice spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "VolumeMeasurement",
    "measure_volume",
    "slice_normal",
    "slice_spacing",
    "slab_thicknesses",
]


def slice_normal(orientation: Sequence[float]) -> NDArray[np.float64]:
    """The unit normal of Image Orientation (Patient) (row direction × column direction).

    Raises
    ------
    ValueError
        If ``orientation`` is not six numbers with two non-parallel direction vectors.
    """
    o = np.asarray(orientation, dtype=np.float64)
    if o.shape != (6,) or not np.isfinite(o).all():
        raise ValueError(f"orientation must be six finite numbers, got {orientation!r}")
    n = np.cross(o[:3], o[3:])
    length = float(np.linalg.norm(n))
    if length < 1e-6:
        raise ValueError(f"orientation's row and column directions are parallel: {orientation!r}")
    return np.asarray(n / length)


def _depths(
    positions: Sequence[Sequence[float]], orientation: Sequence[float]
) -> NDArray[np.float64]:
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or not np.isfinite(p).all():
        raise ValueError("positions must be (x, y, z) triples of finite numbers")
    return np.asarray(p @ slice_normal(orientation))


def slice_spacing(positions: Sequence[Sequence[float]], orientation: Sequence[float]) -> float:
    """The median distance (mm) between neighbouring slices along the normal.

    Raises
    ------
    ValueError
        Fewer than two positions, or slices that do not advance along the normal.
    """
    if len(positions) < 2:
        raise ValueError(f"positions must hold at least 2 slices, got {len(positions)}")
    steps = np.abs(np.diff(np.sort(_depths(positions, orientation))))
    spacing = float(np.median(steps))
    if not spacing > 1e-6:
        raise ValueError("positions must advance along the slice normal (they coincide)")
    return spacing


def slab_thicknesses(
    positions: Sequence[Sequence[float]], orientation: Sequence[float]
) -> NDArray[np.float64]:
    """The thickness (mm) each slice stands for: half-way to each neighbour along the normal.

    ``positions`` in display order (ascending along the normal); the end slices count their
    one neighbour's distance. Raises ``ValueError`` like :func:`slice_spacing`.
    """
    spacing = slice_spacing(positions, orientation)
    steps = np.abs(np.diff(_depths(positions, orientation)))
    steps = np.where(steps > 1e-6, steps, spacing)  # coinciding slices: the typical spacing
    before = np.concatenate([steps[:1], steps])
    after = np.concatenate([steps, steps[-1:]])
    return np.asarray((before + after) / 2)


@dataclass(frozen=True)
class VolumeMeasurement:
    """What :func:`measure_volume` finds.

    Attributes
    ----------
    voxel_count : int
    volume_ml : float
    first_slice, last_slice : int or None
        The slices covered (indices along the mask's first axis); None when empty.
    slices_covered : int
        How many slices hold part of the region.
    extent_mm : (float, float, float)
        The bounding box's size along the columns, the rows and the slices, in mm.
    mean, sd : float or None
        Of the values inside (None without values or when empty).
    """

    voxel_count: int
    volume_ml: float
    first_slice: int | None
    last_slice: int | None
    slices_covered: int
    extent_mm: tuple[float, float, float]
    mean: float | None
    sd: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "voxel_count": self.voxel_count,
            "volume_ml": self.volume_ml,
            "first_slice": self.first_slice,
            "last_slice": self.last_slice,
            "slices_covered": self.slices_covered,
            "extent_mm": list(self.extent_mm),
            "mean": self.mean,
            "sd": self.sd,
        }


def measure_volume(
    mask: NDArray[np.bool_],
    values: NDArray[np.floating[Any]] | Sequence[NDArray[np.floating[Any]] | None] | None,
    pixel_spacing: Sequence[float],
    slice_thickness: float | Sequence[float] | NDArray[np.float64],
) -> VolumeMeasurement:
    """Measure the region ``mask`` of shape (slices, M, N).

    Parameters
    ----------
    mask : ndarray of shape (S, M, N), bool
    values : ndarray of shape (S, M, N), or a sequence of S (M, N) arrays (None where a
        slice holds nothing), optional
        Modality values for the mean and SD inside.
    pixel_spacing : (float, float)
        (row, col) mm per pixel.
    slice_thickness : float or sequence of S floats
        The slice spacing (:func:`slice_spacing`) or each slice's slab
        (:func:`slab_thicknesses`), in mm.

    Raises
    ------
    ValueError
        Naming the argument whose shape or value is wrong.
    """
    if not isinstance(mask, np.ndarray) or mask.ndim != 3 or mask.dtype != np.bool_:
        raise ValueError("mask must be a 3-D bool array (slices, rows, columns)")
    row_mm, col_mm = (float(v) for v in pixel_spacing)
    if not (row_mm > 0 and col_mm > 0):
        raise ValueError(f"pixel_spacing must be two positive numbers, got {pixel_spacing!r}")
    thickness = np.broadcast_to(np.asarray(slice_thickness, dtype=np.float64), (mask.shape[0],))
    if not (np.isfinite(thickness).all() and (thickness > 0).all()):
        raise ValueError("slice_thickness must be positive and finite")
    per_slice = np.count_nonzero(mask, axis=(1, 2))
    count = int(per_slice.sum())
    volume_ml = float((per_slice * thickness).sum() * row_mm * col_mm / 1000.0)
    covered = np.flatnonzero(per_slice)
    if count == 0:
        return VolumeMeasurement(0, 0.0, None, None, 0, (0.0, 0.0, 0.0), None, None)
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 1)))
    first, last = int(covered[0]), int(covered[-1])
    extent = (
        float((cols[-1] - cols[0] + 1) * col_mm),
        float((rows[-1] - rows[0] + 1) * row_mm),
        float(thickness[first : last + 1].sum()),
    )
    mean, sd = _inside_stats(mask, values, covered)
    return VolumeMeasurement(count, volume_ml, first, last, len(covered), extent, mean, sd)


def _inside_stats(
    mask: NDArray[np.bool_],
    values: NDArray[np.floating[Any]] | Sequence[NDArray[np.floating[Any]] | None] | None,
    covered: NDArray[np.intp],
) -> tuple[float | None, float | None]:
    if values is None:
        return None, None
    total = total2 = 0.0
    n = 0
    for k in covered:
        v = values[int(k)]
        if v is None or v.shape != mask.shape[1:]:
            raise ValueError(f"values of slice {int(k)} must have shape {mask.shape[1:]}")
        inside = np.asarray(v, dtype=np.float64)[mask[k]]
        total += float(inside.sum())
        total2 += float((inside * inside).sum())
        n += inside.size
    mean = total / n
    return mean, float(np.sqrt(max(0.0, total2 / n - mean * mean)))
