"""The SEG store: atomic, indexed, rebuilt from the files when the index is lost; SEG sniffing;
SNOMED CT codes from labels."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.uid import SegmentationStorage

from mediastream.dicom.phantom import phantom_datasets
from mediastream.dicom.segexport import build_segmentation, codes_for_label, read_seg_masks
from mediastream.dicom.segstore import (
    INDEX_FILE,
    SEG_FOLDER,
    SegmentationNotFound,
    SegStore,
    SliceArea,
    looks_like_segmentation,
)


@pytest.fixture(scope="module")
def seg_and_mask() -> tuple[object, np.ndarray, str]:
    sources = list(phantom_datasets(n_slices=5, size=32))
    mask = np.zeros((5, 32, 32), bool)
    mask[1:4, 10:20, 8:14] = True
    seg = build_segmentation(
        sources, mask, label="Left kidney", algorithm="region_grow", params={"x": 10, "y": 12}
    )
    return seg, mask, str(sources[0].SeriesInstanceUID)


def add(store: SegStore, seg: object, series_uid: str) -> str:
    record = store.add_dataset(
        seg,  # type: ignore[arg-type]
        series_uid=series_uid,
        label="Left kidney",
        volume_ml=1.5,
        slices=[SliceArea(1, 2.0), SliceArea(2, 2.0), SliceArea(3, 2.0)],
        algorithm="region_grow",
        params={"x": 10, "y": 12},
        measurements={"slices_covered": 3},
    )
    return record.seg_uid


def test_stored_listed_reloaded_and_deleted(tmp_path: Path, seg_and_mask: tuple) -> None:
    seg, mask, series_uid = seg_and_mask
    store = SegStore(tmp_path)
    store.load()
    seg_uid = add(store, seg, series_uid)
    [record] = store.list(series_uid)
    assert record.seg_uid == seg_uid and record.volume_ml == 1.5
    assert record.to_json()["slices_covered"] == 3
    assert not list((tmp_path / SEG_FOLDER).glob(".*.part"))  # no temporary file left
    # The masks read back per source instance, identical.
    masks = read_seg_masks(store.file(record))
    sources = list(phantom_datasets(n_slices=5, size=32))
    for k, ds in enumerate(sources):
        if mask[k].any():
            assert np.array_equal(masks[str(ds.SOPInstanceUID)], mask[k])
        else:
            assert str(ds.SOPInstanceUID) not in masks

    again = SegStore(tmp_path)
    again.load()
    assert again.list(series_uid) == [record]
    again.delete(series_uid, seg_uid)
    assert again.list(series_uid) == []
    assert not store.file(record).exists()
    with pytest.raises(SegmentationNotFound):
        again.get(series_uid, seg_uid)


def test_a_lost_index_is_rebuilt_from_the_files(tmp_path: Path, seg_and_mask: tuple) -> None:
    seg, _, series_uid = seg_and_mask
    store = SegStore(tmp_path)
    store.load()
    seg_uid = add(store, seg, series_uid)
    (tmp_path / SEG_FOLDER / INDEX_FILE).write_text("not json")
    rebuilt = SegStore(tmp_path)
    rebuilt.load()
    [record] = rebuilt.list(series_uid)
    assert record.seg_uid == seg_uid and record.label == "Left kidney"
    assert record.origin == "uploaded"  # described from its header: no measurements
    assert record.volume_ml is None


def test_sniffing_finds_the_seg_class(tmp_path: Path, seg_and_mask: tuple) -> None:
    seg, _, _ = seg_and_mask
    path = tmp_path / "seg.dcm"
    seg.save_as(path, enforce_file_format=True)
    assert looks_like_segmentation(path)
    image = tmp_path / "ct.dcm"
    next(phantom_datasets(n_slices=1, size=16)).save_as(image, enforce_file_format=True)
    assert not looks_like_segmentation(image)


@settings(max_examples=200, deadline=None)
@given(before=st.binary(max_size=300), after=st.binary(max_size=3))
def test_sniffing_never_fails_and_wants_the_whole_uid(
    tmp_path_factory: pytest.TempPathFactory, before: bytes, after: bytes
) -> None:
    path = tmp_path_factory.mktemp("sniff") / "f"
    uid = SegmentationStorage.encode()
    data = before + uid + after
    path.write_bytes(data)
    # The UID itself, not the start of a longer one (…66.41, …66.4.1).
    expected = re.search(re.escape(uid) + rb"(?![0-9.])", data) is not None
    assert looks_like_segmentation(path) == expected


@pytest.mark.parametrize(
    ("label", "meaning", "category"),
    [
        ("liver", "Liver", "Anatomical Structure"),
        ("Kidney_left", "Kidney", "Anatomical Structure"),
        ("kidneys", "Kidney", "Anatomical Structure"),
        ("inferior vena cava", "Inferior vena cava", "Anatomical Structure"),
        ("IVC", "Inferior vena cava", "Anatomical Structure"),
        ("gall bladder", "Gallbladder", "Anatomical Structure"),
        ("tumour", "Neoplasm", "Morphologically Abnormal Structure"),
        ("brain tumor", "Neoplasm", "Morphologically Abnormal Structure"),
        ("region_grow", "Tissue", "Tissue"),
        ("something", "Tissue", "Tissue"),
    ],
)
def test_labels_name_snomed_codes(label: str, meaning: str, category: str) -> None:
    codes = codes_for_label(label)
    assert codes.type.meaning == meaning
    assert codes.category.meaning == category
    assert codes.type.scheme_designator == "SCT"
