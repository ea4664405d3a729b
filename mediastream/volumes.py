"""Segment a stored series in 3-D, measure it, keep it as DICOM SEG: the blocking work.

Glue between the library (frames, geometry, source files), the pure 3-D segmentation
(:mod:`segmentation.propagation`, :mod:`segmentation.volume`), highdicom
(:mod:`mediastream.dicom.segexport`) and the SEG store. Everything here blocks; the web
layer runs it in executors.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray

from mediastream.dicom.backend import ImageStore
from mediastream.dicom.segexport import build_segmentation, read_seg_masks
from mediastream.dicom.segstore import SegStore, SliceArea, StoredSegmentation
from segmentation.base import Algorithm
from segmentation.params import Params
from segmentation.propagation import Propagation, SliceResult, SliceSource, propagate
from segmentation.volume import measure_volume, slab_thicknesses

__all__ = [
    "PROPAGATION_NICE",
    "SegmentationRequest",
    "Unsupported",
    "lower_thread_priority",
    "measure_uploaded",
    "segment_series",
]

#: How much lower than the render workers the propagation threads are scheduled (Linux nice
#: steps): a 3-D propagation is background work, and running streams keep their frame rate.
PROPAGATION_NICE = 10


def lower_thread_priority() -> None:
    """Executor initializer: lower the calling thread's scheduling priority (Linux, per thread).

    Where threads cannot be given their own priority this does nothing.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PROPAGATION_NICE)
    except (AttributeError, OSError):
        pass


class Unsupported(ValueError):
    """The series cannot be kept as DICOM SEG (the message says why)."""


@dataclass(frozen=True)
class SegmentationRequest:
    """A validated ``POST /images/{series_uid}/segmentations``."""

    series_uid: str
    algorithm: Algorithm
    params: Params
    index: int
    through: bool
    label: str


def _source(library: ImageStore, series_uid: str) -> SliceSource:
    def load(index: int) -> tuple[NDArray[np.uint8], NDArray[Any] | None]:
        gray = library.frame(series_uid, index).gray
        values = library.frame_values(series_uid, index)
        # Colour sources have no modality values: segment the display image.
        return gray, (values if values.ndim == 2 else None)

    return load


def segment_series(
    library: ImageStore,
    store: SegStore,
    request: SegmentationRequest,
    *,
    executor: Executor | None = None,
    on_slice: Callable[[SliceResult], None] | None = None,
) -> StoredSegmentation:
    """Propagate from the request's click, measure, build the SEG and store it.

    Raises
    ------
    ValueError
        Parameters that do not fit, or :class:`~segmentation.propagation.NothingFound`.
    Unsupported
        Multi-frame source instances (SEG frames reference single-frame sources here).
    SeriesNotFound
        The series went away meanwhile.
    """
    series = library.get_series(request.series_uid)
    records = library.instances(request.series_uid)
    if any(r.header.frames != 1 for r in records):
        raise Unsupported(
            "DICOM SEG export needs single-frame source images; this series is multi-frame"
        )
    spacing = series.pixel_spacing
    result = propagate(
        _source(library, request.series_uid),
        series.frame_count,
        request.index,
        request.algorithm,
        request.params,
        spacing=spacing,
        through=request.through,
        executor=executor,
        on_slice=on_slice,
    )
    mask = result.volume_mask()
    thickness = _slab_thicknesses(records)
    measured = None
    if spacing is not None and thickness is not None:
        values = _values_of(library, request.series_uid, result)
        measured = measure_volume(mask, values, spacing, thickness)
    area = None if spacing is None else spacing[0] * spacing[1]
    slices = [
        SliceArea(s.index, None if area is None else round(s.area_px * area, 3))
        for s in result.slices
    ]
    sources = [
        pydicom.dcmread(library.instance_file(request.series_uid, r), stop_before_pixels=True)
        for r in records
    ]
    params = request.params.to_json()
    seg = build_segmentation(
        sources, mask, label=request.label, algorithm=request.algorithm.name, params=params
    )
    measurements: dict[str, Any] = {
        "index": request.index,
        "propagate": request.through,
        "stopped": result.stopped,
    }
    if measured is not None:
        m = measured.to_json()
        measurements.update(
            {
                "voxel_count": m["voxel_count"],
                "slices_covered": m["slices_covered"],
                "first_slice": m["first_slice"],
                "last_slice": m["last_slice"],
                "extent_mm": m["extent_mm"],
                "mean": m["mean"],
                "sd": m["sd"],
            }
        )
    record = store.add_dataset(
        seg,
        series_uid=request.series_uid,
        label=request.label,
        volume_ml=None if measured is None else round(measured.volume_ml, 3),
        slices=slices,
        algorithm=request.algorithm.name,
        params=params,
        measurements=measurements,
    )
    try:  # where the images are kept (a PACS): stored there too, or not kept at all
        library.keep_derived(store.file(record), record.seg_uid)
    except BaseException:
        store.delete(record.series_uid, record.seg_uid)
        raise
    return record


def _slab_thicknesses(records: Any) -> NDArray[np.float64] | None:
    """Each slice's slab along the normal, from Image Position (Patient); None if unknown."""
    headers = [r.header for r in records]
    if len(headers) < 2 or any(h.position is None or h.orientation is None for h in headers):
        return None
    try:
        return slab_thicknesses([h.position for h in headers], headers[0].orientation)
    except ValueError:
        return None


def _values_of(library: ImageStore, series_uid: str, result: Propagation) -> list[Any] | None:
    values: list[Any] = [None] * result.slice_count
    for s in result.slices:
        v = library.frame_values(series_uid, s.index)
        values[s.index] = v if v.ndim == 2 else None
    if any(values[s.index] is None for s in result.slices):
        return None  # colour: no modality values
    return values


def measure_uploaded(library: ImageStore, store: SegStore, series_uid: str, seg_uid: str) -> None:
    """Measure an uploaded SEG against its series, as if it had been made here.

    Its masks (by source SOP Instance UID) are placed on the series' slices; the volume, the
    slices and the values inside are then what ``POST …/segmentations`` reports. A SEG whose
    frames match no single-frame slice of the series is left unmeasured.
    """
    record = store.get(series_uid, seg_uid)
    series = library.get_series(series_uid)
    records = library.instances(series_uid)
    if any(r.header.frames != 1 for r in records):
        return
    index_of = {r.header.sop_instance_uid: i for i, r in enumerate(records)}
    mask = np.zeros((len(records), series.rows, series.columns), bool)
    for sop_uid, frame in read_seg_masks(store.file(record)).items():
        index = index_of.get(sop_uid)
        if index is not None and frame.shape == mask.shape[1:]:
            mask[index] = frame
    covered = [int(k) for k in np.flatnonzero(mask.any(axis=(1, 2)))]
    spacing, thickness = series.pixel_spacing, _slab_thicknesses(records)
    if not covered:
        return
    area = None if spacing is None else spacing[0] * spacing[1]
    slices = [
        SliceArea(k, None if area is None else round(int(np.count_nonzero(mask[k])) * area, 3))
        for k in covered
    ]
    volume_ml = None
    measurements: dict[str, Any] = {}
    if spacing is not None and thickness is not None:
        values: list[Any] = [None] * len(records)
        for k in covered:
            v = library.frame_values(series_uid, k)
            values[k] = v if v.ndim == 2 else None
        usable = all(values[k] is not None for k in covered)
        measured = measure_volume(mask, values if usable else None, spacing, thickness)
        volume_ml = round(measured.volume_ml, 3)
        m = measured.to_json()
        measurements = {key: m[key] for key in m if key != "volume_ml"}
    store.set_measurements(seg_uid, volume_ml=volume_ml, slices=slices, measurements=measurements)
