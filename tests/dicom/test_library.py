"""The Library: storage layout, duplicates, atomicity, listing, deletion, restart, cache."""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import RLELossless

from mediastream.dicom import library as library_module
from mediastream.dicom.display import Window
from mediastream.dicom.errors import FrameDecodeError, FrameNotFound, LibraryError, SeriesNotFound
from mediastream.dicom.library import Library
from mediastream.dicom.phantom import phantom_datasets
from mediastream.dicom.store import INDEX_NAME
from tests.conftest import broken_second_frame, dataset_bytes

from .conftest import StoreFile, pydicom_file


def stored_files(library: Library) -> list[str]:
    return sorted(
        str(p.relative_to(library.root))
        for p in library.root.rglob("*")
        if p.is_file() and p.name != INDEX_NAME
    )


def ingest_all(library: Library, datasets: list[Dataset]) -> None:
    for i, ds in enumerate(datasets):
        outcome = library.ingest_dataset(ds, filename=f"{i}.dcm")
        assert outcome.outcome == "stored", outcome


def test_files_are_named_from_their_uids_never_the_client_name(
    library: Library, small_phantom: list[Dataset]
) -> None:
    ds = small_phantom[0]
    outcome = library.ingest_dataset(ds, filename="../../evil name.dcm")
    assert outcome.to_json() == {
        "filename": "../../evil name.dcm",
        "outcome": "stored",
        "series_uid": ds.SeriesInstanceUID,
        "sop_instance_uid": ds.SOPInstanceUID,
    }
    assert stored_files(library) == [f"{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"]


def test_a_second_upload_of_the_same_instance_is_already_stored(
    library: Library, store_file: StoreFile
) -> None:
    first = store_file(library, pydicom_file("CT_small.dcm"), "a.dcm")
    again = store_file(library, pydicom_file("CT_small.dcm"), "b.dcm")
    assert first.outcome == "stored"
    assert again.to_json() == {
        "filename": "b.dcm",
        "outcome": "already_stored",
        "series_uid": first.series_uid,
        "sop_instance_uid": first.sop_instance_uid,
    }
    assert library.counts() == {"series": 1, "instances": 1, "frames": 1}


def test_no_temp_file_remains_after_success_rejection_or_duplicate(
    library: Library, store_file: StoreFile
) -> None:
    temps = []
    for source in ("CT_small.dcm", "rtplan.dcm", "CT_small.dcm", "MR_truncated.dcm"):
        temp = library.new_temp_path()
        temps.append(temp)
        temp.write_bytes(pydicom_file(source).read_bytes())
        library.ingest(temp, filename=source)
    assert not any(t.exists() for t in temps)
    assert list((library.root / ".incoming").iterdir()) == []
    assert len(stored_files(library)) == 1


def test_new_temp_paths_are_unique_and_on_the_library_filesystem(library: Library) -> None:
    paths = {library.new_temp_path() for _ in range(100)}
    assert len(paths) == 100
    assert all(p.parent == library.root / ".incoming" for p in paths)
    assert os.stat(library.root).st_dev == os.stat(library.root / ".incoming").st_dev


def test_list_series_oldest_first_and_latest_series(
    library: Library, store_file: StoreFile
) -> None:
    ct = store_file(library, pydicom_file("CT_small.dcm"))
    mr = store_file(library, pydicom_file("MR_small.dcm"))
    assert [s.series_uid for s in library.list_series()] == [ct.series_uid, mr.series_uid]
    assert library.latest_series_uid() == mr.series_uid
    another_ct = dcmread(pydicom_file("CT_small.dcm"))
    another_ct.SOPInstanceUID += ".1"
    buffer = io.BytesIO()
    dcmwrite(buffer, another_ct, enforce_file_format=True)
    assert store_file(library, buffer.getvalue()).series_uid == ct.series_uid
    assert library.latest_series_uid() == ct.series_uid
    assert [s.series_uid for s in library.list_series()] == [mr.series_uid, ct.series_uid]
    assert ct.series_uid is not None and library.get_series(ct.series_uid).frame_count == 2


def test_series_info_fields(library: Library, small_phantom: list[Dataset]) -> None:
    ingest_all(library, small_phantom)
    uid = small_phantom[0].SeriesInstanceUID
    info = library.get_series(uid)
    assert info.to_json() == {
        "series_uid": uid,
        "modality": "CT",
        "description": "Demo phantom (synthetic)",
        "frame_count": 8,
        "rows": 32,
        "columns": 32,
        "pixel_spacing": [11.2, 11.2],
        "windows": [
            {"center": 40.0, "width": 400.0, "name": "SOFT TISSUE"},
            {"center": -600.0, "width": 1500.0, "name": "LUNG"},
            {"center": 300.0, "width": 1500.0, "name": "BONE"},
        ],
    }
    assert library.list_series() == [info]


def test_unknown_series_and_frames_raise_library_errors(
    library: Library, store_file: StoreFile
) -> None:
    outcome = store_file(library, pydicom_file("rtdose.dcm"))
    assert outcome.series_uid is not None
    with pytest.raises(SeriesNotFound) as missing:
        library.get_series("1.2.3")
    assert missing.value.code == "series_not_found" and isinstance(missing.value, LibraryError)
    with pytest.raises(SeriesNotFound):
        library.frame("1.2.3", 0)
    for index in (15, -1):
        with pytest.raises(FrameNotFound, match="has 15 frames, valid indices are 0 to 14") as err:
            library.frame(outcome.series_uid, index)
        assert err.value.code == "frame_not_found"


def test_multi_frame_files_expand_to_frames(library: Library, store_file: StoreFile) -> None:
    outcome = store_file(library, pydicom_file("rtdose.dcm"))
    assert outcome.series_uid is not None
    assert library.get_series(outcome.series_uid).frame_count == 15
    reference = dcmread(pydicom_file("rtdose.dcm")).pixel_array
    for i in (0, 7, 14):
        np.testing.assert_array_equal(library.frame_values(outcome.series_uid, i), reference[i])


def test_frames_of_a_series_in_several_multi_frame_files(
    library: Library, store_file: StoreFile
) -> None:
    """Two 15-frame RT Dose files of one series: frames 0-14 from one, 15-29 from the other."""
    first = dcmread(pydicom_file("rtdose.dcm"))
    second = copy.deepcopy(first)
    second.SOPInstanceUID = first.SOPInstanceUID + ".2"
    second.ImagePositionPatient = [v + 100 for v in first.ImagePositionPatient]
    second.PixelData = (first.pixel_array[::-1].astype("<u4")).tobytes()
    for ds in (second, first):  # stored in the "wrong" order on purpose
        buffer = io.BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        assert store_file(library, buffer.getvalue()).outcome == "stored"
    uid = first.SeriesInstanceUID
    assert library.get_series(uid).frame_count == 30
    np.testing.assert_array_equal(library.frame_values(uid, 0), first.pixel_array[0])
    np.testing.assert_array_equal(library.frame_values(uid, 15), first.pixel_array[14])
    np.testing.assert_array_equal(library.frame_values(uid, 29), first.pixel_array[0])


def test_delete_series_and_delete_all(library: Library, store_file: StoreFile) -> None:
    ct = store_file(library, pydicom_file("CT_small.dcm"))
    mr = store_file(library, pydicom_file("MR_small.dcm"))
    store_file(library, pydicom_file("rtdose.dcm"))
    assert ct.series_uid is not None and mr.series_uid is not None
    library.frame(ct.series_uid, 0)
    assert len(library.cache) == 1
    assert library.delete_series(ct.series_uid) == 1
    assert not (library.root / ct.series_uid).exists()
    assert len(library.cache) == 0  # its decoded frames went with it
    with pytest.raises(SeriesNotFound):
        library.delete_series(ct.series_uid)
    with pytest.raises(SeriesNotFound):
        library.frame(ct.series_uid, 0)
    assert library.counts()["series"] == 2
    assert library.delete_all() == 2
    assert library.is_empty() and library.list_series() == [] and stored_files(library) == []
    assert library.latest_series_uid() is None
    again = store_file(library, pydicom_file("CT_small.dcm"))  # re-upload after deletion
    assert again.outcome == "stored"


def test_restart_lists_the_same_series_and_renders_the_same_frames(
    tmp_path: Path, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    root = tmp_path / "lib"
    before = Library(root, cache_bytes=1 << 24)
    before.load()
    ingest_all(before, small_phantom)
    store_file(before, pydicom_file("examples_ybr_color.dcm"))
    series = before.list_series()
    frames = [before.frame(s.series_uid, s.frame_count - 1).gray for s in series]

    for damage in ("none", "index deleted", "index corrupt"):
        index = root / INDEX_NAME
        if damage == "index deleted":
            index.unlink()
        elif damage == "index corrupt":
            index.write_text('{"v": 1, "path": 3}\nnot json at all\n{"v": 99}\n\x00\x00')
        after = Library(root, cache_bytes=1 << 24)
        after.load()
        assert after.list_series() == series, damage
        for info, frame in zip(series, frames, strict=True):
            np.testing.assert_array_equal(
                after.frame(info.series_uid, info.frame_count - 1).gray, frame
            )


def test_load_trusts_the_index_only_for_unchanged_files(
    tmp_path: Path, small_phantom: list[Dataset]
) -> None:
    root = tmp_path / "lib"
    lib = Library(root, cache_bytes=0)
    lib.load()
    ingest_all(lib, small_phantom)
    victim = next(root.glob("*/*.dcm"))
    data = victim.read_bytes()
    victim.write_bytes(data[:-100])  # cut short after being indexed (e.g. by a power cut)
    lines = (root / INDEX_NAME).read_text().splitlines()
    assert len(lines) == 8 and all(json.loads(line)["v"] == 1 for line in lines)
    after = Library(root, cache_bytes=0)
    after.load()
    assert after.counts() == {"series": 1, "instances": 7, "frames": 7}


def test_load_compacts_the_index_only_when_it_is_stale(
    tmp_path: Path, small_phantom: list[Dataset]
) -> None:
    root = tmp_path / "lib"
    lib = Library(root, cache_bytes=0)
    lib.load()
    ingest_all(lib, small_phantom[:3])
    lib.delete_series(small_phantom[0].SeriesInstanceUID)
    ingest_all(lib, small_phantom[:2])
    index = root / INDEX_NAME
    assert len(index.read_text().splitlines()) == 5  # appended lines, two of them stale
    Library(root, cache_bytes=0).load()
    assert len(index.read_text().splitlines()) == 2
    compacted = index.stat().st_mtime_ns, index.read_bytes()
    Library(root, cache_bytes=0).load()
    assert (index.stat().st_mtime_ns, index.read_bytes()) == compacted


def test_load_removes_leftover_upload_parts(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    crashed = Library(root, cache_bytes=0)
    leftover = crashed.new_temp_path()
    leftover.write_bytes(b"half an upload")
    os.utime(leftover, ns=(1, 1))  # from before the next start
    restarted = Library(root, cache_bytes=0)
    restarted.load()
    assert not leftover.exists() and restarted.is_empty()


def test_load_skips_files_whose_uids_do_not_match_their_path(
    tmp_path: Path, small_phantom: list[Dataset]
) -> None:
    root = tmp_path / "lib"
    lib = Library(root, cache_bytes=0)
    lib.load()
    ingest_all(lib, small_phantom[:2])
    (root / INDEX_NAME).unlink()
    first = sorted(root.glob("*/*.dcm"))[0]
    first.rename(first.with_name("1.2.3.dcm"))
    after = Library(root, cache_bytes=0)
    after.load()
    assert after.counts()["instances"] == 1


def test_the_cache_is_bounded_and_a_window_change_does_not_decode_again(
    tmp_path: Path, small_phantom: list[Dataset]
) -> None:
    frame_bytes = 32 * 32 * 4 + 512  # float32 HU + allowance: see PreparedFrame.nbytes
    lib = Library(tmp_path / "lib", cache_bytes=3 * frame_bytes)
    ingest_all(lib, small_phantom)
    uid = small_phantom[0].SeriesInstanceUID
    for i in range(8):
        lib.frame(uid, i)
        assert lib.cache.bytes_used <= lib.cache.capacity_bytes
    assert len(lib.cache) == 3
    misses = lib.cache.misses
    soft = lib.frame(uid, 7)
    lung = lib.frame(uid, 7, Window(-600, 1500))
    assert lib.cache.misses == misses and lib.cache.hits >= 2
    assert soft.window == Window(40, 400, "SOFT TISSUE") and lung.window == Window(-600, 1500)
    assert not np.array_equal(soft.gray, lung.gray)


def test_a_zero_cache_keeps_nothing(tmp_path: Path, small_phantom: list[Dataset]) -> None:
    lib = Library(tmp_path / "lib", cache_bytes=0)
    ingest_all(lib, small_phantom[:2])
    lib.frame(small_phantom[0].SeriesInstanceUID, 0)
    assert len(lib.cache) == 0 and lib.cache.bytes_used == 0


def test_a_frame_that_fails_to_decode_later_raises_a_clear_error(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    """Ingest decodes only frame 0 of compressed data; a bad later frame is reported on demand."""
    good = bytes(dcmread(pydicom_file("MR_small_RLE.dcm")).PixelData)
    fragment = next(generate_frames(good, number_of_frames=1))
    ds = copy.deepcopy(small_phantom[0])
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.Rows = ds.Columns = 64
    ds.NumberOfFrames = 2
    ds.PixelData = encapsulate([fragment, b"\xff" * 64])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    outcome = store_file(library, buffer.getvalue())
    assert outcome.outcome == "stored"
    library.frame(ds.SeriesInstanceUID, 0)
    with pytest.raises(FrameDecodeError) as err:
        library.frame(ds.SeriesInstanceUID, 1)
    assert err.value.code == "decode_failed"
    message = str(err.value)
    assert message.startswith(
        f"cannot decode frame 1 of SOP Instance UID {ds.SOPInstanceUID} "
        "(1.2.840.10008.1.2.5 (RLE Lossless)): "
    )
    assert len(message) > len("cannot decode frame 1 of SOP Instance UID  (): ") + 60


def test_concurrent_ingest_and_frame_reads(tmp_path: Path) -> None:
    lib = Library(tmp_path / "lib", cache_bytes=1 << 20)
    lib.load()
    first, *rest = list(phantom_datasets(12, 32))
    assert lib.ingest_dataset(first, filename="0.dcm").outcome == "stored"
    uid = first.SeriesInstanceUID
    errors: list[BaseException] = []
    done = threading.Event()

    def upload(datasets: list[Dataset]) -> None:
        try:
            for ds in datasets:
                assert lib.ingest_dataset(ds, filename="x.dcm").outcome in (
                    "stored",
                    "already_stored",
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    def read() -> None:
        try:
            while not done.is_set():
                count = lib.get_series(uid).frame_count
                frame = lib.frame(uid, count - 1)
                assert frame.gray.shape == (32, 32)
        except BaseException as exc:
            errors.append(exc)

    uploaders = [threading.Thread(target=upload, args=(rest[i::2] + rest,)) for i in range(2)]
    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in uploaders + readers:
        t.start()
    for t in uploaders:
        t.join(timeout=60)
    done.set()
    for t in readers:
        t.join(timeout=60)
    assert errors == []
    assert lib.counts() == {"series": 1, "instances": 12, "frames": 12}
    assert list((lib.root / ".incoming").iterdir()) == []


def test_a_frame_that_fails_is_decoded_and_logged_once(
    library: Library,
    store_file: StoreFile,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ds = broken_second_frame()
    assert store_file(library, dataset_bytes(ds)).outcome == "stored"
    calls: list[int] = []
    real_load = library_module.load_prepared_frame

    def counting_load(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(library_module, "load_prepared_frame", counting_load)
    caplog.set_level(logging.DEBUG)
    messages = set()
    for _ in range(5):
        with pytest.raises(FrameDecodeError) as err:
            library.frame(ds.SeriesInstanceUID, 1)
        messages.add(str(err.value))
    assert calls == [1]  # remembered: not decoded again
    assert len(messages) == 1 and "cannot decode frame 1" in messages.pop()
    failures = [r for r in caplog.records if "cannot decode frame 1" in r.getMessage()]
    assert len(failures) == 1 and failures[0].levelno == logging.WARNING
    assert [r for r in caplog.records if r.exc_info] == []  # no pydicom tracebacks
    library.frame(ds.SeriesInstanceUID, 0)  # the good frame still renders
