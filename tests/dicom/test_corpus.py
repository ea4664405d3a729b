"""Acceptance: every DICOM file bundled with pydicom is either stored and renders (to a PNG),
or rejected with a specific reason. One row per file records the expected outcome.

The table must list exactly the files `pydicom.data.get_testdata_files()` returns (minus the
explicitly listed non-DICOM ones), so a pydicom upgrade that adds or removes files fails here
until the table is reviewed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_files

from mediastream.dicom.library import IngestOutcome, Library

TEST_FILES = Path(get_testdata_files("CT_small.dcm")[0]).parent


@dataclass(frozen=True)
class Stored:
    frames: int
    shape: tuple[int, int]
    kind: str  # "gray" or "rgb"


@dataclass(frozen=True)
class Rejected:
    reason: str
    prefix: bool = False  # the rest names the decoder plugins' own errors, which vary by version


NOT_DICOM = {  # documentation and other formats shipped next to the DICOM files
    "README.txt",
    "crayons.icc",
    "dicomdirtests/README.txt",
    "dicomdirtests/TINY_ALPHA/README",
    "rtplan.dump",
    "rtstruct.dump",
    "test1.json",
    "test_PN.json",
    "zipMR.gz",
}

EXPECTED: dict[str, Stored | Rejected] = {
    "693_J2KI.dcm": Stored(1, (512, 512), "gray"),
    "CT_small.dcm": Stored(1, (128, 128), "gray"),
    "ExplVR_BigEnd.dcm": Stored(1, (60, 80), "rgb"),
    "ExplVR_BigEndNoMeta.dcm": Rejected("no pixel data"),
    "ExplVR_LitEndNoMeta.dcm": Rejected("no pixel data"),
    "GDCMJ2K_TextGBR.dcm": Stored(1, (400, 400), "rgb"),
    "J2K_pixelrep_mismatch.dcm": Stored(1, (512, 512), "gray"),
    "JPEG-lossy.dcm": Rejected(
        "cannot decode 1.2.840.10008.1.2.4.51 (JPEG Extended (Process 2 and 4)) pixel data: ",
        prefix=True,
    ),
    "JPEG2000-embedded-sequence-delimiter.dcm": Rejected(
        "cannot decode 1.2.840.10008.1.2.4.91 (JPEG 2000 Image Compression) pixel data: ",
        prefix=True,
    ),
    "JPEG2000.dcm": Stored(1, (1024, 256), "gray"),
    "JPEGLSNearLossless_08.dcm": Rejected("missing Series Instance UID (0020,000E)"),
    "JPEGLSNearLossless_16.dcm": Rejected("missing Series Instance UID (0020,000E)"),
    "JPGExtended.dcm": Stored(1, (1024, 256), "gray"),
    "MR_small.dcm": Stored(1, (64, 64), "gray"),
    "MR_small_RLE.dcm": Stored(1, (64, 64), "gray"),
    "MR_small_bigendian.dcm": Stored(1, (64, 64), "gray"),
    "MR_small_expb.dcm": Stored(1, (64, 64), "gray"),
    "MR_small_implicit.dcm": Stored(1, (64, 64), "gray"),
    "MR_small_jp2klossless.dcm": Stored(1, (64, 64), "gray"),
    "MR_small_jpeg_ls_lossless.dcm": Stored(1, (64, 64), "gray"),
    "MR_small_padded.dcm": Stored(1, (64, 64), "gray"),
    "MR_truncated.dcm": Rejected("pixel data truncated: expected 8192 bytes, found 8130"),
    "SC_jpeg_no_color_transform.dcm": Stored(1, (256, 256), "rgb"),
    "SC_jpeg_no_color_transform_2.dcm": Stored(1, (256, 256), "rgb"),
    "SC_rgb_dcmtk_+eb+cr.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_dcmtk_+eb+cy+n1.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_dcmtk_+eb+cy+n2.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_dcmtk_+eb+cy+np.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_dcmtk_+eb+cy+s2.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_dcmtk_+eb+cy+s4.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_gdcm_KY.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_jls_lossy_line.dcm": Rejected("missing Series Instance UID (0020,000E)"),
    "SC_rgb_jls_lossy_sample.dcm": Rejected("missing Series Instance UID (0020,000E)"),
    "SC_rgb_jpeg.dcm": Stored(1, (256, 256), "rgb"),
    "SC_rgb_jpeg_app14_dcmd.dcm": Stored(1, (256, 256), "rgb"),
    "SC_rgb_jpeg_dcmd.dcm": Stored(1, (256, 256), "rgb"),
    "SC_rgb_jpeg_dcmtk.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_jpeg_gdcm.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_jpeg_lossy_gdcm.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_rle.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_rle_16bit.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_rle_16bit_2frame.dcm": Stored(2, (100, 100), "rgb"),
    "SC_rgb_rle_2frame.dcm": Stored(2, (100, 100), "rgb"),
    "SC_rgb_rle_32bit.dcm": Stored(1, (100, 100), "rgb"),
    "SC_rgb_rle_32bit_2frame.dcm": Stored(2, (100, 100), "rgb"),
    "SC_rgb_small_odd.dcm": Stored(1, (3, 3), "rgb"),
    "SC_rgb_small_odd_big_endian.dcm": Stored(1, (3, 3), "rgb"),
    "SC_rgb_small_odd_jpeg.dcm": Stored(1, (3, 3), "rgb"),
    "SC_ybr_full_422_uncompressed.dcm": Stored(1, (100, 100), "rgb"),
    "UN_sequence.dcm": Rejected("no pixel data"),
    "badVR.dcm": Rejected("invalid Number of Frames (0028,0008): '1A'"),
    "dicomdirtests/77654033/CR1/6154": Stored(1, (16, 16), "gray"),
    "dicomdirtests/77654033/CR2/6247": Stored(1, (16, 16), "gray"),
    "dicomdirtests/77654033/CR3/6278": Stored(1, (16, 16), "gray"),
    "dicomdirtests/77654033/CT2/17106": Stored(1, (16, 16), "gray"),
    "dicomdirtests/77654033/CT2/17136": Stored(1, (16, 16), "gray"),
    "dicomdirtests/77654033/CT2/17166": Stored(1, (16, 16), "gray"),
    "dicomdirtests/77654033/CT2/17196": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892001/CT2N/6293": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892001/CT2N/6924": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892001/CT5N/2062": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892001/CT5N/2392": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892001/CT5N/2693": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892001/CT5N/3023": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892001/CT5N/3353": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR1/15820": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR1/4919": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR1/5641": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR2/15970": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR2/4950": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR2/4981": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR2/5011": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR2/6273": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR2/6605": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR2/6935": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR700/4467": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR700/4528": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR700/4558": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR700/4588": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR700/4618": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR700/4648": Stored(1, (16, 16), "gray"),
    "dicomdirtests/98892003/MR700/4678": Stored(1, (16, 16), "gray"),
    "dicomdirtests/DICOMDIR": Rejected("no pixel data"),
    "dicomdirtests/DICOMDIR-bigEnd": Rejected("no pixel data"),
    "dicomdirtests/DICOMDIR-empty.dcm": Rejected("no pixel data"),
    "dicomdirtests/DICOMDIR-implicit": Rejected("no pixel data"),
    "dicomdirtests/DICOMDIR-nooffset": Rejected("no pixel data"),
    "dicomdirtests/DICOMDIR-nopatient": Rejected("no pixel data"),
    "dicomdirtests/DICOMDIR-reordered": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/DICOMDIR": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000000": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000001": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000002": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000003": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000004": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000005": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000006": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000007": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000008": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000009": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000A": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000B": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000C": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000D": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000E": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000F": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000G": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000H": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000I": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000J": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000K": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000L": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000M": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000N": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000O": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000P": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000Q": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000R": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000S": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000T": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000U": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000V": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000W": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000X": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000Y": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000Z": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000010": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000011": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000012": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000013": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000014": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000015": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000016": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000017": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000018": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000019": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00001A": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00001B": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00001C": Rejected("no pixel data"),
    "dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00001D": Rejected("no pixel data"),
    "empty_charset_LEI.dcm": Rejected("no pixel data"),
    "examples_jpeg2k.dcm": Stored(1, (480, 640), "rgb"),
    "examples_overlay.dcm": Stored(1, (300, 484), "gray"),
    "examples_palette.dcm": Stored(1, (350, 800), "rgb"),
    "examples_rgb_color.dcm": Stored(1, (240, 320), "rgb"),
    "examples_ybr_color.dcm": Stored(30, (240, 320), "rgb"),
    "image_dfl.dcm": Stored(1, (512, 512), "gray"),
    "liver_1frame.dcm": Stored(1, (512, 512), "gray"),
    "liver_expb_1frame.dcm": Stored(1, (512, 512), "gray"),
    "meta_missing_tsyntax.dcm": Rejected("missing SOP Instance UID (0008,0018)"),
    "nested_priv_SQ.dcm": Rejected("missing SOP Instance UID (0008,0018)"),
    "no_meta.dcm": Rejected("not a DICOM file"),
    "no_meta_group_length.dcm": Rejected("no pixel data"),
    "priv_SQ.dcm": Rejected("no pixel data"),
    "reportsi.dcm": Rejected("no pixel data"),
    "reportsi_with_empty_number_tags.dcm": Rejected("no pixel data"),
    "rtdose.dcm": Stored(15, (10, 10), "gray"),
    "rtdose_1frame.dcm": Stored(1, (10, 10), "gray"),
    "rtdose_expb.dcm": Stored(15, (10, 10), "gray"),
    "rtdose_expb_1frame.dcm": Stored(1, (10, 10), "gray"),
    "rtdose_rle.dcm": Stored(15, (10, 10), "gray"),
    "rtdose_rle_1frame.dcm": Stored(1, (10, 10), "gray"),
    "rtplan.dcm": Rejected("no pixel data"),
    "rtplan_truncated.dcm": Rejected("no pixel data"),
    "rtstruct.dcm": Rejected("no pixel data"),
    "test-SR.dcm": Rejected("no pixel data"),
    "waveform_ecg.dcm": Rejected("no pixel data"),
}


def corpus() -> list[str]:
    return sorted(
        Path(f).relative_to(TEST_FILES).as_posix()
        for f in get_testdata_files()
        if Path(f).is_file()
    )


def test_the_table_covers_exactly_the_bundled_files() -> None:
    dicom = [name for name in corpus() if name not in NOT_DICOM]
    assert sorted(EXPECTED) == dicom
    assert NOT_DICOM <= set(corpus())


def ingest_copy(tmp_path: Path, name: str) -> tuple[Library, IngestOutcome]:
    library = Library(tmp_path / "library", cache_bytes=8 << 20)
    temp = library.new_temp_path()
    shutil.copyfile(TEST_FILES / name, temp)
    return library, library.ingest(temp, filename=Path(name).name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_file(tmp_path: Path, name: str) -> None:
    library, outcome = ingest_copy(tmp_path, name)
    expected = EXPECTED[name]
    if isinstance(expected, Rejected):
        assert outcome.outcome == "rejected", outcome
        reason = outcome.reason or ""
        assert reason.startswith(expected.reason) if expected.prefix else reason == expected.reason
        assert library.is_empty() and list((library.root / ".incoming").iterdir()) == []
        return
    assert outcome.outcome == "stored", outcome
    series_uid = outcome.series_uid
    assert series_uid is not None
    info = library.get_series(series_uid)
    assert (info.frame_count, (info.rows, info.columns)) == (expected.frames, expected.shape)
    for index in range(info.frame_count):
        frame = library.frame(series_uid, index)
        assert frame.gray.shape == expected.shape and frame.gray.dtype == np.uint8
        assert (frame.rgb is not None) == (expected.kind == "rgb")
        assert frame.gray.flags.c_contiguous
        assert frame.rgb is None or (
            frame.rgb.shape == (*expected.shape, 3) and frame.rgb.flags.c_contiguous
        )
        image = frame.gray if frame.rgb is None else cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
        ok, png = cv2.imencode(".png", image)
        assert ok and png.tobytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name", sorted(NOT_DICOM))
def test_non_dicom_companions_are_rejected(tmp_path: Path, name: str) -> None:
    _, outcome = ingest_copy(tmp_path, name)
    assert (outcome.outcome, outcome.reason) == ("rejected", "not a DICOM file")
