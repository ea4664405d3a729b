"""A PACS as the library, over DICOMweb (``--dicomweb URL``).

* The index (`PacsIndex`) is built from QIDO-RS (series, instance counts) and WADO-RS metadata,
  read again only for a series whose instance count changed or whose copy is older than
  `metadata_max_age` (Orthanc's metadata route reads every file of the series). `list_series`
  asks the PACS afresh; a background task refreshes every `refresh_seconds` (`retry_seconds`
  while the PACS is unreachable).
* Instances are retrieved whole, in their stored transfer syntax, into a local disk cache
  (``<root>/.pacs-cache/<series>/<sop>.dcm``), and decoded frames go to the memory cache, so
  looping a series costs the PACS nothing; the instances ahead of a frame are prefetched.
* Uploads are validated as for the folder, then stored with STOW-RS one file per request, so
  each file gets its own outcome and the PACS's own reason. Deletion is refused unless
  `allow_delete`, then uses Orthanc's REST API.

Every PACS call has a timeout. A PACS that cannot be reached raises `LibraryUnavailable` and
`status` says so; lookups that answer from memory keep working meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info

from mediastream.dicom.cache import FailureMemo, FrameCache, FrameKey
from mediastream.dicom.decode import load_prepared_frame
from mediastream.dicom.dicomweb import (
    DicomwebClient,
    DicomwebConfig,
    PacsRefused,
    PacsUnavailable,
    StowResult,
    first_value,
)
from mediastream.dicom.display import DisplayFrame, PreparedFrame, Window, render
from mediastream.dicom.errors import (
    DeleteNotAllowed,
    FrameDecodeError,
    IngestRejected,
    LibraryUnavailable,
    SeriesNotFound,
)
from mediastream.dicom.ingest import InstanceHeader, Limits, is_safe_uid
from mediastream.dicom.library import INCOMING, IngestOutcome, Inspection, inspect_upload
from mediastream.dicom.pacs_index import PacsIndex
from mediastream.dicom.series import InstanceRecord, SeriesInfo

__all__ = ["PacsLibrary"]

log = logging.getLogger(__name__)

CACHE = ".pacs-cache"
_DOWNLOADS = 6  # instance retrievals at once (on-demand and prefetch together)
_METADATA_FETCHES = 4  # series metadata requests at once during a refresh
_NO_STUDY = "missing Study Instance UID (0020,000D), by which a PACS files instances"
_NOT_KEPT = (
    "the PACS refused it: it reported the instance stored but does not list it (its own "
    "rules filtered it out)"
)


class PacsLibrary:
    """The `ImageStore` of a DICOMweb service, cached on local disk under `root`.

    Parameters
    ----------
    config : DicomwebConfig
        The service root, credentials and per-call timeout.
    root : Path
        Local folder for uploads being validated and retrieved instances (``--uploads``).
    cache_bytes : int
        Memory bound of the decoded-frame cache.
    limits : Limits, optional
        Checked at upload, and on the PACS's metadata before an instance is listed.
    allow_delete : bool
        Let `delete_series` delete from the PACS (Orthanc's REST API).
    prefetch : int
        Instances retrieved ahead of a requested frame, in the background.
    """

    def __init__(
        self,
        config: DicomwebConfig,
        root: Path,
        *,
        cache_bytes: int,
        limits: Limits | None = None,
        allow_delete: bool = False,
        refresh_seconds: float = 5.0,
        retry_seconds: float = 1.0,
        metadata_max_age: float = 300.0,
        prefetch: int = 16,
    ) -> None:
        self.config = config
        self.root = Path(root)
        self._files = self.root / CACHE
        self._files.mkdir(parents=True, exist_ok=True)
        (self.root / INCOMING).mkdir(exist_ok=True)
        self.limits = limits or Limits()
        self.cache = FrameCache(cache_bytes)
        self.allow_delete = allow_delete
        self.refresh_seconds = refresh_seconds
        self.retry_seconds = retry_seconds
        self.metadata_max_age = metadata_max_age
        self.prefetch = prefetch
        self._failures = FailureMemo()
        self._client = DicomwebClient(config)
        self._index = PacsIndex(self.limits)
        self._lock = threading.Lock()  # guards `_downloads`
        self._downloads: dict[str, concurrent.futures.Future[Path]] = {}
        self._error: str | None = "the PACS has not been contacted yet"
        self._upload_prefix = uuid.uuid4().hex
        self._upload_numbers = itertools.count()
        self._sync_lock = asyncio.Lock()  # binds to the client's loop on first use
        self._download_slots = asyncio.Semaphore(_DOWNLOADS)
        self._refresher: concurrent.futures.Future[None] | None = None

    # -- life cycle -------------------------------------------------------------------------

    def load(self) -> None:
        """Read the PACS's index; if it cannot be reached, say so in `status` and keep trying."""
        try:
            self._client.call(self._sync(self.metadata_max_age))
        except LibraryUnavailable as exc:
            log.warning("PACS %s unavailable at start-up: %s; retrying", self.config.url, exc)
        if self._refresher is None:
            self._refresher = self._client.submit(self._refresh_forever())

    def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        self._client.close()

    def status(self) -> dict[str, object]:
        error = self._error
        if error is not None:
            return {"status": "unavailable", "backend": "dicomweb", "detail": error}
        return {"status": "ok", "backend": "dicomweb", **self.counts()}

    def _up(self) -> None:
        if self._error is not None:
            log.info("PACS %s is available", self.config.url)
        self._error = None

    def _down(self, detail: str) -> LibraryUnavailable:
        if self._error is None:
            log.warning("PACS %s is unavailable: %s", self.config.url, detail)
        self._error = f"The PACS cannot be reached ({detail})."
        return LibraryUnavailable(self._error)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds if self._error else self.refresh_seconds)
            try:
                await self._sync(self.metadata_max_age)
            except LibraryUnavailable:
                pass  # logged by _down; retried
            except Exception:  # a bug must not end the refresher
                log.exception("refreshing the PACS index failed")

    # -- the index --------------------------------------------------------------------------

    async def _sync(self, max_age: float | None) -> None:
        """Take in the PACS's current series; re-read the metadata of those that changed."""
        async with self._sync_lock:
            asked = time.monotonic()
            try:
                rows = await self._client.search_series()
            except (PacsUnavailable, PacsRefused) as exc:
                raise self._down(str(exc)) from None
            found: dict[str, tuple[str, int | None]] = {}
            for row in rows:
                uid, study = first_value(row, "0020000E"), first_value(row, "0020000D")
                if isinstance(uid, str) and isinstance(study, str) and is_safe_uid(uid):
                    found[uid] = (study, _count(first_value(row, "00201209")))
            todo = self._index.changed(found, asked, max_age)
            slots = asyncio.Semaphore(_METADATA_FETCHES)

            async def headers(study: str, uid: str) -> list[InstanceHeader] | None:
                async with slots:
                    try:
                        items = await self._client.series_metadata(study, uid)
                    except PacsRefused as exc:  # e.g. deleted meanwhile: the next refresh sees
                        log.info("reading the metadata of series %s failed: %s", uid, exc)
                        return None
                # Parsing is CPU work: off this loop, so other PACS calls go on meanwhile.
                return await asyncio.to_thread(self._index.headers, uid, items)

            try:
                results = await asyncio.gather(*(headers(s, u) for u, s, _ in todo))
            except PacsUnavailable as exc:
                raise self._down(str(exc)) from None
            self._up()
            gone, removed = self._index.apply(found, todo, results, asked)
            self._discard(removed)
            if gone:
                await asyncio.to_thread(self._remove_files, gone)

    def _discard(self, sop_instance_uids: set[str]) -> None:
        """Drop instances no longer listed from the memory caches."""
        if sop_instance_uids:
            self.cache.discard_instances(sop_instance_uids)
            self._failures.discard_instances(sop_instance_uids)

    def _remove_files(self, series_uids: Iterable[str]) -> None:
        for uid in series_uids:
            shutil.rmtree(self._files / uid, ignore_errors=True)

    # -- queries ----------------------------------------------------------------------------

    def is_empty(self) -> bool:
        return self._index.is_empty()

    def list_series(self) -> list[SeriesInfo]:
        """Every series the PACS holds now; raises LibraryUnavailable if it cannot be asked."""
        self._client.call(self._sync(None))
        return [view.info() for view in self._index.views()]

    def get_series(self, series_uid: str) -> SeriesInfo:
        return self._index.entry(series_uid).view.info()

    def latest_series_uid(self) -> str | None:
        views = self._index.views()
        return views[-1].series_uid if views else None

    def counts(self) -> dict[str, int]:
        views = self._index.views()
        return {
            "series": len(views),
            "instances": sum(len(v.instances) for v in views),
            "frames": sum(v.frame_count for v in views),
        }

    def frame(self, series_uid: str, index: int, window: Window | None = None) -> DisplayFrame:
        return render(self._prepared(series_uid, index), window)

    def frame_key(self, series_uid: str, index: int) -> FrameKey:
        record, local = self._locate(series_uid, index)
        return (record.header.sop_instance_uid, record.stored_ns, local)

    def frame_values(self, series_uid: str, index: int) -> NDArray[np.generic]:
        return self._prepared(series_uid, index).pixels

    def instances(self, series_uid: str) -> tuple[InstanceRecord, ...]:
        return self._index.entry(series_uid).view.instances

    def instance_file(self, series_uid: str, record: InstanceRecord) -> Path:
        """The instance in the local cache, retrieved from the PACS first if need be."""
        return self._instance_file(series_uid, record, then_prefetch=-1)

    def keep_derived(self, path: Path, sop_instance_uid: str) -> None:
        """Send a derived object (an exported DICOM SEG) to the PACS with STOW-RS."""
        try:
            result = self._client.call(
                self._client.store_instance(path.read_bytes(), sop_instance_uid)
            )
        except PacsUnavailable as exc:
            raise self._down(str(exc)) from None
        except PacsRefused as exc:
            raise IngestRejected(f"the PACS refused it: {exc}") from None
        if not result.stored:
            raise IngestRejected(result.reason or "the PACS refused it")

    def _locate(self, series_uid: str, index: int) -> tuple[InstanceRecord, int]:
        return self._index.entry(series_uid).view.require(index)

    def _prepared(self, series_uid: str, index: int) -> PreparedFrame:
        record, local = self._locate(series_uid, index)
        sop = record.header.sop_instance_uid
        key = (sop, record.stored_ns, local)
        prepared = self.cache.get(key)
        if prepared is not None:
            return prepared
        failure = self._failures.get(key)
        if failure is not None:
            raise FrameDecodeError(failure)
        path = self._instance_file(series_uid, record, then_prefetch=index)
        try:
            syntax = str(read_file_meta_info(path).TransferSyntaxUID)
            prepared = load_prepared_frame(
                path, local, transfer_syntax=syntax, sop_instance_uid=sop
            )
        except FrameDecodeError as exc:
            if self._failures.put(key, exc.message):  # once per frame
                log.warning("%s", exc)
            raise
        except Exception as exc:  # a retrieved file without readable meta, or gone meanwhile
            path.unlink(missing_ok=True)  # retrieved again next time
            raise FrameDecodeError(
                f"cannot read SOP Instance UID {sop} as retrieved: {exc}"
            ) from None
        self.cache.put(key, prepared)
        return prepared

    # -- retrieval --------------------------------------------------------------------------

    def _instance_file(self, series_uid: str, record: InstanceRecord, then_prefetch: int) -> Path:
        """The instance on local disk, retrieved from the PACS first if need be (blocking).

        The instances after frame `then_prefetch` are asked for next, in the background: the
        frame wanted now goes first in the queue.
        """
        path = self._files / record.path
        if path.exists():
            self._prefetch_after(series_uid, then_prefetch)
            return path
        future = self._download(series_uid, record)
        self._prefetch_after(series_uid, then_prefetch)
        try:
            return future.result(timeout=self.config.timeout + 5)
        except concurrent.futures.TimeoutError:
            raise self._down("no instance sent in time") from None
        except PacsUnavailable as exc:
            raise self._down(str(exc)) from None
        except PacsRefused as exc:
            raise FrameDecodeError(
                f"cannot retrieve SOP Instance UID {record.header.sop_instance_uid}: {exc}"
            ) from None

    def _download(self, series_uid: str, record: InstanceRecord) -> concurrent.futures.Future[Path]:
        """Start retrieving an instance, or join the retrieval already under way."""
        sop = record.header.sop_instance_uid
        with self._lock:
            future = self._downloads.get(sop)
            if future is None:
                study = self._index.entry(series_uid).study_uid
                future = self._client.submit(self._retrieve(study, series_uid, record))
                self._downloads[sop] = future
        future.add_done_callback(lambda f: self._download_done(sop, f))
        return future

    def _download_done(self, sop: str, future: concurrent.futures.Future[Path]) -> None:
        with self._lock:
            if self._downloads.get(sop) is future:
                del self._downloads[sop]

    async def _retrieve(self, study: str, series_uid: str, record: InstanceRecord) -> Path:
        path = self._files / record.path
        async with self._download_slots:
            if path.exists():  # retrieved while this waited for a slot
                return path
            data = await self._client.retrieve_instance(
                study, series_uid, record.header.sop_instance_uid
            )
        self._up()
        await asyncio.to_thread(_write_atomically, path, data)
        return path

    def _prefetch_after(self, series_uid: str, index: int) -> None:
        """Retrieve the instances of the next frames in the background (wrapping: it loops)."""
        if self.prefetch <= 0 or self._error is not None:  # no point while it is down
            return
        view = self._index.entry(series_uid).view
        count = view.frame_count
        seen: set[str] = set()
        for step in range(1, min(self.prefetch, count - 1) + 1):
            located = view.locate((index + step) % count)
            if located is None:
                continue
            record = located[0]
            sop = record.header.sop_instance_uid
            if sop in seen or (self._files / record.path).exists():
                continue
            seen.add(sop)
            future = self._download(series_uid, record)
            future.add_done_callback(_ignore_failure)

    # -- storing ----------------------------------------------------------------------------

    def new_temp_path(self) -> Path:
        return self.root / INCOMING / f"{self._upload_prefix}-{next(self._upload_numbers)}.part"

    def ingest(self, temp_path: Path, *, filename: str) -> IngestOutcome:
        return self.commit(temp_path, inspect_upload(temp_path, self.limits), filename=filename)

    def ingest_dataset(self, ds: Dataset, *, filename: str) -> IngestOutcome:
        temp = self.new_temp_path()
        try:
            dcmwrite(temp, ds, enforce_file_format=True)
        except Exception as exc:
            temp.unlink(missing_ok=True)
            return IngestOutcome(filename, "rejected", reason=f"cannot write dataset: {exc}")
        return self.ingest(temp, filename=filename)

    def commit(self, temp_path: Path, inspection: Inspection, *, filename: str) -> IngestOutcome:
        """STOW-RS a validated upload; keep the copy sent as the local cache of the instance."""
        try:
            header = inspection.header
            if header is None:
                return IngestOutcome(filename, "rejected", reason=inspection.reason)
            series, sop = header.series_instance_uid, header.sop_instance_uid
            study = _study_uid(temp_path)
            if study is None:
                return IngestOutcome(filename, "rejected", reason=_NO_STUDY)
            try:
                if self._client.call(self._client.instance_exists(sop)):
                    return IngestOutcome(
                        filename, "already_stored", series_uid=series, sop_instance_uid=sop
                    )
                result = self._client.call(self._client.store_instance(temp_path.read_bytes(), sop))
                # Orthanc reports an instance its own rules filtered out as stored: only an
                # instance the PACS then lists is "stored".
                if result.stored and not self._client.call(self._client.instance_exists(sop)):
                    result = StowResult(False, _NOT_KEPT)
            except PacsUnavailable as exc:
                self._down(str(exc))
                return IngestOutcome(
                    filename,
                    "rejected",
                    reason=f"the PACS cannot be reached ({exc})",
                    unavailable=True,
                )
            except PacsRefused as exc:
                return IngestOutcome(filename, "rejected", reason=f"the PACS refused it: {exc}")
            self._up()
            if not result.stored:
                return IngestOutcome(filename, "rejected", reason=result.reason)
            record = self._add(study, header, temp_path)
            if inspection.prepared is not None:  # compressed: frame 0 was decoded to validate it
                self.cache.put((sop, record.stored_ns, 0), inspection.prepared)
            return IngestOutcome(filename, "stored", series_uid=series, sop_instance_uid=sop)
        finally:
            temp_path.unlink(missing_ok=True)

    def _add(self, study: str, header: InstanceHeader, temp_path: Path) -> InstanceRecord:
        """List a just-stored instance at once, keeping the copy sent as its local cache."""
        final = self._files / header.series_instance_uid / f"{header.sop_instance_uid}.dcm"
        try:
            final.parent.mkdir(exist_ok=True)
            os.replace(temp_path, final)
        except OSError as exc:  # the PACS has it; it is retrieved when shown
            log.warning("cannot keep a local copy of %s: %s", header.sop_instance_uid, exc)
        return self._index.add(study, header)

    # -- deletion ---------------------------------------------------------------------------

    def delete_series(self, series_uid: str) -> int:
        if not self.allow_delete:
            raise DeleteNotAllowed(
                "This server does not delete from the PACS; start it with "
                "--dicomweb-allow-delete to allow that."
            )
        try:
            existed = self._client.call(self._client.orthanc_delete_series(series_uid))
        except PacsUnavailable as exc:
            raise self._down(str(exc)) from None
        except PacsRefused as exc:
            raise DeleteNotAllowed(
                f"The PACS refused to delete series {series_uid}: {exc}."
            ) from None
        self._up()
        sops = self._index.remove(series_uid)
        self._discard(sops)
        self._remove_files([series_uid])
        removed = len(sops)
        if not existed and not removed:
            raise SeriesNotFound(f"no series with Series Instance UID {series_uid!r}")
        return removed

    def delete_all(self) -> int:
        raise DeleteNotAllowed(
            "DELETE /images would empty the whole PACS, which other servers and people share; "
            "delete series one by one (with --dicomweb-allow-delete)."
        )


def _count(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _study_uid(path: Path) -> str | None:
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"], force=True)
    except Exception:
        return None
    uid = str(ds.get("StudyInstanceUID", "") or "").strip()
    return uid if is_safe_uid(uid) else None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _ignore_failure(future: concurrent.futures.Future[Path]) -> None:
    """A prefetch nobody waits for: its failure shows when the frame is asked for."""
    if not future.cancelled():
        future.exception()
