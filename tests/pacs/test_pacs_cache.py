"""What only the PACS store does: follow changes others make, cache locally, prefetch."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from mediastream.dicom.pacs import CACHE, PacsLibrary
from mediastream.dicom.phantom import phantom_datasets
from tests.conftest import dataset_bytes
from tests.orthanc import Orthanc

from .conftest import StoreFactory

WAIT = 10.0


def cached_file(store: PacsLibrary, series_uid: str, index: int) -> Path:
    sop = store.frame_key(series_uid, index)[0]
    return store.root / CACHE / series_uid / f"{sop}.dcm"


def test_changes_made_through_another_client_are_listed(
    make_store: StoreFactory, orthanc: Orthanc
) -> None:
    first, second, third = phantom_datasets(n_slices=3, size=32)
    orthanc.stow([dataset_bytes(first), dataset_bytes(second)])
    store = make_store("orthanc", orthanc)
    assert isinstance(store, PacsLibrary)
    [info] = store.list_series()
    assert info.frame_count == 2
    store.frame(info.series_uid, 0)
    assert cached_file(store, info.series_uid, 0).exists()

    other = next(phantom_datasets(n_slices=1, size=32))
    other.SeriesInstanceUID = generate_uid()
    other.SOPInstanceUID = other.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    orthanc.stow([dataset_bytes(third), dataset_bytes(other)])
    listed = {s.series_uid: s.frame_count for s in store.list_series()}
    assert listed == {info.series_uid: 3, other.SeriesInstanceUID: 1}

    orthanc.delete_series(info.series_uid)
    assert [s.series_uid for s in store.list_series()] == [other.SeriesInstanceUID]
    assert not (store.root / CACHE / info.series_uid).exists()  # its local copies went too


def test_a_series_read_once_is_served_without_the_pacs(
    make_store: StoreFactory, orthanc: Orthanc
) -> None:
    orthanc.stow(dataset_bytes(ds) for ds in phantom_datasets(n_slices=5, size=32))
    store = make_store("orthanc", orthanc)
    assert isinstance(store, PacsLibrary)
    [info] = store.list_series()
    first = [store.frame_values(info.series_uid, i).copy() for i in range(5)]
    orthanc.kill()
    from_memory = [store.frame_values(info.series_uid, i) for i in range(5)]
    store.cache.clear()
    from_disk = [store.frame_values(info.series_uid, i) for i in range(5)]
    for a, b, c in zip(first, from_memory, from_disk, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_the_instances_ahead_are_retrieved_in_the_background(
    make_store: StoreFactory, orthanc: Orthanc
) -> None:
    orthanc.stow(dataset_bytes(ds) for ds in phantom_datasets(n_slices=8, size=32))
    store = make_store("orthanc", orthanc, prefetch=3)
    assert isinstance(store, PacsLibrary)
    [info] = store.list_series()
    store.frame(info.series_uid, 6)
    ahead = [cached_file(store, info.series_uid, i) for i in (7, 0, 1)]  # it loops
    deadline = time.monotonic() + WAIT
    while not all(path.exists() for path in ahead):
        assert time.monotonic() < deadline, "the prefetch did not retrieve the next instances"
        time.sleep(0.02)  # polling the disk, bounded by the deadline
    assert not cached_file(store, info.series_uid, 2).exists()
    assert not cached_file(store, info.series_uid, 5).exists()
