"""Validation at ingest: every rejection has a specific reason; nothing is written for it."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, RLELossless

from mediastream.dicom.ingest import Limits, inspect_file, is_safe_uid
from mediastream.dicom.library import Library

from .conftest import StoreFile, pydicom_file


def file_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def assert_rejected(
    library: Library, store_file: StoreFile, source: Path | bytes, reason: str
) -> None:
    outcome = store_file(library, source, "client name.dcm")
    assert (outcome.outcome, outcome.reason) == ("rejected", reason)
    assert outcome.to_json() == {
        "filename": "client name.dcm",
        "outcome": "rejected",
        "reason": reason,
    }
    assert library.is_empty()
    assert list((library.root / ".incoming").iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"hello", b"\x00" * 200, b"%PDF-1.7\n" + b"x" * 300])
def test_non_dicom_content_is_rejected(
    library: Library, store_file: StoreFile, content: bytes
) -> None:
    assert_rejected(library, store_file, content, "not a DICOM file")


def test_a_dicom_file_without_pixel_data_is_rejected(
    library: Library, store_file: StoreFile
) -> None:
    assert_rejected(library, store_file, pydicom_file("rtplan.dcm"), "no pixel data")


@pytest.mark.parametrize("cut", [0, 1000, 524288 - 1])
def test_truncated_pixel_data_reports_both_lengths(
    library: Library, store_file: StoreFile, cut: int, small_phantom: list[Dataset]
) -> None:
    ds = small_phantom[0]
    ds.Rows = ds.Columns = 512
    ds.PixelData = np.zeros((512, 512), "<i2").tobytes()
    data = file_bytes(ds)
    header = len(data) - 524288
    assert_rejected(
        library,
        store_file,
        data[: header + cut],
        f"pixel data truncated: expected 524288 bytes, found {cut}",
    )


def test_a_file_cut_inside_the_pixel_element_header(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    data = file_bytes(small_phantom[0])
    header = len(data) - 32 * 32 * 2
    assert_rejected(
        library,
        store_file,
        data[: header - 4],
        "unreadable DICOM file: it ends in the middle of an element",
    )


def encapsulated(ds: Dataset, syntax: str, fragments: list[bytes]) -> Dataset:
    out = copy.deepcopy(ds)
    out.file_meta.TransferSyntaxUID = UID(syntax)
    out.PixelData = encapsulate(fragments)
    out["PixelData"].VR = "OB"
    return out


def test_an_unsupported_transfer_syntax_is_named(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    mpeg2 = encapsulated(small_phantom[0], "1.2.840.10008.1.2.4.100", [b"\x00" * 64])
    assert_rejected(
        library,
        store_file,
        file_bytes(mpeg2),
        "unsupported transfer syntax 1.2.840.10008.1.2.4.100 (MPEG2 Main Profile / Main Level)",
    )


def test_an_unknown_transfer_syntax_is_rejected(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    private = encapsulated(small_phantom[0], "1.2.3.4.5", [b"\x00" * 64])
    buffer = io.BytesIO()
    dcmwrite(buffer, private, enforce_file_format=True, implicit_vr=False, little_endian=True)
    assert_rejected(library, store_file, buffer.getvalue(), "unsupported transfer syntax 1.2.3.4.5")


@pytest.mark.parametrize(
    ("keyword", "reason"),
    [
        ("SOPInstanceUID", "missing SOP Instance UID (0008,0018)"),
        ("SeriesInstanceUID", "missing Series Instance UID (0020,000E)"),
        ("Rows", "missing Rows (0028,0010)"),
        ("BitsStored", "missing Bits Stored (0028,0101)"),
        ("PhotometricInterpretation", "missing Photometric Interpretation (0028,0004)"),
    ],
)
def test_missing_required_attributes_are_named(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset], keyword: str, reason: str
) -> None:
    ds = small_phantom[0]
    delattr(ds, keyword)
    assert_rejected(library, store_file, file_bytes(ds), reason)


@pytest.mark.parametrize(
    ("keyword", "value", "reason"),
    [
        (
            "SeriesInstanceUID",
            "1.2.3/../../../etc",
            "invalid Series Instance UID (0020,000E) '1.2.3/../../../etc': "
            "a UID is digits and dots, at most 64 characters",
        ),
        (
            "SOPInstanceUID",
            "1." + "2" * 70,
            f"invalid SOP Instance UID (0008,0018) '1.{'2' * 70}': "
            "a UID is digits and dots, at most 64 characters",
        ),
    ],
)
def test_unsafe_uids_are_rejected_before_any_path_is_built(
    library: Library,
    store_file: StoreFile,
    small_phantom: list[Dataset],
    keyword: str,
    value: str,
    reason: str,
) -> None:
    ds = small_phantom[0]
    with pytest.warns(UserWarning, match="VR UI"):  # pydicom warns as the test writes it
        setattr(ds, keyword, value)
        data = file_bytes(ds)
    assert_rejected(library, store_file, data, reason)
    assert [p.name for p in library.root.rglob("*.dcm")] == []
    assert [p.name for p in library.root.iterdir() if p.is_dir()] == [".incoming"]


def test_a_huge_frame_is_rejected_from_the_header_alone(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    ds = small_phantom[0]
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 2000
    assert_rejected(
        library,
        store_file,
        file_bytes(ds),
        "frame too large: 65535 x 65535 pixels exceeds the limit of 67108864 pixels per frame",
    )


def test_limits_are_configurable(
    tmp_path: Path, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    strict = Library(
        tmp_path / "lib", cache_bytes=0, limits=Limits(max_frame_pixels=1000, max_frames=3)
    )
    outcome = store_file(strict, file_bytes(small_phantom[0]))
    assert (
        outcome.reason
        == "frame too large: 32 x 32 pixels exceeds the limit of 1000 pixels per frame"
    )
    with pytest.raises(ValueError, match="max_frame_pixels must be at least 1"):
        Limits(max_frame_pixels=0)


def test_too_many_frames_is_rejected(tmp_path: Path, store_file: StoreFile) -> None:
    strict = Library(tmp_path / "lib", cache_bytes=0, limits=Limits(max_frames=10))
    outcome = store_file(strict, pydicom_file("rtdose.dcm"))
    assert outcome.reason == "too many frames: 15 exceeds the limit of 10 frames"


def test_float_pixel_data_is_rejected_by_name(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    ds = small_phantom[0]
    del ds.PixelData
    ds.BitsAllocated = 32
    ds.FloatPixelData = np.zeros((32, 32), "<f4").tobytes()
    assert_rejected(
        library, store_file, file_bytes(ds), "Float Pixel Data (7FE0,0008) is not supported"
    )


def test_bits_stored_above_bits_allocated_is_rejected(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    ds = small_phantom[0]
    ds.BitsStored = 17
    assert_rejected(
        library,
        store_file,
        file_bytes(ds),
        "Bits Stored (0028,0101) must be between 1 and Bits Allocated (16), got 17",
    )


def test_an_unusable_rescale_is_rejected(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    slope = b"\x28\x00\x53\x10DS\x04\x001.0 "  # (0028,1053) DS, 4 bytes: "1.0 "
    data = file_bytes(small_phantom[0])
    assert data.count(slope) == 1
    data = data.replace(slope, slope[:-4] + b"abc ")  # pydicom would refuse to write it
    assert_rejected(library, store_file, data, "invalid Rescale Slope (0028,1053): 'abc'")


def test_an_undecodable_compressed_frame_is_rejected_at_upload(
    library: Library, store_file: StoreFile
) -> None:
    outcome = store_file(library, pydicom_file("JPEG-lossy.dcm"))
    assert outcome.outcome == "rejected" and outcome.reason is not None
    assert outcome.reason.startswith(
        "cannot decode 1.2.840.10008.1.2.4.51 (JPEG Extended (Process 2 and 4)) pixel data: "
    )
    assert "libjpeg error" in outcome.reason


def test_fewer_fragments_than_frames_is_truncation(
    library: Library, store_file: StoreFile, small_phantom: list[Dataset]
) -> None:
    rle = dcmread(pydicom_file("MR_small_RLE.dcm"))
    one_fragment = bytes(rle.PixelData)
    ds = encapsulated(small_phantom[0], RLELossless, [])
    ds.PixelData = one_fragment
    ds.Rows = ds.Columns = 64
    ds.NumberOfFrames = 3
    assert_rejected(
        library,
        store_file,
        file_bytes(ds),
        "encapsulated pixel data truncated: 3 frames declared, 1 fragments found",
    )


def test_a_raw_dataset_without_preamble_or_meta_is_accepted(
    library: Library, store_file: StoreFile
) -> None:
    """Documented decision: pydicom reads such files (force=True) and so do we, when they start
    like a dataset and their pixels decode; the transfer syntax is what pydicom read."""
    mr = dcmread(pydicom_file("MR_small.dcm"))
    reference = mr.pixel_array
    del mr.file_meta
    mr.preamble = None
    buffer = io.BytesIO()
    dcmwrite(buffer, mr, implicit_vr=True, little_endian=True)
    raw = buffer.getvalue()
    assert raw[:2] == b"\x08\x00" and b"DICM" not in raw  # group 0008 first: no preamble or meta
    outcome = store_file(library, raw)
    assert outcome.outcome == "stored" and outcome.series_uid == mr.SeriesInstanceUID
    np.testing.assert_array_equal(library.frame_values(mr.SeriesInstanceUID, 0), reference)


def test_a_file_written_implicit_despite_an_explicit_syntax_is_read_like_pydicom_does(
    library: Library, store_file: StoreFile
) -> None:
    outcome = store_file(library, pydicom_file("SC_rgb_jpeg.dcm"))
    assert outcome.outcome == "stored"


def test_inspect_reads_the_listing_fields(small_phantom: list[Dataset], tmp_path: Path) -> None:
    path = tmp_path / "slice.dcm"
    ds = small_phantom[3]
    dcmwrite(path, ds, enforce_file_format=True)
    header, prepared = inspect_file(path, limits=Limits())
    assert prepared is None  # native pixels are never decoded at ingest
    assert header.sop_instance_uid == ds.SOPInstanceUID
    assert header.series_instance_uid == ds.SeriesInstanceUID
    assert header.transfer_syntax == ExplicitVRLittleEndian
    assert (header.modality, header.description) == ("CT", "Demo phantom (synthetic)")
    assert (header.rows, header.columns, header.frames) == (32, 32, 1)
    assert header.position is not None and header.position[2] == 15.0
    assert header.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert header.pixel_spacing == (11.2, 11.2)  # 0.7 mm at 512 pixels, scaled to 32
    assert header.instance_number == 4
    assert [w.name for w in header.windows] == ["SOFT TISSUE", "LUNG", "BONE"]


@pytest.mark.parametrize(
    ("uid", "safe"),
    [
        ("1.2.840.10008", True),
        ("1", True),
        ("1." + "2" * 62, True),
        ("1." + "2" * 63, False),
        ("", False),
        ("1..2", False),
        (".1", False),
        ("1.2.", False),
        ("1.2/3", False),
        ("1.a", False),
    ],
)
def test_is_safe_uid(uid: str, safe: bool) -> None:
    assert is_safe_uid(uid) is safe
