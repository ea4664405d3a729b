"""Streaming multipart upload into the library: ``POST /images``.

Each part named ``files`` is read block by block (`mediastream.web.multipart`) and stored while
the next part is still arriving: written to a temporary file next to the library (so the final
rename is atomic), validated in a worker process, committed in a thread. The request body is
never held in memory, and whatever happens — a bad file, a size limit, the client going away —
every temporary file is either stored or deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.helpers import parse_mimetype

from mediastream.dicom.errors import IngestRejected, LibraryUnavailable, SeriesNotFound
from mediastream.dicom.library import IngestOutcome, Inspection, append_chunks, inspect_upload
from mediastream.dicom.segstore import is_segmentation_file, looks_like_segmentation
from mediastream.keys import EXECUTOR, INSPECTORS, LIBRARY, SEGMENTATIONS, SETTINGS, UPLOAD_THREADS
from mediastream.settings import Settings
from mediastream.volumes import measure_uploaded
from mediastream.web.errors import ApiError
from mediastream.web.multipart import MalformedMultipart, read_parts

__all__ = ["FIELD_NAME", "post_images"]

log = logging.getLogger(__name__)

FIELD_NAME = "files"  # the older service's field name; clients depend on it
SPILL_BYTES = 1 << 20  # a part larger than this is written out while it arrives
MAX_PARTS_IN_FLIGHT = 16  # received parts awaiting storage: at most ~2 MiB each in memory


class _RequestTooLarge(Exception):
    pass


class _FileTooLarge(Exception):
    pass


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class _Upload:
    """One ``POST /images``: reads its parts and stores them, one outcome per file."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.settings: Settings = request.app[SETTINGS]
        self.library = request.app[LIBRARY]
        self.received = 0  # body bytes of file parts so far
        self.jobs: list[asyncio.Future[IngestOutcome]] = []
        self.ignored_fields: list[str] = []
        self._in_flight = asyncio.Semaphore(MAX_PARTS_IN_FLIGHT)

    async def receive(self, boundary: str) -> None:
        async for part, blocks in read_parts(self.request.content, boundary):
            if part.name != FIELD_NAME:
                self.ignored_fields.append(part.name or "(unnamed)")
                continue  # its body is skipped
            await self._receive_file(part.filename or "", blocks)

    async def _receive_file(self, filename: str, blocks: AsyncIterator[memoryview]) -> None:
        temp = self.library.new_temp_path()
        try:
            size, rest = await self._read(blocks, temp)
        except _FileTooLarge:
            _unlink_quietly(temp)
            await self._drain(blocks)
            limit = self.settings.max_file_mb
            self._settled(
                IngestOutcome(filename, "rejected", reason=f"file too large: over {limit} MiB")
            )
            return
        except BaseException:
            _unlink_quietly(temp)  # what was spilled so far; one quick syscall
            raise
        if size == 0:
            self._settled(IngestOutcome(filename, "rejected", reason="empty file"))
            return
        await self._in_flight.acquire()
        job = asyncio.ensure_future(self._store(temp, rest, filename))
        job.add_done_callback(lambda _: self._in_flight.release())
        self.jobs.append(job)

    async def _read(
        self, blocks: AsyncIterator[memoryview], temp: Path
    ) -> tuple[int, list[memoryview]]:
        """Read one part; return its size and the bytes not yet written to `temp`.

        Small parts (most DICOM files) stay in memory until their storage job writes them in
        one go; larger ones are spilled to `temp` every MiB, so any part costs bounded memory.
        """
        size = pending = 0
        chunks: list[memoryview] = []
        async for chunk in blocks:
            size += len(chunk)
            self._count(len(chunk))
            if size > self.settings.max_file_bytes:
                raise _FileTooLarge
            chunks.append(chunk)
            pending += len(chunk)
            if pending >= SPILL_BYTES:
                await self._thread(append_chunks, temp, chunks)
                chunks, pending = [], 0
        return size, chunks

    async def _drain(self, blocks: AsyncIterator[memoryview]) -> None:
        async for chunk in blocks:
            self._count(len(chunk))

    def _count(self, size: int) -> None:
        self.received += size
        if self.received > self.settings.max_upload_bytes:
            raise _RequestTooLarge

    async def _store(self, path: Path, chunks: list[memoryview], filename: str) -> IngestOutcome:
        """Write (thread), validate (worker process) and commit (thread) one uploaded file.

        Only the path crosses to the worker process: the bytes are written here, where a write
        is a cheap syscall, rather than pickled through a pipe. All three steps are batched
        with the other files of the upload (see `mediastream.batching`).
        """
        threads = self.request.app[UPLOAD_THREADS]
        try:
            try:
                if await threads.call(_write, path, chunks):
                    # DICOM SEG is no picture to show: it goes to the segmentation store.
                    return await threads.call(self._store_segmentation, path, filename)
                inspection = await self.request.app[INSPECTORS].call(
                    inspect_upload, path, self.library.limits
                )
            except OSError as exc:
                inspection = Inspection(None, reason=f"cannot write upload: {exc}")
            commit = functools.partial(self.library.commit, filename=filename)
            return await threads.call(commit, path, inspection)
        except Exception:  # a bug costs this file, never the batch or a 500
            log.exception("storing an uploaded file failed")
            _unlink_quietly(path)
            return IngestOutcome(filename, "rejected", reason="the server failed to store it")
        except BaseException:
            _unlink_quietly(path)
            raise

    def _store_segmentation(self, path: Path, filename: str) -> IngestOutcome:
        def series_known(series_uid: str) -> bool:
            try:
                self.library.get_series(series_uid)
            except SeriesNotFound:
                return False
            return True

        store = self.request.app[SEGMENTATIONS]
        outcome, reason, series_uid, seg_uid = store.add_upload(path, series_known=series_known)
        if outcome == "stored" and series_uid is not None and seg_uid is not None:
            try:  # where the images are kept (a PACS) too, or not kept at all
                self.library.keep_derived(store.file(store.get(series_uid, seg_uid)), seg_uid)
            except (IngestRejected, LibraryUnavailable) as exc:
                store.delete(series_uid, seg_uid)
                outcome, reason = "rejected", getattr(exc, "reason", None) or str(exc)
        if outcome == "stored" and series_uid is not None and seg_uid is not None:
            try:
                measure_uploaded(self.library, store, series_uid, seg_uid)
            except Exception:  # it is stored as sent; only its measurements are missing
                log.exception("measuring the uploaded segmentation %s failed", seg_uid)
        return IngestOutcome(
            filename,
            outcome,
            reason=reason or None,
            series_uid=series_uid,
            sop_instance_uid=seg_uid,
        )

    def _settled(self, outcome: IngestOutcome) -> None:
        future: asyncio.Future[IngestOutcome] = asyncio.get_running_loop().create_future()
        future.set_result(outcome)
        self.jobs.append(future)

    async def _thread(self, func: Callable[..., object], *args: object) -> None:
        await asyncio.get_running_loop().run_in_executor(self.request.app[EXECUTOR], func, *args)

    async def outcomes(self) -> list[IngestOutcome]:
        """Wait for every started file (each job turns its own failure into an outcome)."""
        return list(await asyncio.gather(*self.jobs))


async def post_images(request: web.Request) -> web.Response:
    """Store the DICOM files of a multipart upload; report one outcome per file."""
    settings = request.app[SETTINGS]
    if request.content_type != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Upload DICOM files as multipart/form-data with parts named '{FIELD_NAME}'; "
            f"got {request.content_type or 'no content type'}.",
        )
    if request.content_length is not None and request.content_length > settings.max_upload_bytes:
        raise ApiError(413, "request_too_large", _too_large_detail(settings.max_upload_mb))
    boundary = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, "")).parameters.get(
        "boundary", ""
    )

    upload = _Upload(request)
    try:
        await upload.receive(boundary)
    except _RequestTooLarge:
        outcomes = await upload.outcomes()
        raise ApiError(
            413,
            "request_too_large",
            _too_large_detail(settings.max_upload_mb),
            files=[o.to_json() for o in outcomes],
        ) from None
    except MalformedMultipart as exc:
        outcomes = await upload.outcomes()
        raise ApiError(
            400,
            "malformed_multipart",
            f"The multipart body could not be read: {exc}.",
            files=[o.to_json() for o in outcomes],
        ) from None
    finally:
        # Whatever went wrong, let started files finish so no temporary file is left behind.
        await asyncio.gather(*upload.jobs, return_exceptions=True)

    outcomes = await upload.outcomes()
    if not outcomes:
        names = upload.ignored_fields
        hint = f" (found only: {', '.join(names)})" if names else ""
        raise ApiError(
            400, "no_files", f"The request holds no file parts named '{FIELD_NAME}'{hint}."
        )
    body = {"files": [o.to_json() for o in outcomes]}
    if any(o.outcome != "rejected" for o in outcomes):
        return web.json_response(body)
    if any(o.unavailable for o in outcomes):
        raise ApiError(
            503,
            "library_unavailable",
            "The PACS cannot be reached, so no file was stored; try again later.",
            **body,
        )
    raise ApiError(
        422,
        "no_valid_files",
        f"None of the {len(outcomes)} uploaded file(s) is a DICOM image this server can store.",
        **body,
    )


def _write(path: Path, chunks: list[memoryview]) -> bool:
    """Finish writing an upload; True when it is a DICOM Segmentation (SOP Class UID)."""
    append_chunks(path, chunks)
    return looks_like_segmentation(path) and is_segmentation_file(path)


def _too_large_detail(max_mb: int) -> str:
    return f"The upload is larger than this server accepts ({max_mb} MiB per request)."
