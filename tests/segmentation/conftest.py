"""Reference images for the segmentation tests: synthetic shapes and the demo phantom."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.ndimage import distance_transform_edt, map_coordinates

from mediastream.dicom.phantom import phantom_hu_slice

SOFT_TISSUE = (40.0, 400.0)
LUNG = (-600.0, 1500.0)


def window(hu: NDArray[np.int16], center: float, width: float) -> NDArray[np.uint8]:
    """The display mapping the service applies (linear VOI window to 8 bits)."""
    scaled = (hu.astype(np.float64) - (center - width / 2)) / width * 255
    return np.clip(scaled, 0, 255).astype(np.uint8)


def disc_mask(
    shape: tuple[int, int], center: tuple[float, float], radius: float
) -> NDArray[np.bool_]:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2


def noisy(image: NDArray[Any], sigma: float, seed: int) -> NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0, 255).astype(np.uint8)


def boundary_distance(
    points: NDArray[np.float64], inside: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Distance of each (row, col) point to the border between ``inside`` and outside pixels.

    The border runs half a pixel beyond the outermost inside pixel centres, so a point exactly
    on it is 0.5 px from the nearest inside and the nearest outside pixel centre.
    """
    to_inside = distance_transform_edt(~inside)
    to_outside = distance_transform_edt(inside)
    coords = points.T
    nearest = np.maximum(
        map_coordinates(to_inside, coords, order=1), map_coordinates(to_outside, coords, order=1)
    )
    return np.asarray(np.maximum(nearest - 0.5, 0.0))


@pytest.fixture(scope="session")
def hu_24() -> NDArray[np.int16]:
    return phantom_hu_slice(24)


@pytest.fixture(scope="session")
def hu_30() -> NDArray[np.int16]:
    return phantom_hu_slice(30)
