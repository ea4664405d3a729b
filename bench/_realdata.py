"""The real labelled series in ../shared/data, read as an upload would arrive (see its README).

Shared by the benchmarks: modality values (HU for CT via RescaleSlope/Intercept), the display
gray (CT window 40/400; other modalities the 1-99.5 percentile range), PixelSpacing, and the
reference masks' structures.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
from numpy.typing import NDArray
from scipy import ndimage

__all__ = [
    "DATA",
    "MIN_PX",
    "contour_distance_mm",
    "deepest",
    "dice",
    "display",
    "load",
    "resample",
    "structures",
]

# Beside the repository clone, as in CI (read-only).
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
MIN_PX = 200


def load(name: str) -> tuple[list[tuple[NDArray[np.float32], tuple[float, float], str]], Any]:
    folder = DATA / name
    slices = sorted(
        (pydicom.dcmread(p) for p in (folder / "dicom").glob("*.dcm")),
        key=lambda s: int(s.InstanceNumber),
    )
    out = []
    for s in slices:
        slope = float(getattr(s, "RescaleSlope", 1.0))
        intercept = float(getattr(s, "RescaleIntercept", 0.0))
        values = (s.pixel_array * slope + intercept).astype(np.float32)
        spacing = (float(s.PixelSpacing[0]), float(s.PixelSpacing[1]))
        out.append((values, spacing, str(s.Modality)))
    return out, np.load(folder / "labels.npz")["labels"]


def display(values: NDArray[np.float32], modality: str) -> NDArray[np.uint8]:
    if modality == "CT":
        low, high = 40.0 - 200.0, 40.0 + 200.0
    else:
        low, high = (float(v) for v in np.percentile(values, (1, 99.5)))
    return np.clip((values - low) / (high - low) * 255, 0, 255).astype(np.uint8)


def structures(labels: NDArray[np.uint8]) -> Iterator[tuple[int, int, NDArray[np.bool_]]]:
    for k in range(labels.shape[0]):
        for label in np.unique(labels[k]):
            if label == 0:
                continue
            pieces, n = ndimage.label(labels[k] == label, structure=np.ones((3, 3)))
            for i in range(1, n + 1):
                piece = pieces == i
                if piece.sum() >= MIN_PX:
                    yield k, int(label), piece


def deepest(mask: NDArray[np.bool_]) -> tuple[int, int]:
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return int(row), int(col)


def dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(1, a.sum() + b.sum()))


def contour_distance_mm(a: NDArray[np.bool_], b: NDArray[np.bool_], spacing: Any) -> float:
    """Mean symmetric distance between the two masks' borders, in mm."""
    if not a.any():
        return float("nan")
    border_a = a & ~ndimage.binary_erosion(a)
    border_b = b & ~ndimage.binary_erosion(b)
    to_b = ndimage.distance_transform_edt(~border_b, sampling=spacing)
    to_a = ndimage.distance_transform_edt(~border_a, sampling=spacing)
    return float((to_b[border_a].sum() + to_a[border_b].sum()) / (border_a.sum() + border_b.sum()))


def resample(
    values: NDArray[np.float32], mask: NDArray[np.bool_], spacing: tuple[float, float], size: int
) -> tuple[NDArray[np.float32], NDArray[np.bool_], tuple[float, float]]:
    """The slice and mask at size × size over the same field of view (finer pixels)."""
    h, w = values.shape
    fine = cv2.resize(values, (size, size), interpolation=cv2.INTER_CUBIC)
    up = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    return fine, up >= 0.5, (spacing[0] * h / size, spacing[1] * w / size)
