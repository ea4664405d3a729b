"""Reading DICOM headers and decoding single frames with pydicom and its plugins.

Frames are decoded one at a time straight from the file: the header is parsed up to the pixel
data element, then pydicom's decoder for the transfer syntax reads only the requested frame
(native or encapsulated), so a multi-frame file is never decoded whole.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import data_element_generator
from pydicom.pixels import as_pixel_options, get_decoder
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from mediastream.dicom import codecs
from mediastream.dicom.display import PreparedFrame, prepare_frame
from mediastream.dicom.errors import FrameDecodeError
from mediastream.dicom.values import element_strings

__all__ = [
    "PixelElement",
    "decode_frame",
    "describe_syntax",
    "load_prepared_frame",
    "read_header",
    "read_pixel_element",
    "sniff",
    "transfer_syntax_of",
]

log = logging.getLogger(__name__)

PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
_PLAIN_SYNTAXES = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian)
_RAW_ENCODINGS = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


def sniff(head: bytes) -> Literal["part10", "raw"] | None:
    """Classify a file from its first 132 bytes.

    "part10" has the 128-byte preamble and ``DICM``; "raw" starts straight with a group 0002 or
    0008 element (a dataset written without preamble, which pydicom reads with ``force=True``);
    None is anything else. Refusing other files up front keeps ``force=True`` from "parsing"
    arbitrary bytes into nonsense elements.
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "part10"
    if len(head) >= 8:
        little, big = struct.unpack("<H", head[:2])[0], struct.unpack(">H", head[:2])[0]
        if little in (0x0002, 0x0008) or big in (0x0002, 0x0008):
            return "raw"
    return None


def read_header(f: BinaryIO, kind: Literal["part10", "raw"], *, whole: bool = False) -> Dataset:
    """Parse the dataset in `f` up to (not including) its pixel data, or all of it if `whole`.

    Afterwards `f` is positioned at the pixel data element's tag (or at the end of the file).
    """
    if kind == "part10" and not whole:
        ds = _read_part10_header(f)
        if ds is not None:
            return ds
        f.seek(0)
    return dcmread(f, stop_before_pixels=not whole, force=kind == "raw")


def _stop_after_meta(tag: int, vr: str | None, length: int) -> bool:
    return tag >> 16 != 0x0002


def _stop_at_pixels(tag: int, vr: str | None, length: int) -> bool:
    return tag in PIXEL_TAGS


def _read_part10_header(f: BinaryIO) -> Dataset | None:
    """The common case of `read_header` at about half the cost of ``dcmread``.

    For a Part 10 file in an unambiguous transfer syntax this runs pydicom's element parser
    (``data_element_generator``, what ``dcmread`` uses) over the meta group and then the dataset,
    skipping ``dcmread``'s generality (command sets, deflate, encoding repair). Anything unusual
    returns None so that the caller falls back to ``dcmread``.
    """
    f.seek(132)
    try:
        meta = {
            e.tag: e for e in data_element_generator(f, False, True, stop_when=_stop_after_meta)
        }
        syntax_elem = meta.get(BaseTag(0x00020010))
        if syntax_elem is None or not isinstance(syntax_elem.value, bytes):
            return None
        syntax = UID(syntax_elem.value.decode("latin-1").strip(" \x00"))
        if syntax not in _PLAIN_SYNTAXES and not (
            syntax.is_encapsulated and syntax.is_transfer_syntax
        ):
            return None
        implicit, little = syntax.is_implicit_VR, syntax.is_little_endian
        start = f.tell()
        peek = f.read(6)
        f.seek(start)
        if len(peek) == 6 and peek[4:6].isalpha() == implicit:
            return None  # the VR bytes contradict the transfer syntax: let dcmread sort it out
        elements = data_element_generator(f, implicit, little, stop_when=_stop_at_pixels)
        ds = Dataset({e.tag: e for e in elements})
        ds.file_meta = FileMetaDataset(meta)
    except Exception:  # malformed somewhere: dcmread decides how to report it
        return None
    ds.set_original_encoding(implicit, little, ds._character_set)
    return ds


def transfer_syntax_of(ds: Dataset) -> UID | None:
    """The dataset's transfer syntax: from its file meta, else as pydicom read a raw dataset."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and 0x00020010 in meta:
        return UID((element_strings(meta, 0x00020010) or [""])[0])
    if meta is not None and len(meta):
        return None  # a meta group without a transfer syntax: don't guess
    return _RAW_ENCODINGS.get(tuple(ds.original_encoding))  # type: ignore[arg-type]


def describe_syntax(uid: str) -> str:
    """E.g. ``"1.2.840.10008.1.2.4.50 (JPEG Baseline (Process 1))"``."""
    name = UID(uid).name
    return f"{uid} ({name})" if name and name != uid else uid


@dataclass(frozen=True)
class PixelElement:
    """The header of a pixel data element; `f` is left at the start of its value."""

    tag: int
    keyword: str
    vr: str | None  # None in implicit VR
    length: int  # 0xFFFFFFFF for undefined (encapsulated) length
    value_offset: int


def read_pixel_element(f: BinaryIO, *, implicit: bool, little: bool) -> PixelElement | None:
    """Read the element header at the current position; None unless it is a pixel data element.

    `implicit` and `little` are the encoding pydicom actually read the dataset with
    (``Dataset.original_encoding``), which it may have corrected from a wrong transfer syntax.
    """
    start = f.tell()
    head = f.read(8)
    if len(head) < 8:
        return None
    order = "<" if little else ">"
    group, elem = struct.unpack(f"{order}HH", head[:4])
    tag = group << 16 | elem
    if tag not in PIXEL_TAGS:
        return None
    vr: str | None = None
    if not implicit and not head[4:6].isalpha():
        implicit = True  # written implicit despite its transfer syntax; pydicom copes likewise
    if implicit:
        (length,) = struct.unpack(f"{order}L", head[4:])
    else:
        vr = head[4:6].decode("latin-1")
        extra = f.read(4)
        if len(extra) < 4:
            return None
        (length,) = struct.unpack(f"{order}L", extra)
    return PixelElement(tag, PIXEL_TAGS[tag], vr, length, start + (8 if vr is None else 12))


def decode_frame(
    src: Path | BinaryIO, index: int, *, transfer_syntax: str | None = None
) -> tuple[Dataset, NDArray[np.generic], str]:
    """Decode frame `index` of the dataset in `src` (a path or a binary file object).

    Returns the header dataset (no pixel data), the frame as decoded by pydicom (YBR already
    turned to RGB where pydicom does so) and the photometric interpretation of that array.
    `transfer_syntax` is needed for raw datasets without file meta when it cannot be inferred.
    Raises whatever pydicom raises; see `load_prepared_frame`. (pydicom's warnings about
    sloppy-but-readable files are routed once per process: `mediastream.process`.)
    """
    if isinstance(src, Path):
        with src.open("rb") as opened:
            return decode_frame(opened, index, transfer_syntax=transfer_syntax)
    f = src
    kind = sniff(f.read(132)) or "raw"
    f.seek(0)
    ds = read_header(f, kind)
    syntax = UID(transfer_syntax) if transfer_syntax else transfer_syntax_of(ds)
    if syntax is None:
        raise ValueError("missing Transfer Syntax UID (0002,0010)")
    decoder = get_decoder(syntax)
    if syntax == DeflatedExplicitVRLittleEndian:  # the whole dataset is zlib-compressed
        f.seek(0)
        ds = read_header(f, kind, whole=True)
        arr, props = decoder.as_array(ds, index=index)
        del ds.PixelData
    elif codecs.PLUGIN in decoder.available_plugins:  # JPEG 2000, decoded without the GIL
        implicit, little = ds.original_encoding
        start = f.tell()
        try:
            arr, props = _decode_at(f, ds, syntax, index, implicit, little, codecs.PLUGIN)
        except Exception:  # let pydicom's own plugins try, and explain a failure
            f.seek(start)
            arr, props = _decode_at(f, ds, syntax, index, implicit, little, "")
    else:
        implicit, little = ds.original_encoding
        arr, props = _decode_at(f, ds, syntax, index, implicit, little, "")
    photometric = str(props.get("photometric_interpretation") or "MONOCHROME2")
    return ds, arr, photometric


def _decode_at(
    f: BinaryIO,
    ds: Dataset,
    syntax: UID,
    index: int,
    implicit: bool | None,
    little: bool | None,
    plugin: str,
) -> tuple[NDArray[np.generic], dict[str, str | int]]:
    """Decode frame `index` of the pixel data element at `f`'s position ("" = any plugin)."""
    elem = read_pixel_element(f, implicit=bool(implicit), little=little is not False)
    if elem is None:
        raise ValueError("no pixel data")
    opts = as_pixel_options(ds, transfer_syntax_uid=syntax, pixel_keyword=elem.keyword)
    if elem.vr:
        opts["pixel_vr"] = elem.vr
    arr, props = get_decoder(syntax).as_array(f, index=index, decoding_plugin=plugin, **opts)
    return arr, dict(props)


def load_prepared_frame(
    path: Path, index: int, *, transfer_syntax: str, sop_instance_uid: str
) -> PreparedFrame:
    """Decode frame `index` of a stored file and apply the window-independent display steps.

    Raises
    ------
    FrameDecodeError
        Naming the SOP Instance UID, the transfer syntax and pydicom's reason.
    FileNotFoundError
        When the file has gone (deleted concurrently).
    """
    try:
        ds, arr, photometric = decode_frame(path, index, transfer_syntax=transfer_syntax)
        return prepare_frame(arr, ds, photometric=photometric, frame=index)
    except FileNotFoundError:
        raise
    except Exception as exc:  # pydicom and its plugins raise many types; all mean "can't"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise FrameDecodeError(
            f"cannot decode frame {index} of SOP Instance UID {sop_instance_uid} "
            f"({describe_syntax(transfer_syntax)}): {reason}"
        ) from exc
