"""The DICOM display pipeline as small verbs: modality LUT -> VOI (window or LUT) -> 8-bit.

Modelled on pydicom's ``pixels/processing.py``: each verb does one step, returns its input
unchanged when the attribute it needs is absent, and quotes the DICOM attribute (name and tag)
in its errors. Colour sources (RGB, YBR, PALETTE COLOR) become 8-bit RGB plus a luminance image.

Outputs of `render` are read-only arrays: a frame may be shared through the frame cache, and a
consumer that wants to draw on it copies it first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar, cast

import cv2
import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, convert_color_space

from mediastream.dicom.values import element_floats, element_strings, element_text

__all__ = [
    "DisplayFrame",
    "PreparedFrame",
    "VoiLut",
    "VoiSettings",
    "Window",
    "apply_lut",
    "apply_modality_lut",
    "apply_voi",
    "apply_window",
    "display_frame",
    "invert",
    "luminance",
    "prepare_frame",
    "render",
    "robust_window",
    "to_rgb8",
    "to_uint8",
    "voi_lut",
    "window_presets",
]

_A = TypeVar("_A", bound=np.ndarray)

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
COLOUR_PHOTOMETRICS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")
ROBUST_PERCENTILES = (0.5, 99.5)
_ROBUST_SAMPLES = 16384  # percentiles of a strided subsample: ~0.3 ms whatever the frame size


@dataclass(frozen=True)
class Window:
    """A VOI window, DICOM's Window Center (0028,1050) and Window Width (0028,1051)."""

    center: float
    width: float
    name: str = ""

    def __post_init__(self) -> None:
        center, width = float(self.center), float(self.width)
        if not math.isfinite(center):
            raise ValueError(f"Window Center (0028,1050) must be a finite number, got {center}")
        if not (math.isfinite(width) and width >= 1):
            raise ValueError(f"Window Width (0028,1051) must be >= 1, got {width:g}")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "width", width)

    def to_json(self) -> dict[str, object]:
        return {"center": self.center, "width": self.width, "name": self.name}


@dataclass(frozen=True)
class DisplayFrame:
    """One frame ready to show: 8-bit grayscale, plus RGB for colour sources."""

    gray: NDArray[np.uint8]  # (rows, cols), C-contiguous; luminance for colour sources
    rgb: NDArray[np.uint8] | None  # (rows, cols, 3) for colour sources, None for grayscale
    window: Window | None  # the window applied; None for colour or a VOI LUT


@dataclass(frozen=True, eq=False)
class VoiLut:
    """The first item of a VOI LUT Sequence (0028,3010), rescaled to 8-bit output."""

    first_mapped: int
    table: NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class VoiSettings:
    """A frame's VOI attributes, extracted once so cached frames need no Dataset."""

    presets: tuple[Window, ...] = ()
    function: str = "LINEAR"
    lut: VoiLut | None = None
    invert: bool = False  # MONOCHROME1: minimum value is white

    @classmethod
    def from_dataset(cls, ds: Dataset, *, frame: int = 0) -> VoiSettings:
        photometric = (element_strings(ds, 0x00280004) or [""])[0]
        source = _frame_item(ds, "FrameVOILUTSequence", frame) if 0x00281050 not in ds else None
        function = (element_strings(source if source is not None else ds, 0x00281056) or [""])[0]
        function = function.upper() or "LINEAR"
        return cls(
            presets=window_presets(ds, frame=frame),
            function=function if function in VOI_FUNCTIONS else "LINEAR",
            lut=voi_lut(ds),
            invert=photometric == "MONOCHROME1",
        )


@dataclass(frozen=True, eq=False)
class PreparedFrame:
    """A decoded frame after the modality LUT: what the frame cache holds.

    Grayscale: ``pixels`` are modality values (e.g. HU), ``voi`` says how to window them and
    ``auto_window`` is the robust window when the file has neither presets nor a VOI LUT.
    Colour: ``pixels`` is the final 8-bit RGB image and ``voi`` is None.
    """

    pixels: NDArray[np.generic]
    voi: VoiSettings | None
    auto_window: Window | None = None

    @property
    def nbytes(self) -> int:
        lut = self.voi.lut.table.nbytes if self.voi is not None and self.voi.lut else 0
        return int(self.pixels.nbytes) + lut + 512  # + a rough allowance for the objects


def _frame_item(ds: Dataset, sequence: str, frame: int) -> Dataset | None:
    """The item of a functional group macro for `frame` (per-frame first, then shared)."""
    for groups, index in ((0x52009230, frame), (0x52009229, 0)):  # Per-Frame, Shared
        items = ds[groups].value if groups in ds else None
        if items is not None and 0 <= index < len(items):
            macro = items[index].get(sequence)
            if macro:
                return macro[0]
    return None


def apply_modality_lut(
    arr: NDArray[np.generic], ds: Dataset, *, frame: int = 0
) -> NDArray[np.generic]:
    """Apply the Modality LUT Sequence (0028,3000) or Rescale Slope/Intercept (0028,1053/1052).

    Rescaled output is float32; a LUT gives its table's integer type; without either attribute
    `arr` is returned unchanged. Enhanced multi-frame files take the rescale from the Pixel Value
    Transformation functional group of `frame`.
    """
    if ds.get("ModalityLUTSequence"):
        table, first = _lut_table(
            ds.ModalityLUTSequence[0], ds, "Modality LUT Sequence (0028,3000)"
        )
        return table[_lut_index(arr, first, len(table))]
    source = (
        ds
        if 0x00281053 in ds or 0x00281052 in ds
        else _frame_item(ds, "PixelValueTransformationSequence", frame)
    )
    if source is None:
        return arr
    slope = (element_floats(source, 0x00281053) or [1.0])[0]
    intercept = (element_floats(source, 0x00281052) or [0.0])[0]
    if slope == 1.0 and intercept == 0.0:
        return arr
    out = np.multiply(arr, np.float32(slope), dtype=np.float32)
    out += np.float32(intercept)
    return out


def window_presets(ds: Dataset, *, frame: int = 0) -> tuple[Window, ...]:
    """Window Center/Width (0028,1050/1051) pairs with their explanations, invalid ones skipped.

    Enhanced multi-frame files take them from the Frame VOI LUT functional group of `frame`.
    """
    source = ds if 0x00281050 in ds else _frame_item(ds, "FrameVOILUTSequence", frame)
    if source is None:
        return ()
    try:
        centers = element_floats(source, 0x00281050) or []
        widths = element_floats(source, 0x00281051) or []
    except ValueError:
        return ()
    names = element_text(source, 0x00281055) or []
    out = []
    for i, (center, width) in enumerate(zip(centers, widths, strict=False)):
        if width >= 1:
            out.append(Window(center, width, names[i].strip() if i < len(names) else ""))
    return tuple(out)


def voi_lut(ds: Dataset) -> VoiLut | None:
    """The first VOI LUT Sequence (0028,3010) item as an 8-bit table, or None when absent."""
    items = ds.get("VOILUTSequence")
    if not items or "LUTDescriptor" not in items[0] or "LUTData" not in items[0]:
        return None
    table, first = _lut_table(items[0], ds, "VOI LUT Sequence (0028,3010)")
    bits = int(items[0].LUTDescriptor[2])
    top = float(max(2**bits - 1, int(table.max()), 1))
    scaled = np.rint(table.astype(np.float32) * (255.0 / top)).astype(np.uint8)
    return VoiLut(first, scaled)


def _lut_table(item: Dataset, ds: Dataset, where: str) -> tuple[NDArray[np.generic], int]:
    descriptor = list(item.LUTDescriptor)
    if len(descriptor) != 3:
        raise ValueError(
            f"LUT Descriptor (0028,3002) in {where} must have 3 values, got {len(descriptor)}"
        )
    entries, first, bits = (int(v) for v in descriptor)
    entries = entries or 65536
    if first >= 32768 and ds.get("PixelRepresentation") == 1:
        first -= 65536  # the descriptor's US/SS ambiguity: a signed first mapped value
    data = item.LUTData
    dtype = np.uint8 if bits <= 8 else np.uint16
    if isinstance(data, bytes | bytearray):
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        table = np.frombuffer(data, dtype=np.dtype("<u2" if little else ">u2"))
    else:
        table = np.asarray(list(data) if not isinstance(data, int) else [data])
    if len(table) < entries:
        raise ValueError(
            f"LUT Data (0028,3006) in {where} has {len(table)} entries, descriptor says {entries}"
        )
    return table[:entries].astype(dtype), first


def _lut_index(arr: NDArray[np.generic], first: int, entries: int) -> NDArray[np.intp]:
    index = np.rint(arr) if arr.dtype.kind == "f" else arr.astype(np.int64)
    return np.clip(index - first, 0, entries - 1).astype(np.intp)


def robust_window(
    arr: NDArray[np.generic],
    *,
    low: float = ROBUST_PERCENTILES[0],
    high: float = ROBUST_PERCENTILES[1],
) -> Window:
    """A window over the `low`..`high` percentiles of `arr`: robust to outliers, unlike min-max.

    The window maps the low percentile to 0 and the high one to 255 under DICOM's linear formula.
    """
    if not 0 <= low < high <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    flat = arr.reshape(-1)
    step = max(1, flat.size // _ROBUST_SAMPLES) | 1  # odd: no aliasing with even row lengths
    flat = flat[::step]
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return Window(0.5, 1.0, "auto")
    lo, hi = (float(v) for v in np.percentile(flat, [low, high]))
    return Window((lo + hi + 1) / 2, hi - lo + 1, "auto")


def apply_window(
    arr: NDArray[np.generic], window: Window, *, function: str = "LINEAR"
) -> NDArray[np.uint8]:
    """Map `arr` through `window` to 0..255 with DICOM's VOI LUT Function (0028,1056) formulas.

    LINEAR is PS3.3 C.11.2.1.2.1; LINEAR_EXACT and SIGMOID are C.11.2.1.3. `arr` is not modified.
    """
    if function not in VOI_FUNCTIONS:
        allowed = ", ".join(VOI_FUNCTIONS)
        raise ValueError(f"VOI LUT Function (0028,1056) must be one of {allowed}, got {function!r}")
    c, w = window.center, window.width
    if function == "SIGMOID":
        y = np.subtract(arr, np.float32(c), dtype=np.float32)
        y *= np.float32(-4.0 / w)
        np.exp(y, out=y)
        y += 1.0
        np.divide(255.0, y, out=y)
    else:
        if function == "LINEAR_EXACT":
            scale, offset = 255.0 / w, (0.5 - c / w) * 255.0
        elif w > 1:
            scale, offset = 255.0 / (w - 1), (0.5 - (c - 0.5) / (w - 1)) * 255.0
        else:  # width 1: a threshold at c - 0.5
            return np.where(np.greater(arr, c - 0.5), np.uint8(255), np.uint8(0))
        y = np.multiply(arr, np.float32(scale), dtype=np.float32)
        y += np.float32(offset)
    y += 0.5  # round half up when truncating below
    np.clip(y, 0.0, 255.0, out=y)
    return y.astype(np.uint8)


def apply_lut(arr: NDArray[np.generic], lut: VoiLut) -> NDArray[np.uint8]:
    """Map `arr` through a VOI LUT; values outside the table take its first/last entry."""
    return lut.table[_lut_index(arr, lut.first_mapped, len(lut.table))]


def apply_voi(
    arr: NDArray[np.generic], ds: Dataset, window: Window | None = None, *, frame: int = 0
) -> tuple[NDArray[np.uint8], Window | None]:
    """Apply the VOI step to modality values and return 8-bit values and the window used.

    An explicit `window` wins (linear, DICOM's formula); else the file's first Window
    Center/Width preset (with its VOI LUT Function); else its VOI LUT Sequence (window None);
    else a robust percentile window. MONOCHROME1 is not inverted here (see `invert`).
    """
    return _apply_voi_settings(arr, VoiSettings.from_dataset(ds, frame=frame), window, None)


def _apply_voi_settings(
    arr: NDArray[np.generic], voi: VoiSettings, window: Window | None, auto: Window | None
) -> tuple[NDArray[np.uint8], Window | None]:
    if window is not None:
        return apply_window(arr, window), window
    if voi.presets:
        return apply_window(arr, voi.presets[0], function=voi.function), voi.presets[0]
    if voi.lut is not None:
        return apply_lut(arr, voi.lut), None
    auto = auto or robust_window(arr)
    return apply_window(arr, auto), auto


def invert(arr: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Invert 8-bit values (MONOCHROME1 displays its minimum as white)."""
    return np.subtract(np.uint8(255), arr)


def to_uint8(arr: NDArray[np.generic], bits_stored: int) -> NDArray[np.uint8]:
    """Scale unsigned colour samples of `bits_stored` bits to 0..255."""
    if arr.dtype == np.uint8 and bits_stored >= 8:
        return arr  # type: ignore[return-value]
    top = float(2**bits_stored - 1)
    scaled = np.multiply(arr, 255.0 / top, dtype=np.float64 if bits_stored > 16 else np.float32)
    scaled += 0.5
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def to_rgb8(arr: NDArray[np.generic], ds: Dataset, photometric: str) -> NDArray[np.uint8]:
    """Turn a decoded colour frame (RGB, YBR or palette indices) into 8-bit RGB.

    `photometric` is the interpretation of `arr` as decoded (pydicom already turns most YBR
    data into RGB).
    """
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)[..., :3]
        return to_uint8(rgb, 8 if rgb.dtype == np.uint8 else 16)
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        arr = convert_color_space(arr, photometric, "RGB")
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
    return to_uint8(arr, bits)


def luminance(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """ITU-R BT.601 luma of an 8-bit RGB image (what grayscale consumers get for colour)."""
    return cast(NDArray[np.uint8], cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))


def prepare_frame(
    arr: NDArray[np.generic], ds: Dataset, *, photometric: str, frame: int = 0
) -> PreparedFrame:
    """Everything window-independent about a decoded frame: modality LUT, or colour -> RGB.

    `photometric` is the interpretation of `arr` as decoded; `frame` the index within `ds`.
    """
    if photometric in COLOUR_PHOTOMETRICS or arr.ndim == 3:
        rgb = _readonly(np.ascontiguousarray(to_rgb8(arr, ds, photometric)))
        return PreparedFrame(rgb, None)
    values = _readonly(apply_modality_lut(arr, ds, frame=frame))
    voi = VoiSettings.from_dataset(ds, frame=frame)
    auto = robust_window(values) if not voi.presets and voi.lut is None else None
    return PreparedFrame(values, voi, auto)


def render(prepared: PreparedFrame, window: Window | None = None) -> DisplayFrame:
    """Finish a prepared frame: VOI and MONOCHROME1 inversion, or the luminance of colour."""
    if prepared.voi is None:
        rgb = cast(NDArray[np.uint8], prepared.pixels)
        return DisplayFrame(_readonly(luminance(rgb)), rgb, None)
    gray, used = _apply_voi_settings(prepared.pixels, prepared.voi, window, prepared.auto_window)
    if prepared.voi.invert:
        gray = invert(gray)
    return DisplayFrame(_readonly(np.ascontiguousarray(gray)), None, used)


def display_frame(
    arr: NDArray[np.generic],
    ds: Dataset,
    window: Window | None = None,
    *,
    photometric: str | None = None,
    frame: int = 0,
) -> DisplayFrame:
    """The whole pipeline for one decoded frame of `ds`: `prepare_frame` then `render`."""
    pi = photometric or (element_strings(ds, 0x00280004) or ["MONOCHROME2"])[0]
    return render(prepare_frame(arr, ds, photometric=pi, frame=frame), window)


def _readonly(arr: _A) -> _A:
    """A read-only view (the caller's own array keeps its flags)."""
    view = arr.view()
    view.flags.writeable = False
    return view
