"""A 3-D segmentation as a DICOM Segmentation object, made by highdicom (no hand-built IOD).

One BINARY segment with the user's label; frames only where the mask is not empty (highdicom's
``omit_empty_frames``), each referencing its source instance and carrying that instance's
geometry (highdicom copies Image Position/Orientation and Pixel Spacing from the sources). The
segment's Algorithm Identification holds the algorithm's name, the server's version and every
parameter value, so the result can be reproduced. Segmented Property Category and Type are
SNOMED CT codes from pydicom's code dictionary when the label names a known structure, the
generic "Tissue" otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from mediastream import __version__

__all__ = ["SegmentCodes", "build_segmentation", "codes_for_label", "read_seg_masks"]

MANUFACTURER = "mediastream"


@dataclass(frozen=True)
class SegmentCodes:
    """Segmented Property Category and Type of one segment."""

    category: Code
    type: Code


_ANATOMY = codes.SCT.AnatomicalStructure
_ABNORMAL = codes.SCT.MorphologicallyAbnormalStructure
_TISSUE = SegmentCodes(codes.SCT.Tissue, codes.SCT.Tissue)

# Words of a label (lower case, "_"/"-" as spaces) -> the structure's SNOMED CT code. Longer
# phrases are tried first, so "inferior vena cava" is not read as a plain "vein" one day.
_STRUCTURES: dict[str, SegmentCodes] = {
    "inferior vena cava": SegmentCodes(_ANATOMY, codes.SCT.InferiorVenaCava),
    "ivc": SegmentCodes(_ANATOMY, codes.SCT.InferiorVenaCava),
    "gall bladder": SegmentCodes(_ANATOMY, codes.SCT.Gallbladder),
    "gallbladder": SegmentCodes(_ANATOMY, codes.SCT.Gallbladder),
    "liver": SegmentCodes(_ANATOMY, codes.SCT.Liver),
    "spleen": SegmentCodes(_ANATOMY, codes.SCT.Spleen),
    "kidney": SegmentCodes(_ANATOMY, codes.SCT.Kidney),
    "aorta": SegmentCodes(_ANATOMY, codes.SCT.Aorta),
    "pancreas": SegmentCodes(_ANATOMY, codes.SCT.Pancreas),
    "stomach": SegmentCodes(_ANATOMY, codes.SCT.Stomach),
    "brain": SegmentCodes(_ANATOMY, codes.SCT.Brain),
    "heart": SegmentCodes(_ANATOMY, codes.SCT.Heart),
    "lung": SegmentCodes(_ANATOMY, codes.SCT.Lung),
    "bladder": SegmentCodes(_ANATOMY, codes.SCT.Bladder),
    "esophagus": SegmentCodes(_ANATOMY, codes.SCT.Esophagus),
    "oesophagus": SegmentCodes(_ANATOMY, codes.SCT.Esophagus),
    "duodenum": SegmentCodes(_ANATOMY, codes.SCT.Duodenum),
    "colon": SegmentCodes(_ANATOMY, codes.SCT.Colon),
    "prostate": SegmentCodes(_ANATOMY, codes.SCT.Prostate),
    "vertebra": SegmentCodes(_ANATOMY, codes.SCT.Vertebra),
    "bone": SegmentCodes(_ANATOMY, codes.SCT.Bone),
    "tumour": SegmentCodes(_ABNORMAL, codes.SCT.Neoplasm),
    "tumor": SegmentCodes(_ABNORMAL, codes.SCT.Neoplasm),
    "neoplasm": SegmentCodes(_ABNORMAL, codes.SCT.Neoplasm),
    "lesion": SegmentCodes(_ABNORMAL, codes.SCT.Lesion),
    "mass": SegmentCodes(_ABNORMAL, codes.SCT.Mass),
}
# Plural forms name the same structure ("kidneys", "lungs", "tumours").
_PLURAL = re.compile(r"(?<=[a-z])s\b")

# Algorithm Family (CID 7162) of each algorithm the server offers.
_FAMILIES: dict[str, Code] = {
    "region_grow": codes.cid7162.NeighborhoodAnalysis,
    "snakes": codes.cid7162.DeformableModels,
    "watershed": codes.cid7162.MorphologicalOperations,
}


def codes_for_label(label: str) -> SegmentCodes:
    """The coded category and type a label names ("Liver", "kidney_left", "IVC", "tumour")."""
    words = " ".join(re.split(r"[\s_\-]+", label.lower())).strip()
    singular = _PLURAL.sub("", words)
    # A finding names what it is in ("brain tumour"): abnormal structures first, then the
    # longest phrase ("inferior vena cava" before a shorter one it contains).
    order = sorted(_STRUCTURES, key=lambda p: (_STRUCTURES[p].category != _ABNORMAL, -len(p)))
    for phrase in order:
        pattern = rf"\b{re.escape(phrase)}\b"
        if re.search(pattern, words) or re.search(pattern, singular):
            return _STRUCTURES[phrase]
    return _TISSUE


def build_segmentation(
    sources: Sequence[Dataset],
    mask: NDArray[np.bool_],
    *,
    label: str,
    algorithm: str,
    params: Mapping[str, int | float],
    series_number: int = 900,
) -> Dataset:
    """The DICOM SEG of ``mask`` over ``sources`` (single-frame images, in mask order).

    Parameters
    ----------
    sources : sequence of Dataset
        The source instances, one per mask slice (their headers suffice; pixel data is not
        read).
    mask : ndarray of shape (S, M, N), bool
        The region; slices where it is empty get no frame.
    label : str
        The segment's label (1 to 64 characters).
    algorithm, params
        The click algorithm's name and every parameter value it was started with.

    Raises
    ------
    ValueError
        A mask whose shape does not match the sources, an empty mask, or a bad label.
    """
    if mask.ndim != 3 or mask.shape[0] != len(sources):
        raise ValueError(f"mask must have one slice per source image ({len(sources)})")
    if not mask.any():
        raise ValueError("mask is empty: there is nothing to store")
    import highdicom as hd  # here, not at start-up: it costs a tenth of a second to import

    if not 1 <= len(label) <= 64:
        raise ValueError(f"label must be 1 to 64 characters, got {len(label)}")
    segment_codes = codes_for_label(label)
    identification = hd.AlgorithmIdentificationSequence(
        name=algorithm,
        family=_FAMILIES.get(algorithm, codes.cid7162.NeighborhoodAnalysis),
        version=__version__,
        source=MANUFACTURER,
        parameters={name: repr(value) for name, value in params.items()},
    )
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=segment_codes.category,
        segmented_property_type=segment_codes.type,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
        algorithm_identification=identification,
    )
    return hd.seg.Segmentation(
        source_images=[_with_patient_study_attributes(ds) for ds in sources],
        pixel_array=mask.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER,
        software_versions=__version__,
        device_serial_number="1",
        series_description=f"Segmentation: {label}"[:64],
        content_label=_content_label(label),
        omit_empty_frames=True,
    )


# Type 2 attributes of the Patient and General Study modules that highdicom copies from the
# source and so needs present; many real files (and the demo phantom) leave some out.
_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def _with_patient_study_attributes(source: Dataset) -> Dataset:
    """``source`` itself when complete, else a shallow copy with the missing ones empty."""
    missing = [keyword for keyword in _TYPE2 if keyword not in source]
    if not missing:
        return source
    copy = Dataset(source)
    copy.file_meta = getattr(source, "file_meta", None) or copy.file_meta
    for keyword in missing:
        setattr(copy, keyword, "")
    return copy


def _content_label(label: str) -> str:
    """A Content Label (CS: upper case, digits, space and underscore, 16 characters)."""
    text = re.sub(r"[^A-Z0-9_ ]", "_", label.upper())[:16].strip()
    return text or "SEGMENTATION"


def read_seg_masks(path: Path) -> dict[str, NDArray[np.bool_]]:
    """A SEG file's masks by source SOP Instance UID (segments merged; non-empty only).

    Read with highdicom, so any SEG referencing single-frame sources works, uploaded ones too.
    """
    import highdicom as hd

    seg = hd.seg.segread(path)
    masks: dict[str, NDArray[np.bool_]] = {}
    numbers = list(seg.get_segment_numbers())
    for _, _, sop_uid in seg.get_source_image_uids():
        try:
            pixels = seg.get_pixels_by_source_instance(
                source_sop_instance_uids=[sop_uid], segment_numbers=numbers
            )
        except (ValueError, KeyError, AttributeError):
            continue  # referenced but not segmented, or a geometry highdicom cannot map
        mask = np.asarray(np.any(pixels[0] != 0, axis=-1), dtype=bool)
        if mask.any():
            masks[str(sop_uid)] = mask
    return masks
