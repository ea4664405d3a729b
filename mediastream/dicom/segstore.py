"""Stored DICOM Segmentation objects: the ones the server made, and uploaded ones.

Layout under the library root (a dot folder, which the image library does not scan)::

    .segmentations/<source series UID>/<SEG SOP Instance UID>.dcm   the files, as written/sent
    .segmentations/.index.json                                      what each one is

Every file and every index version is written to a temporary file and renamed into place
(``os.replace``), so a crash leaves either the old or the new state, never half a file. An
uploaded SEG is renamed into place as it was sent, byte for byte. At start-up the index is
read and checked against the files: a listed file that is gone is dropped, a file the index
does not know (a crash between the two renames) is described again from its header.

Thread-safe: one lock guards the in-memory index and the renames.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import SegmentationStorage

from mediastream.dicom.errors import LibraryError
from mediastream.dicom.ingest import is_safe_uid

__all__ = [
    "SEG_FOLDER",
    "SegmentationNotFound",
    "SegStore",
    "StoredSegmentation",
    "is_segmentation_file",
    "looks_like_segmentation",
]

log = logging.getLogger(__name__)

SEG_FOLDER = ".segmentations"
INDEX_FILE = ".index.json"


class SegmentationNotFound(LibraryError):
    code = "segmentation_not_found"


@dataclass(frozen=True)
class SliceArea:
    index: int
    area_mm2: float | None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "area_mm2": self.area_mm2}


@dataclass(frozen=True)
class StoredSegmentation:
    """One stored SEG: what the API lists.

    ``origin`` is ``"computed"`` (made here) or ``"uploaded"`` (label from the file; measured
    after it is stored, see `mediastream.volumes.measure_uploaded`; ``volume_ml`` None and
    ``slices`` empty until then, or when it cannot be).
    """

    seg_uid: str
    series_uid: str
    label: str
    origin: Literal["computed", "uploaded"]
    path: str  # relative to the store's folder
    size: int
    stored_ns: int
    volume_ml: float | None = None
    slices: tuple[SliceArea, ...] = ()
    algorithm: str | None = None
    params: dict[str, int | float] = field(default_factory=dict)
    measurements: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"images/{self.series_uid}/segmentations/{self.seg_uid}.dcm"

    def to_json(self) -> dict[str, Any]:
        return {
            "seg_uid": self.seg_uid,
            "series_uid": self.series_uid,
            "label": self.label,
            "volume_ml": self.volume_ml,
            "slices": [s.to_json() for s in self.slices],
            "url": self.url,
            "origin": self.origin,
            "algorithm": self.algorithm,
            "params": self.params,
            "stored_ns": self.stored_ns,
            **self.measurements,
        }

    def to_index(self) -> dict[str, Any]:
        return {
            **self.to_json(),
            "path": self.path,
            "size": self.size,
            "measurements": self.measurements,
        }

    @classmethod
    def from_index(cls, d: dict[str, Any]) -> StoredSegmentation:
        """Rebuild an index entry; raises (KeyError, TypeError, ValueError) if malformed."""
        origin = d["origin"]
        if origin not in ("computed", "uploaded"):
            raise ValueError(f"unknown origin {origin!r}")
        volume = d["volume_ml"]
        return cls(
            seg_uid=str(d["seg_uid"]),
            series_uid=str(d["series_uid"]),
            label=str(d["label"]),
            origin=origin,
            path=str(d["path"]),
            size=int(d["size"]),
            stored_ns=int(d["stored_ns"]),
            volume_ml=None if volume is None else float(volume),
            slices=tuple(
                SliceArea(int(s["index"]), None if s["area_mm2"] is None else float(s["area_mm2"]))
                for s in d["slices"]
            ),
            algorithm=None if d["algorithm"] is None else str(d["algorithm"]),
            params=dict(d["params"]),
            measurements=dict(d.get("measurements", {})),
        )


_SEG_CLASS = SegmentationStorage.encode("ascii")
_SNIFF_BYTES = 4096


def looks_like_segmentation(path: Path) -> bool:
    """A cheap first test for every upload: the SEG SOP Class UID near the file's start.

    The File Meta's Media Storage SOP Class UID (or, without meta, the SOP Class UID) lies in
    the first few hundred bytes. A match is confirmed by :func:`is_segmentation_file`.
    """
    with path.open("rb") as f:
        head = f.read(_SNIFF_BYTES)
    at = head.find(_SEG_CLASS)
    while at >= 0:
        after = head[at + len(_SEG_CLASS) : at + len(_SEG_CLASS) + 1]
        if not (after.isdigit() or after == b"."):
            return True
        at = head.find(_SEG_CLASS, at + 1)
    return False


def is_segmentation_file(path: Path) -> bool:
    """Whether ``path`` is a DICOM file of SOP Class Segmentation Storage (header only)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except (InvalidDicomError, OSError, ValueError, TypeError, KeyError, EOFError):
        return False
    except Exception:  # a reader bug on a hostile file: not a SEG we can take
        return False
    meta = getattr(ds, "file_meta", None)
    sop_class = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    return str(sop_class) == SegmentationStorage


class SegStore:
    """The SEG files of a library, indexed by source series."""

    def __init__(self, library_root: Path, *, fsync: bool = False) -> None:
        self.folder = Path(library_root) / SEG_FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._lock = threading.Lock()
        self._records: dict[str, StoredSegmentation] = {}  # by SEG SOP Instance UID
        self._last_stamp = 0

    # -- start-up ---------------------------------------------------------------------------

    def load(self) -> None:
        """Read the index, drop entries whose file is gone, describe files it does not know."""
        with self._lock:
            known: dict[str, StoredSegmentation] = {}
            try:
                entries = json.loads((self.folder / INDEX_FILE).read_text(encoding="utf-8"))
                for item in entries:
                    try:
                        indexed = StoredSegmentation.from_index(item)
                    except (KeyError, TypeError, ValueError) as exc:
                        log.warning("skipping a malformed segmentation index entry: %s", exc)
                        continue
                    known[indexed.path] = indexed
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as exc:
                log.warning("segmentation index unreadable (%s); rebuilding it", exc)
            records: dict[str, StoredSegmentation] = {}
            for series_dir in os.scandir(self.folder):
                if not (is_safe_uid(series_dir.name) and series_dir.is_dir()):
                    continue
                for entry in os.scandir(series_dir.path):
                    name = entry.name
                    if not (name.endswith(".dcm") and is_safe_uid(name[:-4])):
                        continue
                    rel = f"{series_dir.name}/{name}"
                    record = known.get(rel)
                    if record is None or record.size != entry.stat().st_size:
                        record = self._describe_file(Path(entry.path), rel, series_dir.name)
                    if record is not None:
                        records[record.seg_uid] = record
            for tmp in self.folder.glob(".*.part"):
                tmp.unlink(missing_ok=True)
            self._records = records
            self._last_stamp = max((r.stored_ns for r in records.values()), default=0)
            if len(known) != len(records) or any(known.get(r.path) != r for r in records.values()):
                self._write_index()  # drop what is gone, add what was described again

    def _describe_file(self, path: Path, rel: str, series_uid: str) -> StoredSegmentation | None:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            seg_uid, referenced, label = describe_segmentation(ds)
        except Exception as exc:
            log.warning("skipping stored segmentation %s: %s", path, exc)
            return None
        if referenced != series_uid or f"{seg_uid}.dcm" != path.name:
            log.warning("skipping %s: its UIDs do not match its path", path)
            return None
        st = path.stat()
        return StoredSegmentation(
            seg_uid, series_uid, label, "uploaded", rel, st.st_size, st.st_mtime_ns
        )

    # -- storing ----------------------------------------------------------------------------

    def _stamp(self) -> int:
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        return self._last_stamp

    def _temp(self) -> Path:
        return self.folder / f".{uuid.uuid4().hex}.part"

    def _place(self, temp: Path, series_uid: str, seg_uid: str) -> tuple[str, int]:
        """Rename ``temp`` into place (lock held); return its relative path and size."""
        if self._fsync:
            _fsync_path(temp)
        rel = f"{series_uid}/{seg_uid}.dcm"
        final = self.folder / rel
        final.parent.mkdir(exist_ok=True)
        os.replace(temp, final)
        if self._fsync:
            _fsync_path(final.parent)
        return rel, final.stat().st_size

    def add_dataset(
        self,
        ds: Dataset,
        *,
        series_uid: str,
        label: str,
        volume_ml: float | None,
        slices: Sequence[SliceArea],
        algorithm: str,
        params: dict[str, int | float],
        measurements: dict[str, Any],
    ) -> StoredSegmentation:
        """Write a SEG the server made, atomically, and index it."""
        seg_uid = str(ds.SOPInstanceUID)
        if not (is_safe_uid(seg_uid) and is_safe_uid(series_uid)):
            raise ValueError("unsafe UID")
        temp = self._temp()
        try:
            ds.save_as(temp, enforce_file_format=True)
            with self._lock:
                rel, size = self._place(temp, series_uid, seg_uid)
                record = StoredSegmentation(
                    seg_uid,
                    series_uid,
                    label,
                    "computed",
                    rel,
                    size,
                    self._stamp(),
                    volume_ml,
                    tuple(slices),
                    algorithm,
                    dict(params),
                    dict(measurements),
                )
                self._records[seg_uid] = record
                self._write_index()
            return record
        finally:
            temp.unlink(missing_ok=True)

    def add_upload(
        self, temp: Path, *, series_known: Callable[[str], bool]
    ) -> tuple[Literal["stored", "already_stored", "rejected"], str, str | None, str | None]:
        """Store an uploaded SEG file as sent; ``temp`` never remains afterwards.

        Returns (outcome, reason or "", source series UID, SEG SOP Instance UID). A SEG is
        stored only when the series it segments is stored (``series_known``).
        """
        try:
            try:
                ds = pydicom.dcmread(temp, stop_before_pixels=True)
                seg_uid, series_uid, label = describe_segmentation(ds)
            except Exception as exc:  # any unreadable SEG is refused with the reason
                return "rejected", f"unreadable segmentation: {exc}", None, None
            if not series_known(series_uid):
                return (
                    "rejected",
                    f"the segmentation references series {series_uid}, which is not stored",
                    series_uid,
                    seg_uid,
                )
            with self._lock:
                if seg_uid in self._records:
                    return "already_stored", "", self._records[seg_uid].series_uid, seg_uid
                try:
                    rel, size = self._place(temp, series_uid, seg_uid)
                except OSError as exc:
                    return "rejected", f"cannot store: {exc}", series_uid, seg_uid
                record = StoredSegmentation(
                    seg_uid, series_uid, label, "uploaded", rel, size, self._stamp()
                )
                self._records[seg_uid] = record
                self._write_index()
            return "stored", "", series_uid, seg_uid
        finally:
            temp.unlink(missing_ok=True)

    def set_measurements(
        self,
        seg_uid: str,
        *,
        volume_ml: float | None,
        slices: Sequence[SliceArea],
        measurements: dict[str, Any],
    ) -> None:
        """Record what was measured of a stored SEG (an uploaded one, measured after)."""
        with self._lock:
            record = self._records.get(seg_uid)
            if record is None:
                return  # deleted meanwhile
            self._records[seg_uid] = dataclasses.replace(
                record, volume_ml=volume_ml, slices=tuple(slices), measurements=dict(measurements)
            )
            self._write_index()

    def _write_index(self) -> None:
        """The whole index, atomically (lock held); a few hundred bytes per segmentation."""
        records = sorted(self._records.values(), key=lambda r: r.stored_ns)
        temp = self._temp()
        try:
            temp.write_text(json.dumps([r.to_index() for r in records]), encoding="utf-8")
            if self._fsync:
                _fsync_path(temp)
            os.replace(temp, self.folder / INDEX_FILE)
        finally:
            temp.unlink(missing_ok=True)

    # -- queries and deletion ---------------------------------------------------------------

    def list(self, series_uid: str) -> list[StoredSegmentation]:
        """The series' segmentations, oldest first."""
        with self._lock:
            found = [r for r in self._records.values() if r.series_uid == series_uid]
        return sorted(found, key=lambda r: r.stored_ns)

    def get(self, series_uid: str, seg_uid: str) -> StoredSegmentation:
        with self._lock:
            record = self._records.get(seg_uid)
        if record is None or record.series_uid != series_uid:
            raise SegmentationNotFound(
                f"series {series_uid} has no segmentation with SOP Instance UID {seg_uid!r}"
            )
        return record

    def file(self, record: StoredSegmentation) -> Path:
        return self.folder / record.path

    def delete(self, series_uid: str, seg_uid: str) -> None:
        """Remove one segmentation. Raises SegmentationNotFound."""
        with self._lock:
            record = self._records.get(seg_uid)
            if record is None or record.series_uid != series_uid:
                raise SegmentationNotFound(
                    f"series {series_uid} has no segmentation with SOP Instance UID {seg_uid!r}"
                )
            del self._records[seg_uid]
            self._write_index()
            (self.folder / record.path).unlink(missing_ok=True)

    def delete_series(self, series_uid: str | None) -> int:
        """Remove every segmentation of a series (None: of all series); how many went."""
        with self._lock:
            gone = [
                r
                for r in self._records.values()
                if series_uid is None or r.series_uid == series_uid
            ]
            for record in gone:
                del self._records[record.seg_uid]
            if gone:
                self._write_index()
            for record in gone:
                (self.folder / record.path).unlink(missing_ok=True)
        return len(gone)


def describe_segmentation(ds: Dataset) -> tuple[str, str, str]:
    """(SEG SOP Instance UID, the series it segments, its label) from a SEG's header.

    Raises ``ValueError`` naming the attribute that is missing or wrong.
    """
    if str(ds.get("SOPClassUID", "")) != SegmentationStorage:
        raise ValueError("SOP Class UID (0008,0016) is not Segmentation Storage")
    seg_uid = str(ds.get("SOPInstanceUID", ""))
    if not is_safe_uid(seg_uid):
        raise ValueError("SOP Instance UID (0008,0018) is missing or not a valid UID")
    referenced = ds.get("ReferencedSeriesSequence")
    series_uid = str(referenced[0].get("SeriesInstanceUID", "")) if referenced else ""
    if not is_safe_uid(series_uid):
        raise ValueError(
            "Referenced Series Sequence (0008,1115) names no valid Series Instance UID"
        )
    segments = ds.get("SegmentSequence") or []
    labels = [str(s.get("SegmentLabel", "")) for s in segments]
    label = ", ".join(x for x in labels if x) or "segmentation"
    return seg_uid, series_uid, label


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
