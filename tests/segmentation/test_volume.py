"""segmentation.volume: mL from voxels and the slices' positions, not Slice Thickness."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.volume import measure_volume, slab_thicknesses, slice_normal, slice_spacing

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def positions(zs: list[float]) -> list[tuple[float, float, float]]:
    return [(-100.0, -50.0, z) for z in zs]


def test_spacing_comes_from_positions_along_the_normal() -> None:
    # An overlapping series: 5 mm slices every 2.5 mm; only positions know the 2.5.
    assert slice_spacing(positions([0, 2.5, 5, 7.5]), AXIAL) == pytest.approx(2.5)
    # Sagittal slices advance along x; the normal is ±x.
    sagittal = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    assert np.allclose(np.abs(slice_normal(sagittal)), [1, 0, 0])
    assert slice_spacing([(x, 3.0, 9.0) for x in (10, 13, 16)], sagittal) == pytest.approx(3)
    # An oblique stack: the spacing is along the normal, not between the z values.
    c, s = np.cos(0.3), np.sin(0.3)
    tilted = (1.0, 0.0, 0.0, 0.0, c, s)
    n = slice_normal(tilted)
    stack = [tuple(float(v) for v in k * 2.0 * n + (1.0, 2.0, 3.0)) for k in range(4)]
    assert slice_spacing(stack, tilted) == pytest.approx(2.0)


def test_volume_is_voxels_times_spacing() -> None:
    mask = np.zeros((6, 20, 30), bool)
    mask[1:5, 2:12, 3:8] = True  # 4 × 10 × 5 = 200 voxels
    measured = measure_volume(mask, None, (0.5, 0.8), 2.5)
    assert measured.voxel_count == 200
    assert measured.volume_ml == pytest.approx(200 * 0.5 * 0.8 * 2.5 / 1000)
    assert (measured.first_slice, measured.last_slice, measured.slices_covered) == (1, 4, 4)
    assert measured.extent_mm == pytest.approx((5 * 0.8, 10 * 0.5, 4 * 2.5))
    assert measured.mean is None and measured.sd is None


def test_uneven_spacing_counts_each_slab() -> None:
    thickness = slab_thicknesses(positions([0, 1, 2, 6, 10]), AXIAL)
    assert thickness == pytest.approx([1, 1, 2.5, 4, 4])
    mask = np.ones((5, 2, 2), bool)
    assert measure_volume(mask, None, (1, 1), thickness).volume_ml == pytest.approx(
        4 * (1 + 1 + 2.5 + 4 + 4) / 1000
    )


def test_mean_and_sd_of_the_values_inside() -> None:
    mask = np.zeros((2, 4, 4), bool)
    mask[0, :2, :2] = True
    mask[1, 2:, 2:] = True
    values = np.arange(32, dtype=np.float32).reshape(2, 4, 4)
    measured = measure_volume(mask, values, (1, 1), 1)
    inside = values[mask]
    assert measured.mean == pytest.approx(float(inside.mean()))
    assert measured.sd == pytest.approx(float(inside.std()))


def test_empty_mask_and_bad_arguments() -> None:
    empty = measure_volume(np.zeros((3, 4, 4), bool), None, (1, 1), 1)
    assert empty.volume_ml == 0 and empty.first_slice is None and empty.slices_covered == 0
    with pytest.raises(ValueError, match="mask"):
        measure_volume(np.zeros((4, 4), bool), None, (1, 1), 1)
    with pytest.raises(ValueError, match="pixel_spacing"):
        measure_volume(np.zeros((1, 4, 4), bool), None, (0, 1), 1)
    with pytest.raises(ValueError, match="at least 2"):
        slice_spacing(positions([0]), AXIAL)
    with pytest.raises(ValueError, match="coincide"):
        slice_spacing(positions([3, 3]), AXIAL)
    with pytest.raises(ValueError, match="parallel"):
        slice_normal((1, 0, 0, 1, 0, 0))
