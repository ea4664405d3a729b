"""Byte-level surgery on real DICOM files: find an element, then make its header lie.

The fuzz tests start from valid files (pydicom's bundled test data and the demo phantom) and
damage them the way broken writers and hostile clients do: flipped bits, truncation, length
fields that claim more (or less) than the file holds, and Image Pixel attributes that claim huge
images. Element headers are found by scanning for the tag's bytes, which is crude but needs no
parser - the point is to produce files a parser has not vetted.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from mediastream.dicom.phantom import phantom_datasets

PIXEL_DATA = 0x7FE00010
ROWS = 0x00280010
COLUMNS = 0x00280011
NUMBER_OF_FRAMES = 0x00280008
SAMPLES_PER_PIXEL = 0x00280002
BITS_ALLOCATED = 0x00280100
TRANSFER_SYNTAX = 0x00020010
META_GROUP_LENGTH = 0x00020000
SERIES_INSTANCE_UID = 0x0020000E
SOP_INSTANCE_UID = 0x00080018

# Elements whose length field is worth lying about: structure (meta group length, transfer
# syntax), identity, the Image Pixel module and the pixel data itself.
LENGTH_TARGETS = (
    META_GROUP_LENGTH,
    TRANSFER_SYNTAX,
    SOP_INSTANCE_UID,
    SERIES_INSTANCE_UID,
    SAMPLES_PER_PIXEL,
    NUMBER_OF_FRAMES,
    ROWS,
    COLUMNS,
    BITS_ALLOCATED,
    PIXEL_DATA,
)

# Value representations with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT"}
_ALL_VRS = _LONG_VRS | {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
    b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US", b"UV",
}  # fmt: skip

# Seeds: one file per encoding family the server decodes, plus a multi-frame file.
PYDICOM_SEEDS = (
    "CT_small.dcm",  # explicit VR little endian, 16-bit CT
    "MR_small_implicit.dcm",  # implicit VR little endian
    "MR_small_bigendian.dcm",  # explicit VR big endian
    "MR_small_RLE.dcm",  # RLE lossless (encapsulated)
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, colour
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "rtdose.dcm",  # native multi-frame (15 frames)
    "image_dfl.dcm",  # deflated explicit VR little endian
)


def dataset_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def load_seeds() -> dict[str, bytes]:
    """The seed files by name: pydicom's bundled files and one phantom slice."""
    seeds: dict[str, bytes] = {}
    for name in PYDICOM_SEEDS:
        path = get_testdata_file(name)
        assert path is not None, f"pydicom test file {name} is not available locally"
        seeds[name] = Path(str(path)).read_bytes()
    # Not the phantom the tests store as their known-good series: other UIDs (size 48).
    seeds["phantom"] = dataset_bytes(next(phantom_datasets(n_slices=2, size=48)))
    return seeds


@dataclass(frozen=True)
class ElementHeader:
    """Where an element's header sits in a file and how its length is encoded."""

    tag: int
    offset: int  # of the tag
    little: bool
    length_offset: int
    length_size: int  # 2 (explicit VR, short) or 4 bytes
    length: int
    value_offset: int


def find_element(data: bytes, tag: int) -> ElementHeader | None:
    """The first plausible header of `tag` in `data` (little or big endian, explicit or implicit
    VR); None if the tag's bytes occur nowhere an element could start."""
    group, element = tag >> 16, tag & 0xFFFF
    for start, little in _occurrences(data, group, element):
        order = "<" if little else ">"
        vr = data[start + 4 : start + 6]
        if vr in _LONG_VRS and start + 12 <= len(data):
            length_offset, size = start + 8, 4
        elif vr in _ALL_VRS and start + 8 <= len(data):
            length_offset, size = start + 6, 2
        elif little and start + 8 <= len(data):  # implicit VR (always little endian)
            length_offset, size = start + 4, 4
        else:
            continue
        fmt = order + ("H" if size == 2 else "L")
        (length,) = struct.unpack_from(fmt, data, length_offset)
        value_offset = length_offset + size
        if length != 0xFFFFFFFF and value_offset + length > len(data):
            continue  # the tag's bytes inside some other value
        return ElementHeader(tag, start, little, length_offset, size, length, value_offset)
    return None


def _occurrences(data: bytes, group: int, element: int) -> list[tuple[int, bool]]:
    found = []
    for little in (True, False):
        pattern = struct.pack("<HH" if little else ">HH", group, element)
        start = data.find(pattern)
        while start >= 0:
            found.append((start, little))
            start = data.find(pattern, start + 1)
    return sorted(found)


def with_length(data: bytes, header: ElementHeader, length: int) -> bytes:
    """`data` with `header`'s length field overwritten (reduced modulo the field's range)."""
    size = header.length_size
    fmt = ("<" if header.little else ">") + ("H" if size == 2 else "L")
    buf = bytearray(data)
    struct.pack_into(fmt, buf, header.length_offset, length % (1 << (8 * size)))
    return bytes(buf)


def flip_bits(data: bytes, bits: list[int]) -> bytes:
    """`data` with the given bit positions (modulo its size in bits) inverted."""
    buf = bytearray(data)
    for bit in bits:
        bit %= len(buf) * 8
        buf[bit // 8] ^= 1 << (bit % 8)
    return bytes(buf)


@dataclass(frozen=True)
class DimensionLie:
    """Image Pixel attributes to claim, written through pydicom so the file stays well formed."""

    rows: int | None = None
    columns: int | None = None
    frames: str | None = None  # Number of Frames is an IS string: "2000", "-1", "1e9"…
    samples: int | None = None
    bits_allocated: int | None = None


_FRAMES_PLACEHOLDER = b"987654321012"  # an IS value of a fixed width, unlike anything else


def with_dimensions(data: bytes, lie: DimensionLie) -> bytes:
    """Re-encode `data` with `lie` applied to its header; the pixel data stays as it was."""
    # pydicom warns when told to write values outside an attribute's rules, which is the point
    # here; the test suite turns warnings into errors, so they are silenced for this call only.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(io.BytesIO(data), force=True)
        if lie.rows is not None:
            ds.Rows = lie.rows
        if lie.columns is not None:
            ds.Columns = lie.columns
        if lie.frames is not None:
            # A fixed-width placeholder, replaced below: pydicom refuses to write nonsense.
            ds.NumberOfFrames = _FRAMES_PLACEHOLDER.decode()
        if lie.samples is not None:
            ds.SamplesPerPixel = lie.samples
        if lie.bits_allocated is not None:
            ds.BitsAllocated = lie.bits_allocated
        buffer = io.BytesIO()
        # Keep the original encoding: a lie about the image, not a change of transfer syntax.
        ds.save_as(buffer, enforce_file_format=False)
    data = buffer.getvalue()
    if lie.frames is not None:
        claim = lie.frames.encode("ascii").ljust(len(_FRAMES_PLACEHOLDER))
        assert len(claim) == len(_FRAMES_PLACEHOLDER) and data.count(_FRAMES_PLACEHOLDER) == 1
        data = data.replace(_FRAMES_PLACEHOLDER, claim)
    return data


def deflate_bomb(template: bytes, pixel_bytes: int) -> bytes:
    """A Deflated Explicit VR Little Endian file whose pixel data inflates to `pixel_bytes`.

    The header is `template`'s (an explicit VR little endian file) without its pixel data; the
    pixel data is zeros. Built from one compressed MiB repeated, so it takes milliseconds: each
    piece is flushed with ``Z_FULL_FLUSH`` (byte-aligned, no reference to earlier data), and
    pieces like that may be concatenated into one raw deflate stream.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings about sloppy test files
        ds = dcmread(io.BytesIO(template))
        del ds.PixelData
        body = io.BytesIO()
        ds.save_as(body, enforce_file_format=True)  # explicit VR little endian, like template
    plain = body.getvalue()
    group = find_element(plain, META_GROUP_LENGTH)
    assert group is not None
    (meta_length,) = struct.unpack_from("<L", plain, group.value_offset)
    meta_end = group.value_offset + 4 + meta_length
    meta, dataset = plain[:meta_end], plain[meta_end:]
    syntax = find_element(meta, TRANSFER_SYNTAX)
    assert syntax is not None
    deflated_uid = b"1.2.840.10008.1.2.1.99"  # 22 bytes: even, no padding needed
    meta = (
        meta[: syntax.length_offset]
        + struct.pack("<H", len(deflated_uid))
        + deflated_uid
        + meta[syntax.value_offset + syntax.length :]
    )
    group_length = len(meta) - (group.value_offset + 4)
    meta = (
        meta[: group.value_offset]
        + struct.pack("<L", group_length)
        + meta[group.value_offset + 4 :]
    )

    def piece(data: bytes) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)

    chunk = 1 << 20
    assert pixel_bytes % chunk == 0
    pixel_header = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block
    zeros = piece(bytes(chunk))
    return meta + piece(dataset + pixel_header) + zeros * (pixel_bytes // chunk) + final
