"""The stored DICOM library: ingest, series listing, frames for display, deletion, persistence.

Layout under `root`::

    <SeriesInstanceUID>/<SOPInstanceUID>.dcm   stored files, named from validated UIDs only
    .incoming/<uuid>.part                      uploads being written (removed at start-up)
    .index.jsonl                               the index journal (see `store`)

Every method may be called from worker threads concurrently. One lock guards the in-memory
index and the renames into place; header parsing, decoding and rendering happen outside it.
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmwrite
from pydicom.dataset import Dataset

from mediastream.dicom.cache import FailureMemo, FrameCache, FrameKey
from mediastream.dicom.decode import load_prepared_frame
from mediastream.dicom.display import DisplayFrame, PreparedFrame, Window, render
from mediastream.dicom.errors import (
    FrameDecodeError,
    IngestRejected,
    SeriesNotFound,
)
from mediastream.dicom.ingest import InstanceHeader, Limits, inspect_file, is_safe_uid
from mediastream.dicom.series import InstanceRecord, SeriesInfo, SeriesView
from mediastream.dicom.store import INDEX_NAME, IndexJournal

__all__ = ["IngestOutcome", "Library", "SeriesInfo"]

log = logging.getLogger(__name__)

INCOMING = ".incoming"


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one uploaded file; `filename` is the client's name, reported back only."""

    filename: str
    outcome: Literal["stored", "already_stored", "rejected"]
    reason: str | None = None
    series_uid: str | None = None
    sop_instance_uid: str | None = None
    # Rejected because the store could not be reached (a PACS that is down), not for the file.
    unavailable: bool = False

    def to_json(self) -> dict[str, object]:
        fields = {
            "filename": self.filename,
            "outcome": self.outcome,
            "reason": self.reason,
            "series_uid": self.series_uid,
            "sop_instance_uid": self.sop_instance_uid,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class Inspection:
    """The verdict on an upload: its header (accepted) or the reason it is rejected."""

    header: InstanceHeader | None
    prepared: PreparedFrame | None = None
    reason: str | None = None


def inspect_upload(path: Path, limits: Limits) -> Inspection:
    """Validate an uploaded file by content; never raises for a bad file.

    Pure and picklable, so it can run in a worker process (see `Library.commit`).
    """
    try:
        header, prepared = inspect_file(path, limits=limits)
    except IngestRejected as exc:
        return Inspection(None, reason=exc.reason)
    except OSError as exc:
        return Inspection(None, reason=f"cannot read upload: {exc}")
    except Exception as exc:  # a reader bug must cost one file, not the whole request
        log.exception("validating %s failed unexpectedly", path.name)
        return Inspection(None, reason=f"unreadable DICOM file: {type(exc).__name__}: {exc}")
    return Inspection(header, prepared)


def append_chunks(path: Path, chunks: Sequence[bytes | memoryview]) -> None:
    """Append `chunks` to an upload's temp file, creating it (never overwriting another)."""
    with path.open("ab" if path.exists() else "xb") as file:
        file.writelines(chunks)


def init_inspector_process(server_pid: int | None = None) -> None:
    """Initializer of upload-validation worker processes (kept in this light module).

    Given the server's pid, the worker exits when the server does, even if the server was
    killed and could not shut its pool down (Linux pidfd; elsewhere this is skipped).
    """
    # Ctrl-C is for the server process, which shuts its pool down in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from mediastream.process import configure_decoding

    configure_decoding()
    if server_pid is None or not hasattr(os, "pidfd_open"):
        return
    try:
        pidfd = os.pidfd_open(server_pid)
    except OSError:  # already gone
        os._exit(0)

    def exit_with_server() -> None:
        select.select([pidfd], [], [])  # readable once the server process has exited
        os._exit(0)

    threading.Thread(target=exit_with_server, daemon=True, name="exit-with-server").start()


class Library:
    """DICOM instances stored under `root`, grouped into series, rendered frame by frame.

    Parameters
    ----------
    root : Path
        Folder of the library; created if missing.
    cache_bytes : int
        Memory bound of the decoded-frame cache; 0 disables it.
    limits : Limits, optional
        Frame size and count limits enforced at ingest.
    fsync : bool
        Flush each stored file to disk before renaming it into place, and its folder after, so
        an upload reported "stored" survives a power cut. Off by default: it costs
        several milliseconds per file, which the upload throughput target cannot afford. A
        process crash loses nothing either way (the data is in the page cache); a power cut
        without it may lose the last seconds of uploads, and a file cut short by one is caught
        by `load`, which re-validates every file whose size or mtime differs from the index.
    """

    def __init__(
        self, root: Path, *, cache_bytes: int, limits: Limits | None = None, fsync: bool = False
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / INCOMING).mkdir(exist_ok=True)
        self.limits = limits or Limits()
        self.cache = FrameCache(cache_bytes)
        self._failures = FailureMemo()
        self._fsync = fsync
        self._lock = threading.Lock()
        self._upload_prefix = uuid.uuid4().hex  # unique per Library; numbered per upload
        self._upload_numbers = itertools.count()
        self._instances: dict[str, InstanceRecord] = {}  # by SOP Instance UID
        self._series: dict[str, dict[str, InstanceRecord]] = {}  # series -> sop -> record
        self._views: dict[str, SeriesView] = {}  # ordered snapshots, rebuilt on change
        self._journal = IndexJournal(self.root / INDEX_NAME)
        self._last_stamp = 0
        self._created_ns = time.time_ns()

    # -- start-up ---------------------------------------------------------------------------

    def close(self) -> None:
        """Nothing to release: every file is opened and closed per call."""

    def status(self) -> dict[str, object]:
        """For ``/health``: a folder is always there."""
        return {"status": "ok", "backend": "folder", **self.counts()}

    def load(self) -> None:
        """Scan `root` (headers only, no pixel decoding) and replace the in-memory index.

        Files the journal describes with their current size and mtime are taken from it; others
        are re-read from their headers; files that no longer validate are logged and skipped.
        Leftover upload parts from before this Library was created are removed.
        """
        with self._lock:
            self._remove_leftovers()
            known = self._journal.read()
            found: dict[str, InstanceRecord] = {}
            for series_dir in _subdirectories(self.root):
                for entry in os.scandir(series_dir):
                    record = self._load_entry(series_dir.name, entry, known)
                    if record is None:
                        continue
                    sop = record.header.sop_instance_uid
                    if sop in found:
                        log.warning("%s duplicates SOP Instance UID %s; skipped", entry.path, sop)
                        continue
                    found[sop] = record
            self._instances, self._series, self._views = {}, {}, {}
            for record in found.values():
                self._add(record)
            self._last_stamp = max((r.stored_ns for r in found.values()), default=0)
            self.cache.clear()
            current = sorted(found.values(), key=lambda r: r.stored_ns)
            if self._journal.lines != len(current) or any(known.get(r.path) != r for r in current):
                self._journal.rewrite(current)  # compact: drop stale, duplicate and bad lines

    def _load_entry(
        self, series: str, entry: os.DirEntry[str], known: dict[str, InstanceRecord]
    ) -> InstanceRecord | None:
        name = entry.name
        if not (name.endswith(".dcm") and is_safe_uid(name[:-4]) and entry.is_file()):
            return None
        rel = f"{series}/{name}"
        st = entry.stat()
        record = known.get(rel)
        if record is not None and (record.size, record.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return record
        try:
            header, _ = inspect_file(Path(entry.path), limits=self.limits, decode_compressed=False)
        except (IngestRejected, OSError) as exc:
            log.warning("skipping stored file %s: %s", entry.path, getattr(exc, "reason", exc))
            return None
        if (header.series_instance_uid, header.sop_instance_uid) != (series, name[:-4]):
            log.warning("skipping %s: its UIDs do not match its path", entry.path)
            return None
        return InstanceRecord(header, rel, st.st_size, st.st_mtime_ns, st.st_mtime_ns)

    def _remove_leftovers(self) -> None:
        incoming = self.root / INCOMING
        incoming.mkdir(exist_ok=True)
        for entry in os.scandir(incoming):
            try:
                if entry.is_file() and entry.stat().st_mtime_ns < self._created_ns:
                    os.unlink(entry.path)
            except OSError as exc:
                log.warning("cannot remove leftover upload %s: %s", entry.path, exc)

    # -- ingest -----------------------------------------------------------------------------

    def new_temp_path(self) -> Path:
        """A fresh path on the library's filesystem for an upload to be streamed into."""
        # The folder is made by __init__/load; no syscall (not even for randomness) per upload.
        return self.root / INCOMING / f"{self._upload_prefix}-{next(self._upload_numbers)}.part"

    def ingest(self, temp_path: Path, *, filename: str) -> IngestOutcome:
        """Validate the file at `temp_path` by content and store it under its UIDs.

        `temp_path` never remains afterwards: it is renamed into place or deleted.
        """
        return self.commit(temp_path, inspect_upload(temp_path, self.limits), filename=filename)

    def commit(self, temp_path: Path, inspection: Inspection, *, filename: str) -> IngestOutcome:
        """Store (or reject) an upload that `inspect_upload` has already validated.

        The split lets the validation — pure, CPU-bound parsing — run in another process while
        this cheap part (rename, index) runs here. `temp_path` never remains afterwards.
        """
        try:
            header, prepared = inspection.header, inspection.prepared
            if header is None:
                return IngestOutcome(filename, "rejected", reason=inspection.reason)
            if self._fsync:
                _fsync_path(temp_path)
            series, sop = header.series_instance_uid, header.sop_instance_uid
            with self._lock:
                existing = self._instances.get(sop)
                if existing is not None:
                    return IngestOutcome(
                        filename,
                        "already_stored",
                        series_uid=existing.header.series_instance_uid,
                        sop_instance_uid=sop,
                    )
                rel = f"{series}/{sop}.dcm"
                final = self.root / rel
                new_folder = series not in self._series
                try:
                    if new_folder:
                        final.parent.mkdir(exist_ok=True)
                    os.replace(temp_path, final)
                    st = final.stat()
                except OSError as exc:  # e.g. permissions: this file is lost, not the request
                    log.error("cannot store %s: %s", final, exc)
                    return IngestOutcome(filename, "rejected", reason=f"cannot store: {exc}")
                self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
                record = InstanceRecord(header, rel, st.st_size, st.st_mtime_ns, self._last_stamp)
                self._add(record)
                self._journal.append(record)
                if self._journal.lines > 2 * len(self._instances) + 1000:
                    self._journal.rewrite(self._instances.values())
            if self._fsync:  # the rename (and a new series folder) must reach the disk too
                _fsync_path(final.parent)
                if new_folder:
                    _fsync_path(self.root)
            if prepared is not None:  # compressed: frame 0 was decoded to validate it
                self.cache.put((sop, record.stored_ns, 0), prepared)
            return IngestOutcome(filename, "stored", series_uid=series, sop_instance_uid=sop)
        finally:
            temp_path.unlink(missing_ok=True)

    def ingest_dataset(self, ds: Dataset, *, filename: str) -> IngestOutcome:
        """Write `ds` (with its file meta) to a temp file, then `ingest` it."""
        temp = self.new_temp_path()
        try:
            dcmwrite(temp, ds, enforce_file_format=True)
        except Exception as exc:  # pydicom raises many types for unwritable datasets
            temp.unlink(missing_ok=True)
            return IngestOutcome(filename, "rejected", reason=f"cannot write dataset: {exc}")
        return self.ingest(temp, filename=filename)

    def _add(self, record: InstanceRecord) -> None:
        header = record.header
        self._instances[header.sop_instance_uid] = record
        members = self._series.setdefault(header.series_instance_uid, {})
        members[header.sop_instance_uid] = record
        self._views.pop(header.series_instance_uid, None)

    # -- queries ----------------------------------------------------------------------------

    def _view(self, series_uid: str) -> SeriesView:
        """The ordered snapshot of a series (call with the lock held)."""
        view = self._views.get(series_uid)
        if view is None:
            members = self._series.get(series_uid)
            if not members:
                raise SeriesNotFound(f"no series with Series Instance UID {series_uid!r}")
            view = self._views[series_uid] = SeriesView(series_uid, members.values())
        return view

    def _all_views(self) -> list[SeriesView]:
        views = [self._view(uid) for uid in self._series]
        return sorted(views, key=lambda v: (v.last_stored_ns, v.series_uid))

    def is_empty(self) -> bool:
        with self._lock:
            return not self._instances

    def list_series(self) -> list[SeriesInfo]:
        """All series, oldest first: the series that most recently received an instance last."""
        with self._lock:
            return [view.info() for view in self._all_views()]

    def get_series(self, series_uid: str) -> SeriesInfo:
        with self._lock:
            return self._view(series_uid).info()

    def instances(self, series_uid: str) -> tuple[InstanceRecord, ...]:
        """A series' stored instances in display order (their headers hold the geometry).

        ``root / record.path`` is each instance's file. Raises SeriesNotFound.
        """
        with self._lock:
            return self._view(series_uid).instances

    def instance_file(self, series_uid: str, record: InstanceRecord) -> Path:
        """The stored file of `record` (one of `instances(series_uid)`)."""
        return self.root / record.path

    def keep_derived(self, path: Path, sop_instance_uid: str) -> None:
        """Nothing to do: a derived object stored beside the library is kept with it."""

    def latest_series_uid(self) -> str | None:
        """The series that most recently received a stored instance, None when empty."""
        with self._lock:
            views = self._all_views()
            return views[-1].series_uid if views else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            frames = sum(r.header.frames for r in self._instances.values())
            return {
                "series": len(self._series),
                "instances": len(self._instances),
                "frames": frames,
            }

    def frame(self, series_uid: str, index: int, window: Window | None = None) -> DisplayFrame:
        """Frame `index` of a series through the display pipeline (`window` overrides the VOI).

        Raises SeriesNotFound, FrameNotFound (the message gives the valid range) or
        FrameDecodeError. Uses the frame cache, so a window change does not decode again.
        """
        return render(self._prepared(series_uid, index), window)

    def frame_key(self, series_uid: str, index: int) -> FrameKey:
        """What frame `index` of a series shows now: (SOP Instance UID, stored time, frame).

        An index names a different picture once a series gains instances that sort before it,
        so caches of anything derived from a frame key it by this, never by the index.
        Raises SeriesNotFound or FrameNotFound.
        """
        record, local = self._locate(series_uid, index)
        return (record.header.sop_instance_uid, record.stored_ns, local)

    def frame_values(self, series_uid: str, index: int) -> NDArray[np.generic]:
        """Frame `index` after the modality LUT (e.g. Hounsfield units), read-only.

        8-bit RGB for colour sources. Raises like `frame`.
        """
        return self._prepared(series_uid, index).pixels

    def _locate(self, series_uid: str, index: int) -> tuple[InstanceRecord, int]:
        with self._lock:
            view = self._view(series_uid)
        return view.require(index)

    def _prepared(self, series_uid: str, index: int) -> PreparedFrame:
        record, local = self._locate(series_uid, index)
        key = (record.header.sop_instance_uid, record.stored_ns, local)
        prepared = self.cache.get(key)
        if prepared is not None:
            return prepared
        failure = self._failures.get(key)
        if failure is not None:  # decoding again would fail again, and log again
            raise FrameDecodeError(failure)
        try:
            prepared = load_prepared_frame(
                self.root / record.path,
                local,
                transfer_syntax=record.header.transfer_syntax,
                sop_instance_uid=record.header.sop_instance_uid,
            )
        except FileNotFoundError:
            with self._lock:
                self._view(series_uid)  # raises SeriesNotFound if it was deleted meanwhile
            raise FrameDecodeError(
                f"the file of SOP Instance UID {record.header.sop_instance_uid} is missing"
            ) from None
        except FrameDecodeError as exc:
            if self._failures.put(key, exc.message):  # once per frame: it is remembered
                log.warning("%s", exc)
            raise
        self.cache.put(key, prepared)
        return prepared

    # -- deletion ---------------------------------------------------------------------------

    def delete_series(self, series_uid: str) -> int:
        """Delete a series' files; returns how many were removed. Raises SeriesNotFound."""
        with self._lock:
            if series_uid not in self._series:
                raise SeriesNotFound(f"no series with Series Instance UID {series_uid!r}")
            return self._delete(series_uid)

    def delete_all(self) -> int:
        """Delete every stored file; returns how many were removed."""
        with self._lock:
            return sum(self._delete(uid) for uid in list(self._series))

    def _delete(self, series_uid: str) -> int:
        members = self._series.pop(series_uid)
        self._views.pop(series_uid, None)
        removed = 0
        for sop, record in members.items():
            self._instances.pop(sop, None)
            try:
                (self.root / record.path).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        try:
            (self.root / series_uid).rmdir()
        except OSError:
            pass  # not empty (a file we do not list) or already gone
        self.cache.discard_instances(members)
        self._failures.discard_instances(members)
        return removed


def _subdirectories(root: Path) -> list[os.DirEntry[str]]:
    return [e for e in os.scandir(root) if is_safe_uid(e.name) and e.is_dir(follow_symlinks=False)]


def _fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
