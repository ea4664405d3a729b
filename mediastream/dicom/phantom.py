"""A deterministic synthetic CT phantom: the demo series a fresh server starts with.

The phantom is an axial series through the lower thorax and upper abdomen, drawn with filled
ellipses at plausible Hounsfield units (air -1000, lung -850, fat -100, soft tissue 30-60,
contrast-filled aorta 150, cancellous bone 300, cortical bone 900) plus a little noise and partial
volume blur, so the segmenters have real structure to find: lungs that shrink towards the
diaphragm, a heart, liver, spleen, kidneys, the spine and ribs. Everything is derived from the slice
index and a fixed seed; two runs produce identical pixels and UIDs.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import cv2
import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

__all__ = [
    "DEMO_DESCRIPTION",
    "PIXEL_SPACING_MM",
    "SLICE_THICKNESS_MM",
    "phantom_datasets",
    "phantom_hu_slice",
    "phantom_hu_volume",
]

DEMO_DESCRIPTION = "Demo phantom (synthetic)"
DEFAULT_SLICES = 48
DEFAULT_SIZE = 512
PIXEL_SPACING_MM = 0.7
SLICE_THICKNESS_MM = 5.0
RESCALE_INTERCEPT = -1024
_SEED = 20261127

# Window presets carried in the files (Window Center / Width / Explanation).
WINDOWS: tuple[tuple[float, float, str], ...] = (
    (40.0, 400.0, "SOFT TISSUE"),
    (-600.0, 1500.0, "LUNG"),
    (300.0, 1500.0, "BONE"),
)

_AIR, _LUNG, _FAT, _MUSCLE, _BLOOD = -1000, -850, -100, 45, 40
_LIVER, _SPLEEN, _KIDNEY, _AORTA, _CSF = 60, 50, 30, 150, 10
_CANCELLOUS, _CORTICAL, _RIB = 300, 900, 700


def _ellipse(
    img: NDArray[np.float32],
    center: tuple[float, float],
    axes: tuple[float, float],
    value: float,
    angle: float = 0.0,
) -> None:
    """Fill an ellipse given in a 512-pixel frame, scaled to the image size."""
    scale = img.shape[0] / DEFAULT_SIZE
    if min(axes) * scale < 0.5:
        return
    # cv2 takes integer geometry; a shift of 4 fractional bits keeps sub-pixel sizes smooth.
    shift = 4
    c = (round(center[0] * scale * 16), round(center[1] * scale * 16))
    a = (round(axes[0] * scale * 16), round(axes[1] * scale * 16))
    cv2.ellipse(
        img, c, a, angle, 0, 360, float(value), thickness=-1, lineType=cv2.LINE_AA, shift=shift
    )


def _bump(t: float, start: float, end: float) -> float:
    """A smooth 0 → 1 → 0 profile over [start, end] (0 outside): organ size along z."""
    if t <= start or t >= end:
        return 0.0
    u = (t - start) / (end - start)
    return float(np.sin(np.pi * u) ** 0.5)


def phantom_hu_slice(
    index: int, n_slices: int = DEFAULT_SLICES, size: int = DEFAULT_SIZE
) -> NDArray[np.int16]:
    """Return slice `index` of the phantom in Hounsfield units.

    Parameters
    ----------
    index : int
        Slice number, 0 (most caudal, lowest z) to ``n_slices - 1`` (most cranial): the order in
        which the library sorts the series along its slice normal.
    n_slices : int
        Number of slices in the whole series; organ extents scale with it.
    size : int
        Rows and columns of the square slice.

    Returns
    -------
    ndarray of shape (size, size), int16
        Hounsfield units.
    """
    if not 0 <= index < n_slices:
        raise ValueError(f"index must be between 0 and {n_slices - 1}, got {index}")
    t = 1.0 - index / max(n_slices - 1, 1)  # 0 at the top (cranial) end, 1 at the bottom
    img = np.full((size, size), _AIR, dtype=np.float32)

    # Body: skin-and-fat outline with muscle inside; slightly wider towards the abdomen.
    bx, by = 215 + 10 * t, 150 + 8 * t
    _ellipse(img, (256, 262), (bx, by), _FAT)
    _ellipse(img, (256, 262), (bx - 14, by - 12), _MUSCLE)

    # Ribs: a ring of small bright ellipses just inside the body wall, in the thoracic slices.
    if t < 0.8:
        phase = 0.35 * np.sin(2 * np.pi * t * 3)
        for k in range(14):
            ang = np.pi * (0.1 + 0.8 * (k % 7) / 6) + phase * 0.05
            side = -1 if k < 7 else 1
            rx = 256 + side * (bx - 26) * np.sin(ang)
            ry = 262 - (by - 22) * np.cos(ang)
            _ellipse(img, (rx, ry), (7, 5), _RIB, angle=float(np.degrees(ang)))

    # Lungs: air-filled, largest in the upper slices, gone below the diaphragm.
    lung = _bump(t, -0.6, 0.72)
    if lung > 0:
        for side in (-1, 1):
            _ellipse(img, (256 + side * 92, 245), (62 * lung, 105 * lung), _LUNG, angle=side * 8)

    # Heart (anterior, left of the patient = right of the image).
    heart = _bump(t, 0.1, 0.6)
    if heart > 0:
        _ellipse(img, (285, 205), (70 * heart, 58 * heart), _BLOOD, angle=-25)

    # Liver (patient's right = image left), spleen, kidneys in the abdomen.
    liver = _bump(t, 0.45, 1.3)
    if liver > 0:
        _ellipse(img, (185, 250), (105 * liver, 95 * liver), _LIVER, angle=15)
    spleen = _bump(t, 0.55, 0.95)
    if spleen > 0:
        _ellipse(img, (355, 300), (38 * spleen, 55 * spleen), _SPLEEN, angle=-30)
    kidney = _bump(t, 0.7, 1.4)
    if kidney > 0:
        for side in (-1, 1):
            _ellipse(
                img, (256 + side * 78, 330), (26 * kidney, 42 * kidney), _KIDNEY, angle=side * 20
            )

    # Aorta in front of the spine, and the spine itself with its canal.
    _ellipse(img, (272, 295), (13, 13), _AORTA)
    _ellipse(img, (256, 345), (27, 24), _CORTICAL)
    _ellipse(img, (256, 345), (23, 20), _CANCELLOUS)
    _ellipse(img, (256, 382), (20, 13), _CORTICAL)  # posterior arch
    _ellipse(img, (256, 379), (9, 8), _CSF)  # spinal canal
    _ellipse(img, (256, 403), (6, 10), _CORTICAL)  # spinous process

    # Partial-volume blur and quantum noise, both seeded by the slice index.
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.8)
    rng = np.random.default_rng(_SEED + index)
    img += rng.normal(0.0, 8.0, size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), -1024, 3071).astype(np.int16)


def phantom_hu_volume(
    n_slices: int = DEFAULT_SLICES, size: int = DEFAULT_SIZE
) -> NDArray[np.int16]:
    """Return the whole phantom, shape (n_slices, size, size), in Hounsfield units."""
    return np.stack([phantom_hu_slice(i, n_slices, size) for i in range(n_slices)])


def _uid(*parts: object) -> UID:
    return generate_uid(entropy_srcs=["mediastream-demo-phantom", *map(str, parts)])


def phantom_datasets(n_slices: int = DEFAULT_SLICES, size: int = DEFAULT_SIZE) -> Iterator[Dataset]:
    """Yield the phantom as CT Image Storage datasets, one per slice, ready to save.

    Stored values are ``HU + 1024`` in signed 16-bit pixels with Rescale Intercept -1024, as a
    scanner would write them. UIDs are derived from fixed strings, so regenerating the demo
    produces the same instances (and re-ingesting them is "already stored").
    """
    study_uid = _uid("study")
    series_uid = _uid("series", n_slices, size)
    frame_of_reference = _uid("frame-of-reference")
    spacing = PIXEL_SPACING_MM * DEFAULT_SIZE / size
    origin = -spacing * (size - 1) / 2
    date = datetime.date(2026, 1, 1).strftime("%Y%m%d")
    for index in range(n_slices):
        hu = phantom_hu_slice(index, n_slices, size)
        sop_uid = _uid("instance", n_slices, size, index)
        z = index * SLICE_THICKNESS_MM

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference
        ds.Modality = "CT"
        ds.Manufacturer = "mediastream"
        ds.SeriesDescription = DEMO_DESCRIPTION
        ds.StudyDescription = "Synthetic phantom"
        ds.PatientName = "Phantom^Demo"
        ds.PatientID = "DEMO-PHANTOM"
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.InstanceNumber = index + 1
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.ImagePositionPatient = [round(origin, 4), round(origin, 4), z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = z
        ds.SliceThickness = SLICE_THICKNESS_MM
        ds.PixelSpacing = [round(spacing, 6), round(spacing, 6)]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = RESCALE_INTERCEPT
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = [w[0] for w in WINDOWS]
        ds.WindowWidth = [w[1] for w in WINDOWS]
        ds.WindowCenterWidthExplanation = [w[2] for w in WINDOWS]
        stored = (hu.astype(np.int32) - RESCALE_INTERCEPT).astype("<i2")
        ds.PixelData = stored.tobytes()
        yield ds
