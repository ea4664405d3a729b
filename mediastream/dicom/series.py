"""Stored instances, how a series orders them, and the series summary the web layer lists."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mediastream.dicom.display import Window
from mediastream.dicom.errors import FrameNotFound
from mediastream.dicom.ingest import InstanceHeader

__all__ = [
    "MAX_SERIES_WINDOWS",
    "InstanceRecord",
    "SeriesInfo",
    "SeriesView",
    "order_instances",
]

MAX_SERIES_WINDOWS = (
    16  # MR scanners write a different "auto" window per slice; keep the list short
)
_ORIENTATION_TOLERANCE = 1e-4


@dataclass(frozen=True)
class InstanceRecord:
    """A stored file: its header, where it lives (relative to the library root) and when."""

    header: InstanceHeader
    path: str  # POSIX path relative to the library root: "<series uid>/<sop uid>.dcm"
    size: int
    mtime_ns: int
    stored_ns: int  # when it was stored; orders the series list

    def to_json(self) -> dict[str, object]:
        h = self.header
        return {
            "path": self.path,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "stored_ns": self.stored_ns,
            "sop": h.sop_instance_uid,
            "series": h.series_instance_uid,
            "syntax": h.transfer_syntax,
            "modality": h.modality,
            "description": h.description,
            "rows": h.rows,
            "columns": h.columns,
            "frames": h.frames,
            "samples": h.samples_per_pixel,
            "photometric": h.photometric,
            "spacing": h.pixel_spacing,
            "position": h.position,
            "orientation": h.orientation,
            "number": h.instance_number,
            "windows": [[w.center, w.width, w.name] for w in h.windows],
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> InstanceRecord:
        """Rebuild a record; raises (KeyError, TypeError, ValueError) on anything malformed."""

        def floats(key: str, n: int) -> tuple[float, ...] | None:
            value = d[key]
            if value is None:
                return None
            out = tuple(float(v) for v in value)  # type: ignore[attr-defined]
            if len(out) != n:
                raise ValueError(f"{key} needs {n} values")
            return out

        def integer(key: str) -> int:
            value = d[key]
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{key} must be an integer")
            return value

        def text(key: str) -> str:
            value = d[key]
            if not isinstance(value, str):
                raise TypeError(f"{key} must be a string")
            return value

        number = d["number"]
        header = InstanceHeader(
            sop_instance_uid=text("sop"),
            series_instance_uid=text("series"),
            transfer_syntax=text("syntax"),
            modality=text("modality"),
            description=text("description"),
            rows=integer("rows"),
            columns=integer("columns"),
            frames=integer("frames"),
            samples_per_pixel=integer("samples"),
            photometric=text("photometric"),
            pixel_spacing=floats("spacing", 2),  # type: ignore[arg-type]
            position=floats("position", 3),  # type: ignore[arg-type]
            orientation=floats("orientation", 6),  # type: ignore[arg-type]
            instance_number=None if number is None else integer("number"),
            windows=tuple(Window(float(c), float(w), str(n)) for c, w, n in d["windows"]),  # type: ignore[attr-defined]
        )
        return cls(header, text("path"), integer("size"), integer("mtime_ns"), integer("stored_ns"))


@dataclass(frozen=True)
class SeriesInfo:
    """What the web layer lists for a series (it adds the thumbnail URL)."""

    series_uid: str
    modality: str
    description: str
    frame_count: int
    rows: int
    columns: int
    pixel_spacing: tuple[float, float] | None  # (row, column) spacing in mm
    windows: tuple[Window, ...]  # presets from the files, deduplicated; may be empty

    def to_json(self) -> dict[str, object]:
        return {
            "series_uid": self.series_uid,
            "modality": self.modality,
            "description": self.description,
            "frame_count": self.frame_count,
            "rows": self.rows,
            "columns": self.columns,
            "pixel_spacing": list(self.pixel_spacing) if self.pixel_spacing else None,
            "windows": [w.to_json() for w in self.windows],
        }


def _uid_key(uid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in uid.split("."))  # UIDs are validated at ingest


def _normal(orientation: Sequence[float]) -> tuple[float, float, float]:
    r, c = orientation[:3], orientation[3:]
    return (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])


def order_instances(records: Iterable[InstanceRecord]) -> list[InstanceRecord]:
    """Sort a series' instances for display.

    By Image Position (Patient) projected on the slice normal of Image Orientation (Patient),
    ascending, when every instance has both and all share one orientation; else by Instance
    Number when every instance has one; else by SOP Instance UID (numerically, component by
    component). Ties fall through to Instance Number, then to the UID.
    """
    items = list(records)
    headers = [r.header for r in items]
    first = headers[0].orientation if headers else None
    if first is not None and all(
        h.position is not None
        and h.orientation is not None
        and max(abs(a - b) for a, b in zip(h.orientation, first, strict=True))
        < _ORIENTATION_TOLERANCE
        for h in headers
    ):
        n = _normal(first)

        def by_position(r: InstanceRecord) -> tuple[float, int, tuple[int, ...]]:
            p = r.header.position
            assert p is not None
            number = r.header.instance_number
            return (
                p[0] * n[0] + p[1] * n[1] + p[2] * n[2],
                number if number is not None else 0,
                _uid_key(r.header.sop_instance_uid),
            )

        return sorted(items, key=by_position)
    if all(h.instance_number is not None for h in headers):
        return sorted(
            items,
            key=lambda r: (r.header.instance_number, _uid_key(r.header.sop_instance_uid)),
        )
    return sorted(items, key=lambda r: _uid_key(r.header.sop_instance_uid))


class SeriesView:
    """An ordered, immutable snapshot of one series: frame index -> (instance, frame).

    Built and summarised under the library's lock; replaced whole when the series changes.
    """

    def __init__(self, series_uid: str, records: Iterable[InstanceRecord]) -> None:
        self.series_uid = series_uid
        self.instances = tuple(order_instances(records))
        starts, total = [], 0
        for r in self.instances:
            starts.append(total)
            total += r.header.frames
        self._starts = starts
        self.frame_count = total
        self.last_stored_ns = max((r.stored_ns for r in self.instances), default=0)
        self._info: SeriesInfo | None = None

    def locate(self, index: int) -> tuple[InstanceRecord, int] | None:
        """The instance holding frame `index` and the frame's index in it; None if out of range."""
        if not 0 <= index < self.frame_count:
            return None
        i = bisect.bisect_right(self._starts, index) - 1
        return self.instances[i], index - self._starts[i]

    def require(self, index: int) -> tuple[InstanceRecord, int]:
        """`locate`, or FrameNotFound stating the valid range."""
        located = self.locate(index)
        if located is None:
            raise FrameNotFound(
                f"frame {index} does not exist: series {self.series_uid} has "
                f"{self.frame_count} frames, valid indices are 0 to {self.frame_count - 1}"
            )
        return located

    def info(self) -> SeriesInfo:
        if self._info is None:
            self._info = self._summarise()
        return self._info

    def _summarise(self) -> SeriesInfo:
        first = self.instances[0].header
        windows: list[Window] = []
        seen: set[tuple[float, float]] = set()
        for r in self.instances:
            for w in r.header.windows:
                if (w.center, w.width) not in seen and len(windows) < MAX_SERIES_WINDOWS:
                    seen.add((w.center, w.width))
                    windows.append(w)
        return SeriesInfo(
            series_uid=self.series_uid,
            modality=first.modality,
            description=first.description,
            frame_count=self.frame_count,
            rows=first.rows,
            columns=first.columns,
            pixel_spacing=first.pixel_spacing,
            windows=tuple(windows),
        )
