"""A small series with one structure to follow: a bright blob that appears, drifts and ends."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from mediastream.dicom.phantom import phantom_datasets

__all__ = ["CENTRE", "SIZE", "SLICES", "blob_series"]

SLICES, SIZE = 16, 64
CENTRE = (32.0, 24.0)  # (row, col) of the blob on its middle slice


def blob_series() -> list[Dataset]:
    """A bright blob (200 HU in 40 HU, noise SD 5) on slices 4-11 that drifts 1 px a slice."""
    rng = np.random.default_rng(7)
    y, x = np.ogrid[:SIZE, :SIZE]
    out = []
    for k, ds in enumerate(phantom_datasets(n_slices=SLICES, size=SIZE)):
        hu = np.full((SIZE, SIZE), 40.0) + rng.normal(0, 5, (SIZE, SIZE))
        if 4 <= k <= 11:
            radius = 9 - abs(k - 7.5)
            hu[(y - CENTRE[0]) ** 2 + (x - (CENTRE[1] + k - 8)) ** 2 <= radius**2] = 200
        stored = np.round(hu - float(ds.RescaleIntercept)).astype(np.uint16)
        ds.PixelData = stored.tobytes()
        out.append(ds)
    return out
