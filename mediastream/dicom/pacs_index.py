"""The in-memory index of a PACS-backed library: its series, their instances in display order.

Built from what QIDO-RS and WADO-RS metadata say (`PacsLibrary` does the asking); no I/O here.
Thread-safe: lookups come from the event loop and worker threads, updates from the DICOMweb
client's loop. Each instance keeps the stamp it got when first seen, so its frame keys — and the
caches keyed by them — stay valid across refreshes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import SegmentationStorage

from mediastream.dicom.errors import IngestRejected, SeriesNotFound
from mediastream.dicom.ingest import InstanceHeader, Limits, header_from_metadata
from mediastream.dicom.series import InstanceRecord, SeriesView

__all__ = ["PacsIndex", "SeriesEntry", "Work"]

log = logging.getLogger(__name__)

# (Series Instance UID, Study Instance UID, the PACS's instance count): a series to read.
Work = tuple[str, str, int | None]


@dataclass(frozen=True)
class SeriesEntry:
    study_uid: str
    view: SeriesView
    remote_count: int | None  # the PACS's instance count when the metadata was read
    fetched_at: float  # time.monotonic() of that read


class PacsIndex:
    """Series by UID, and those the PACS holds with nothing to display (SR, …) by UID."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._series: dict[str, SeriesEntry] = {}
        self._unlisted: dict[str, int | None] = {}  # their instance count when read
        self._last_stamp = 0

    def entry(self, series_uid: str) -> SeriesEntry:
        with self._lock:
            entry = self._series.get(series_uid)
        if entry is None:
            raise SeriesNotFound(f"no series with Series Instance UID {series_uid!r}")
        return entry

    def views(self) -> list[SeriesView]:
        """Oldest first: the series that most recently gained an instance last."""
        with self._lock:
            views = [entry.view for entry in self._series.values()]
        return sorted(views, key=lambda v: (v.last_stored_ns, v.series_uid))

    def is_empty(self) -> bool:
        with self._lock:
            return not self._series

    def changed(
        self, found: dict[str, tuple[str, int | None]], now: float, max_age: float | None
    ) -> list[Work]:
        """Of the series the PACS lists, those to read: new, resized, or read too long ago."""
        with self._lock:
            current = {uid: (e.remote_count, e.fetched_at) for uid, e in self._series.items()}
            unlisted = dict(self._unlisted)
        todo = []
        for uid, (study, count) in found.items():
            if uid in current:
                known, fetched_at = current[uid]
                stale = max_age is not None and now - fetched_at > max_age
                if known != count or stale:
                    todo.append((uid, study, count))
            elif uid not in unlisted or unlisted[uid] != count:
                todo.append((uid, study, count))
        return todo

    def headers(self, series_uid: str, items: list[dict[str, Any]]) -> list[InstanceHeader]:
        """The displayable instances of a series' WADO-RS metadata (CPU work; no lock)."""
        headers: dict[str, InstanceHeader] = {}
        for item in items:
            if "7FE00010" not in item:
                continue  # no Pixel Data: a report, a structure set… nothing to display
            if SegmentationStorage in ((item.get("00080016") or {}).get("Value") or []):
                continue  # a DICOM SEG is a result about a series, not a picture to show
            # Bulk data (pixels, overlays) is only a URI in metadata; the header needs none.
            plain = {
                k: v for k, v in item.items() if "BulkDataURI" not in v and "InlineBinary" not in v
            }
            try:
                header = header_from_metadata(Dataset.from_json(plain), limits=self.limits)
            except IngestRejected as exc:
                log.info("not listing an instance of series %s: %s", series_uid, exc.reason)
                continue
            except Exception as exc:  # malformed JSON values cost that instance only
                log.info("not listing an instance of series %s: %s", series_uid, exc)
                continue
            if header.series_instance_uid == series_uid:
                headers[header.sop_instance_uid] = header
        return list(headers.values())

    def apply(
        self,
        found: dict[str, tuple[str, int | None]],
        todo: list[Work],
        results: list[list[InstanceHeader] | None],
        asked: float,
    ) -> tuple[list[str], set[str]]:
        """Install what was read (None: not read this time, keep what is known); drop the
        series the PACS no longer lists, unless added since it was `asked` (an upload).

        Returns the series gone and the SOP Instance UIDs no longer listed.
        """
        removed: set[str] = set()
        with self._lock:
            gone = [u for u, e in self._series.items() if u not in found and e.fetched_at < asked]
            for uid in gone:
                removed |= self._pop(uid)
            for uid in [u for u in self._unlisted if u not in found]:
                del self._unlisted[uid]
            for (uid, study, count), headers in zip(todo, results, strict=True):
                if headers is None:
                    continue
                old = self._series.get(uid)
                known = {r.header.sop_instance_uid: r for r in old.view.instances} if old else {}
                records = []
                for header in headers:
                    sop = header.sop_instance_uid
                    stamp = known[sop].stored_ns if sop in known else self._stamp()
                    records.append(InstanceRecord(header, f"{uid}/{sop}.dcm", 0, 0, stamp))
                removed |= set(known) - {r.header.sop_instance_uid for r in records}
                if not records:
                    self._series.pop(uid, None)
                    self._unlisted[uid] = count
                    continue
                self._unlisted.pop(uid, None)
                self._series[uid] = SeriesEntry(study, SeriesView(uid, records), count, asked)
        return gone, removed

    def add(self, study_uid: str, header: InstanceHeader) -> InstanceRecord:
        """List an instance just stored; the series is read again at the next refresh."""
        series, sop = header.series_instance_uid, header.sop_instance_uid
        with self._lock:
            entry = self._series.get(series)
            others = entry.view.instances if entry else ()
            records = [r for r in others if r.header.sop_instance_uid != sop]
            record = InstanceRecord(header, f"{series}/{sop}.dcm", 0, 0, self._stamp())
            self._unlisted.pop(series, None)
            view = SeriesView(series, [*records, record])
            self._series[series] = SeriesEntry(study_uid, view, None, time.monotonic())
        return record

    def remove(self, series_uid: str) -> set[str]:
        """Forget a series; the SOP Instance UIDs it had."""
        with self._lock:
            self._unlisted.pop(series_uid, None)
            return self._pop(series_uid)

    def _pop(self, series_uid: str) -> set[str]:
        entry = self._series.pop(series_uid, None)
        return {r.header.sop_instance_uid for r in entry.view.instances} if entry else set()

    def _stamp(self) -> int:
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        return self._last_stamp
