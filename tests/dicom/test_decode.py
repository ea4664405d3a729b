"""Decoding single frames straight from files (or bytes) in every transfer syntax family."""

from __future__ import annotations

import io

import numpy as np
import pytest
from pydicom import dcmread

from mediastream.dicom.decode import decode_frame, describe_syntax, sniff

from .conftest import pydicom_file


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",  # explicit VR little endian
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
)
def test_lossless_encodings_of_mr_small_decode_identically(name: str) -> None:
    reference = dcmread(pydicom_file("MR_small.dcm")).pixel_array
    ds, arr, photometric = decode_frame(pydicom_file(name), 0)
    assert photometric == "MONOCHROME2" and "PixelData" not in ds
    np.testing.assert_array_equal(arr, reference)


def test_deflated_files_decode() -> None:
    reference = dcmread(pydicom_file("image_dfl.dcm")).pixel_array
    _, arr, _ = decode_frame(pydicom_file("image_dfl.dcm"), 0)
    np.testing.assert_array_equal(arr, reference)


def test_one_frame_of_a_multi_frame_file_from_bytes_in_memory() -> None:
    data = pydicom_file("examples_ybr_color.dcm").read_bytes()
    reference = dcmread(io.BytesIO(data)).pixel_array
    _, arr, photometric = decode_frame(io.BytesIO(data), 17)
    assert photometric == "RGB" and arr.shape == (240, 320, 3)
    np.testing.assert_array_equal(arr, reference[17])


def test_bit_packed_frames_unpack() -> None:
    _, arr, _ = decode_frame(pydicom_file("liver_1frame.dcm"), 0)
    assert arr.shape == (512, 512) and set(np.unique(arr).tolist()) == {0, 1}


def test_sniff() -> None:
    assert sniff(b"\x00" * 128 + b"DICM") == "part10"
    assert sniff(b"\x08\x00\x05\x00CS\x0a\x00") == "raw"  # little endian (0008,0005)
    assert sniff(b"\x00\x08\x00\x05CS\x00\x0a") == "raw"  # big endian
    assert sniff(b"%PDF-1.7 xxxxxx") is None
    assert sniff(b"") is None


def test_describe_syntax() -> None:
    assert (
        describe_syntax("1.2.840.10008.1.2.4.50")
        == "1.2.840.10008.1.2.4.50 (JPEG Baseline (Process 1))"
    )
    assert describe_syntax("1.2.3.4") == "1.2.3.4"
