"""Validating an uploaded file by content, from its header, without decoding native pixels.

`inspect_file` parses the dataset up to the pixel data element (pydicom's
``stop_before_pixels``), checks what the server needs - pixel data in a transfer syntax it can
decode, safe UIDs, a consistent Image Pixel module, frame size limits - and compares the pixel
data's length with what the header implies by looking at the element header and the file size,
never by reading the pixel bytes. Compressed (encapsulated) pixel data has its fragment items
walked and its first frame decoded: a codestream the plugins cannot read is rejected at upload,
not discovered while streaming.

Decisions where the specification is silent:

* A dataset without preamble and file meta (a "raw" dataset, which pydicom reads with
  ``force=True``) is accepted when it starts like one - a group 0002 or 0008 element - and passes
  the same checks; its transfer syntax is the encoding pydicom read it with. Anything else
  without ``DICM`` is "not a DICOM file", so ``force=True`` never "parses" arbitrary bytes.
* A file with no Series Instance UID is rejected: a series is what the server lists and streams.
* Float and Double Float Pixel Data (parametric maps) are rejected by name.
* The first frame of compressed pixel data is decoded at ingest (see above); later frames of a
  multi-frame file are not, and fail on demand with `FrameDecodeError`.
"""

from __future__ import annotations

import math
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset
from pydicom.filereader import data_element_generator
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from mediastream.dicom.decode import (
    PixelElement,
    describe_syntax,
    load_prepared_frame,
    read_header,
    read_pixel_element,
    sniff,
    transfer_syntax_of,
)
from mediastream.dicom.display import PreparedFrame, Window, window_presets
from mediastream.dicom.errors import FrameDecodeError, IngestRejected
from mediastream.dicom.values import (
    element_floats,
    element_ints,
    element_strings,
    element_text,
    tag_name,
)

__all__ = ["InstanceHeader", "Limits", "header_from_metadata", "inspect_file", "is_safe_uid"]

_UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")
_UNDEFINED = 0xFFFFFFFF
_ITEM, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE0DD
_PHOTOMETRICS = {
    1: ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"),
    3: ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"),
}
_PALETTE_TAGS = (0x00281101, 0x00281102, 0x00281103)
_INFLATE_STEP = 1 << 20  # bytes inflated per step while measuring a deflated data set


@dataclass(frozen=True)
class Limits:
    """Upper bounds checked from the header before any pixel data is touched."""

    max_frame_pixels: int = 8192 * 8192
    max_frames: int = 50_000
    # Deflated datasets are inflated whole in memory (by pydicom, at ingest and on render), so
    # their inflated size is bounded too: a few hundred KB could otherwise inflate to gigabytes.
    max_inflated_bytes: int = 32 << 20

    def __post_init__(self) -> None:
        if self.max_frame_pixels < 1:
            raise ValueError(f"max_frame_pixels must be at least 1, got {self.max_frame_pixels}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {self.max_frames}")
        if self.max_inflated_bytes < 1:
            raise ValueError(
                f"max_inflated_bytes must be at least 1, got {self.max_inflated_bytes}"
            )


@dataclass(frozen=True)
class InstanceHeader:
    """What the library keeps about a stored instance: enough to list and order it."""

    sop_instance_uid: str
    series_instance_uid: str
    transfer_syntax: str
    modality: str = ""
    description: str = ""
    rows: int = 1
    columns: int = 1
    frames: int = 1
    samples_per_pixel: int = 1
    photometric: str = "MONOCHROME2"
    pixel_spacing: tuple[float, float] | None = None
    position: tuple[float, float, float] | None = None
    orientation: tuple[float, float, float, float, float, float] | None = None
    instance_number: int | None = None
    windows: tuple[Window, ...] = field(default=())


def is_safe_uid(uid: str) -> bool:
    """A DICOM UID fit for a file name: digits and dots, at most 64 characters."""
    return len(uid) <= 64 and _UID_RE.fullmatch(uid) is not None


def inspect_file(
    path: Path, *, limits: Limits, decode_compressed: bool = True
) -> tuple[InstanceHeader, PreparedFrame | None]:
    """Validate the DICOM file at `path` by content and return its header.

    With `decode_compressed`, encapsulated pixel data has its first frame decoded, which is
    returned (prepared for display) so the caller may cache it; otherwise the second value is
    None.

    Raises
    ------
    IngestRejected
        With a specific reason, e.g. "not a DICOM file", "no pixel data",
        "pixel data truncated: expected 524288 bytes, found 1000".
    """
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        _check_inflated_size(f, limits.max_inflated_bytes)
        f.seek(0)
        ds, syntax, pixel_length, fragments = _read_structure(f, size)
        header = _header(ds, syntax)
        _check_pixel_module(ds, header, limits)
        if syntax.is_encapsulated:
            if fragments < header.frames:
                raise IngestRejected(
                    f"encapsulated pixel data truncated: {header.frames} frames declared, "
                    f"{fragments} fragments found"
                )
        else:
            expected = _native_length(ds, header)
            if pixel_length < expected:
                raise IngestRejected(
                    f"pixel data truncated: expected {expected} bytes, found {pixel_length}"
                )
    prepared = None
    if syntax.is_encapsulated and decode_compressed:
        try:
            prepared = load_prepared_frame(
                path, 0, transfer_syntax=syntax, sop_instance_uid=header.sop_instance_uid
            )
        except FrameDecodeError as exc:
            reason = str(exc.__cause__ or exc)
            reason = " ".join(reason.split())
            raise IngestRejected(
                f"cannot decode {describe_syntax(syntax)} pixel data: {reason}"
            ) from exc
    return header, prepared


def header_from_metadata(
    ds: Dataset, *, limits: Limits, transfer_syntax: str = ""
) -> InstanceHeader:
    """The header of an instance known only from its metadata (e.g. DICOMweb's JSON).

    The same identity and Image Pixel module checks as `inspect_file`, without the file: the
    pixel data's presence is the caller's to check (metadata lists it as a bulk data URI), and
    its length is checked when the instance itself is read. `transfer_syntax` may be empty when
    the metadata does not say (the retrieved file's meta then does).

    Raises
    ------
    IngestRejected
        With the same sentences `inspect_file` uses.
    """
    _require_identity(ds, has_pixels=True, float_tag=_float_tag(ds))
    header = _header(ds, UID(transfer_syntax))
    _check_pixel_module(ds, header, limits)
    return header


def _check_inflated_size(f: BinaryIO, limit: int) -> None:
    """Refuse a deflated dataset that inflates beyond `limit` bytes, before pydicom inflates it.

    Streams through the zlib data keeping nothing, so a deflate bomb costs a bounded amount of
    memory however far it would inflate.
    """
    if sniff(f.read(132)) != "part10":
        return
    try:
        meta = {e.tag: e for e in data_element_generator(f, False, True, stop_when=_after_meta)}
    except Exception:  # a malformed meta group: the regular reading reports it
        return
    syntax = meta.get(BaseTag(0x00020010))
    if syntax is None or not isinstance(syntax.value, bytes):
        return
    if syntax.value.decode("latin-1").strip(" \x00") != DeflatedExplicitVRLittleEndian:
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as DICOM PS3.5 A.5 says
    total = 0
    try:
        while (chunk := f.read(1 << 16)) and not inflater.eof:
            total += len(inflater.decompress(chunk, _INFLATE_STEP))
            while inflater.unconsumed_tail and total <= limit:
                total += len(inflater.decompress(inflater.unconsumed_tail, _INFLATE_STEP))
            if total > limit:
                raise IngestRejected(
                    f"deflated data set inflates beyond the limit of {limit} bytes"
                )
    except zlib.error as exc:
        raise IngestRejected(f"unreadable deflated data: {exc}") from None


def _after_meta(tag: int, vr: str | None, length: int) -> bool:
    return tag >> 16 != 0x0002


def _read_structure(f: BinaryIO, size: int) -> tuple[Dataset, UID, int, int]:
    """Parse the header; return it, the transfer syntax, the native pixel data length available
    in the file, and the number of fragments of encapsulated pixel data."""
    kind = sniff(f.read(132))
    if kind is None:
        raise IngestRejected("not a DICOM file")
    f.seek(0)
    try:
        ds = read_header(f, kind)
    except Exception as exc:  # pydicom raises many types on malformed input
        if kind == "raw":
            raise IngestRejected("not a DICOM file") from exc
        raise IngestRejected(_unreadable(exc)) from exc
    syntax = transfer_syntax_of(ds)
    if syntax == DeflatedExplicitVRLittleEndian:
        f.seek(0)
        try:
            whole = read_header(f, kind, whole=True)
        except Exception as exc:
            raise IngestRejected(_unreadable(exc)) from exc
        pixels = whole.get("PixelData")
        _require_identity(ds, has_pixels=pixels is not None, float_tag=_float_tag(whole))
        return ds, syntax, len(pixels), 0
    implicit, little = ds.original_encoding
    elem = read_pixel_element(f, implicit=bool(implicit), little=little is not False)
    _require_identity(ds, has_pixels=elem is not None, float_tag=elem.tag if elem else None)
    assert elem is not None  # checked above
    if syntax is None:
        raise IngestRejected("missing Transfer Syntax UID (0002,0010)")
    _require_decoder(syntax)
    if syntax.is_encapsulated:
        if elem.length != _UNDEFINED:
            raise IngestRejected(
                f"invalid pixel data: {describe_syntax(syntax)} needs encapsulated pixel data "
                "(undefined length)"
            )
        return ds, syntax, 0, _count_fragments(f, elem, size)
    if elem.length == _UNDEFINED:
        raise IngestRejected(
            f"invalid pixel data: undefined length in native transfer syntax {syntax}"
        )
    return ds, syntax, min(elem.length, size - elem.value_offset), 0


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, EOFError | struct.error):
        return "unreadable DICOM file: it ends in the middle of an element"
    return f"unreadable DICOM file: {' '.join(str(exc).split())}"


def _float_tag(ds: Dataset) -> int | None:
    return next((tag for tag in (0x7FE00008, 0x7FE00009) if tag in ds), None)


def _require_identity(ds: Dataset, *, has_pixels: bool, float_tag: int | None) -> None:
    if float_tag in (0x7FE00008, 0x7FE00009):
        name = "Float Pixel Data" if float_tag == 0x7FE00008 else "Double Float Pixel Data"
        raise IngestRejected(
            f"{name} ({float_tag >> 16:04X},{float_tag & 0xFFFF:04X}) is not supported"
        )
    if not has_pixels:
        raise IngestRejected("no pixel data")
    for tag in (0x00080018, 0x0020000E):
        values = element_strings(ds, tag)
        if not values or not values[0]:
            raise IngestRejected(f"missing {tag_name(tag)}")
        if not is_safe_uid(values[0]):
            raise IngestRejected(
                f"invalid {tag_name(tag)} {values[0][:80]!r}: a UID is digits and dots, "
                "at most 64 characters"
            )


def _require_decoder(syntax: UID) -> None:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise IngestRejected(f"unsupported transfer syntax {describe_syntax(syntax)}") from None
    if not decoder.is_available:
        raise IngestRejected(
            f"unsupported transfer syntax {describe_syntax(syntax)}: no decoding plugin installed"
        )


def _count_fragments(f: BinaryIO, elem: PixelElement, size: int) -> int:
    """Walk the items of encapsulated pixel data by their lengths (reading 8 bytes per item);
    return the number of fragments after the Basic Offset Table."""
    offset, items = elem.value_offset, 0
    while True:
        f.seek(offset)
        head = f.read(8)
        if len(head) < 8:
            raise IngestRejected(
                "encapsulated pixel data truncated: the file ends before the sequence delimiter"
            )
        group, element, length = struct.unpack("<HHL", head)
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            break
        if tag != _ITEM or length == _UNDEFINED:
            raise IngestRejected(f"invalid encapsulated pixel data: bad item at byte {offset}")
        offset += 8 + length
        if offset > size:
            raise IngestRejected(
                f"encapsulated pixel data truncated: an item ends at byte {offset}, "
                f"the file has {size} bytes"
            )
        items += 1
    if items < 2:
        raise IngestRejected("no frames in encapsulated pixel data")
    return items - 1  # the first item is the Basic Offset Table


def _single_int(ds: Dataset, tag: int, vr: str, *, required: bool = True) -> int | None:
    try:
        values = element_ints(ds, tag, vr)
    except ValueError as exc:
        raise IngestRejected(str(exc)) from None
    if not values:
        if required:
            raise IngestRejected(f"missing {tag_name(tag)}")
        return None
    return values[0]


def _optional_floats(ds: Dataset, tag: int, count: int) -> tuple[float, ...] | None:
    try:
        values = element_floats(ds, tag)
    except ValueError:
        return None
    return tuple(values) if values is not None and len(values) == count else None


def _header(ds: Dataset, syntax: UID) -> InstanceHeader:
    rows = _single_int(ds, 0x00280010, "US")
    columns = _single_int(ds, 0x00280011, "US")
    samples = _single_int(ds, 0x00280002, "US")
    frames = _single_int(ds, 0x00280008, "IS", required=False)
    photometric = (element_strings(ds, 0x00280004) or [""])[0].upper()
    number: int | None = None
    try:
        numbers = element_ints(ds, 0x00200013, "IS")
        number = numbers[0] if numbers else None
    except ValueError:
        pass
    spacing = _optional_floats(ds, 0x00280030, 2)
    if spacing is None:
        for groups in (0x52009229, 0x52009230):  # Shared, then Per-Frame Functional Groups
            items = ds[groups].value if groups in ds else None
            measures = items[0].get("PixelMeasuresSequence") if items else None
            if measures:
                spacing = _optional_floats(measures[0], 0x00280030, 2)
                break
    if spacing is not None and not all(v > 0 for v in spacing):
        spacing = None
    return InstanceHeader(
        sop_instance_uid=(element_strings(ds, 0x00080018) or [""])[0],
        series_instance_uid=(element_strings(ds, 0x0020000E) or [""])[0],
        transfer_syntax=str(syntax),
        modality=(element_strings(ds, 0x00080060) or [""])[0],
        description=_text(ds, 0x0008103E),
        rows=rows or 0,
        columns=columns or 0,
        frames=1 if frames is None else frames,
        samples_per_pixel=samples or 0,
        photometric=photometric,
        pixel_spacing=spacing,  # type: ignore[arg-type]
        position=_optional_floats(ds, 0x00200032, 3),  # type: ignore[arg-type]
        orientation=_optional_floats(ds, 0x00200037, 6),  # type: ignore[arg-type]
        instance_number=number,
        windows=window_presets(ds),
    )


def _text(ds: Dataset, tag: int) -> str:
    try:
        values = element_text(ds, tag)
    except Exception:  # an undecodable character set: better no description than no image
        return ""
    return (values or [""])[0].strip()


def _check_pixel_module(ds: Dataset, header: InstanceHeader, limits: Limits) -> None:
    """The Image Pixel module checks pydicom's decoders make, with specific sentences."""
    rows, columns, frames = header.rows, header.columns, header.frames
    for tag, value in ((0x00280010, rows), (0x00280011, columns)):
        if not 1 <= value <= 65535:
            raise IngestRejected(f"{tag_name(tag)} must be between 1 and 65535, got {value}")
    if frames < 1:
        raise IngestRejected(f"Number of Frames (0028,0008) must be at least 1, got {frames}")
    if rows * columns > limits.max_frame_pixels:
        raise IngestRejected(
            f"frame too large: {rows} x {columns} pixels exceeds the limit of "
            f"{limits.max_frame_pixels} pixels per frame"
        )
    if frames > limits.max_frames:
        raise IngestRejected(
            f"too many frames: {frames} exceeds the limit of {limits.max_frames} frames"
        )
    allocated = _single_int(ds, 0x00280100, "US")
    stored = _single_int(ds, 0x00280101, "US")
    representation = _single_int(ds, 0x00280103, "US")
    assert allocated is not None and stored is not None  # required above
    if not (allocated == 1 or (allocated % 8 == 0 and 8 <= allocated <= 64)):
        raise IngestRejected(
            f"Bits Allocated (0028,0100) must be 1 or a multiple of 8 up to 64, got {allocated}"
        )
    if not 1 <= stored <= allocated:
        raise IngestRejected(
            f"Bits Stored (0028,0101) must be between 1 and Bits Allocated ({allocated}), "
            f"got {stored}"
        )
    if representation not in (0, 1):
        raise IngestRejected(
            f"Pixel Representation (0028,0103) must be 0 or 1, got {representation}"
        )
    samples, photometric = header.samples_per_pixel, header.photometric
    if samples not in _PHOTOMETRICS:
        raise IngestRejected(f"Samples per Pixel (0028,0002) must be 1 or 3, got {samples}")
    if not photometric:
        raise IngestRejected("missing Photometric Interpretation (0028,0004)")
    if photometric not in _PHOTOMETRICS[samples]:
        raise IngestRejected(
            f"unsupported Photometric Interpretation (0028,0004) {photometric!r} "
            f"with Samples per Pixel (0028,0002) {samples}"
        )
    if samples == 3 and _single_int(ds, 0x00280006, "US") not in (0, 1):
        raise IngestRejected("Planar Configuration (0028,0006) must be 0 or 1")
    for tag in (0x00281052, 0x00281053):  # Rescale Intercept / Slope, used by every render
        try:
            element_floats(ds, tag)
        except ValueError as exc:
            raise IngestRejected(str(exc)) from None
    if photometric == "PALETTE COLOR":
        for tag in _PALETTE_TAGS:
            if tag not in ds:
                colour = ("Red", "Green", "Blue")[tag - _PALETTE_TAGS[0]]
                raise IngestRejected(
                    f"missing {colour} Palette Color Lookup Table Descriptor "
                    f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
                )


def _native_length(ds: Dataset, header: InstanceHeader) -> int:
    """Bytes of native pixel data the header implies (PS3.5 8.1.1; 1-bit data is packed)."""
    allocated = _single_int(ds, 0x00280100, "US") or 0
    pixels = header.rows * header.columns * header.frames
    if allocated == 1:
        return math.ceil(pixels * header.samples_per_pixel / 8)
    samples = header.samples_per_pixel
    if header.photometric == "YBR_FULL_422":
        samples = 2  # two chroma samples shared by each pair of pixels
    return pixels * samples * allocated // 8
