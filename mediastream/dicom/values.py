"""Fast, tolerant reads of the few element values the library needs.

pydicom converts a raw element on first access through its value-representation machinery
(``DSfloat``/``IS`` objects, validation, character sets), which costs tens of microseconds per
element and can emit warnings for sloppy values. Ingest reads ~20 elements per upload, so these
helpers decode the raw bytes of the plain-ASCII value representations (UI, CS, DS, IS, US)
directly, and fall back to pydicom's conversion for anything unusual (an already converted
element, an unexpected VR). Text in a character set (LO, SH) always goes through pydicom.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

__all__ = ["element_floats", "element_ints", "element_strings", "element_text", "tag_name"]

_TAG_NAMES: dict[int, str] = {
    0x00020010: "Transfer Syntax UID",
    0x00080018: "SOP Instance UID",
    0x00080060: "Modality",
    0x0008103E: "Series Description",
    0x0020000E: "Series Instance UID",
    0x00200013: "Instance Number",
    0x00200032: "Image Position (Patient)",
    0x00200037: "Image Orientation (Patient)",
    0x00280002: "Samples per Pixel",
    0x00280004: "Photometric Interpretation",
    0x00280006: "Planar Configuration",
    0x00280008: "Number of Frames",
    0x00280010: "Rows",
    0x00280011: "Columns",
    0x00280030: "Pixel Spacing",
    0x00280100: "Bits Allocated",
    0x00280101: "Bits Stored",
    0x00280103: "Pixel Representation",
    0x00281050: "Window Center",
    0x00281051: "Window Width",
    0x00281052: "Rescale Intercept",
    0x00281053: "Rescale Slope",
    0x00281055: "Window Center & Width Explanation",
    0x00281056: "VOI LUT Function",
    0x7FE00010: "Pixel Data",
}


def tag_name(tag: int) -> str:
    """Return e.g. ``"Rows (0028,0010)"``: how errors quote an attribute."""
    name = _TAG_NAMES.get(tag)
    code = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{name} {code}" if name else code


def _as_list(value: object) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def element_strings(ds: Dataset, tag: int) -> list[str] | None:
    """Return the values of an ASCII string element (UI, CS, DS, IS), or None when absent.

    Leading and trailing spaces and NUL padding are removed; an empty element gives ``[]``.
    """
    elem = ds.get_item(tag)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if not raw:
            return []
        if isinstance(raw, bytes | bytearray):
            text = bytes(raw).decode("latin-1").strip(" \x00")
            return [part.strip(" \x00") for part in text.split("\\")] if text else []
        elem = ds[tag]  # a deferred or odd raw value: let pydicom convert it
    return [str(v).strip(" \x00") for v in _as_list(elem.value)]


def element_text(ds: Dataset, tag: int) -> list[str] | None:
    """Return the values of a text element (LO, SH, ...) decoded in the dataset's character set.

    Plain ASCII reads the same in every character set DICOM allows (ISO 2022 switches only
    after an ESC byte), so only other text goes through pydicom's character set handling.
    """
    elem = ds.get_item(tag)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement) and isinstance(elem.value, bytes | bytearray):
        raw = bytes(elem.value)
        if raw.isascii() and b"\x1b" not in raw:
            text = raw.decode("ascii").rstrip(" \x00")
            return [part.strip(" ") for part in text.split("\\")] if text else []
    return [str(v) for v in _as_list(ds[tag].value)]


def element_floats(ds: Dataset, tag: int) -> list[float] | None:
    """Return the values of a DS element as floats, or None when absent.

    Raises
    ------
    ValueError
        When a value is not a finite decimal number; the message names the attribute.
    """
    strings = element_strings(ds, tag)
    if strings is None:
        return None
    out = []
    for s in strings:
        try:
            value = float(s)
        except ValueError:
            raise ValueError(f"invalid {tag_name(tag)}: {s[:32]!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"invalid {tag_name(tag)}: {s[:32]!r}")
        out.append(value)
    return out


def _parse_ints(strings: Iterable[str], tag: int) -> list[int]:
    out = []
    for s in strings:
        try:
            out.append(int(s))
            continue
        except ValueError:
            pass
        try:  # "12.0" is sloppy but unambiguous; pydicom accepts it too
            number = float(s)
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise ValueError(f"invalid {tag_name(tag)}: {s[:32]!r}")
        out.append(int(number))
    return out


def element_ints(ds: Dataset, tag: int, vr: str) -> list[int] | None:
    """Return the values of an integer element (``vr`` "US", "SS" or "IS"), or None when absent.

    Raises
    ------
    ValueError
        When the value cannot be read as integers; the message names the attribute.
    """
    elem = ds.get_item(tag)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement) and isinstance(elem.value, bytes | bytearray):
        raw = bytes(elem.value)
        if vr == "IS" and elem.VR in (None, "IS"):
            text = raw.decode("latin-1").strip(" \x00")
            return _parse_ints(text.split("\\"), tag) if text else []
        if vr in ("US", "SS") and elem.VR in (None, vr) and len(raw) % 2 == 0:
            order = "<" if elem.is_little_endian else ">"
            code = "H" if vr == "US" else "h"
            return list(struct.unpack(f"{order}{len(raw) // 2}{code}", raw))
    try:
        values = _as_list(ds[tag].value)
        return [int(v) for v in values]  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"invalid {tag_name(tag)}: {str(ds[tag].value)[:32]!r}") from None
