"""Streaming multipart upload into the library: ``POST /images``.

Each part named ``files`` is streamed block by block into a temporary file next to the library (so
the final rename is atomic) and handed to `Library.ingest` in a worker while the next part is
still arriving. The request body is never held in memory, and whatever happens — a bad file, the
size limit, the client going away — every temporary file is either ingested or deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.helpers import parse_mimetype

from mediastream.dicom.library import IngestOutcome, Inspection, append_chunks, inspect_upload
from mediastream.keys import EXECUTOR, INSPECTORS, LIBRARY, SETTINGS, UPLOAD_THREADS
from mediastream.web.errors import ApiError
from mediastream.web.multipart import MalformedMultipart, read_parts

__all__ = ["FIELD_NAME", "post_images"]

FIELD_NAME = "files"  # the older service's field name; clients depend on it
SPILL_BYTES = 1 << 20  # a part larger than this is written out while it arrives
MAX_PARTS_IN_FLIGHT = 16  # received parts awaiting ingest: at most ~2 MiB each in memory


class _TooLarge(Exception):
    pass


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def _store(
    request: web.Request, path: Path, chunks: list[memoryview], filename: str
) -> IngestOutcome:
    """Write (thread), validate (worker process) and commit (thread) one uploaded file.

    Only the path crosses to the worker process: the bytes are written here, where a write
    is a cheap syscall, rather than pickled through a pipe. All three steps are batched with
    the other files of the upload (see `mediastream.batching`).
    """
    library = request.app[LIBRARY]
    threads = request.app[UPLOAD_THREADS]
    try:
        await threads.call(append_chunks, path, chunks)
        inspection = await request.app[INSPECTORS].call(inspect_upload, path, library.limits)
    except OSError as exc:
        inspection = Inspection(None, reason=f"cannot write upload: {exc}")
    except BaseException:
        _unlink_quietly(path)
        raise
    commit = functools.partial(library.commit, filename=filename)
    return await threads.call(commit, path, inspection)


async def _receive_part(
    blocks: AsyncIterator[memoryview], path: Path, executor: Executor, budget: int
) -> tuple[int, list[memoryview]]:
    """Read one part; return its size and the bytes not yet written to `path`.

    Small parts (most DICOM files) stay in memory until their ingest job writes them in one go;
    larger ones are spilled to `path` every few MiB, so a part of any size costs bounded memory.
    Raises `_TooLarge` past `budget` bytes.
    """
    loop = asyncio.get_running_loop()
    size = pending = 0
    chunks: list[memoryview] = []
    async for chunk in blocks:
        size += len(chunk)
        if size > budget:
            raise _TooLarge
        chunks.append(chunk)
        pending += len(chunk)
        if pending >= SPILL_BYTES:
            await loop.run_in_executor(executor, append_chunks, path, chunks)
            chunks, pending = [], 0
    return size, chunks


async def post_images(request: web.Request) -> web.Response:
    """Store the DICOM files of a multipart upload; report one outcome per file."""
    settings = request.app[SETTINGS]
    library = request.app[LIBRARY]
    executor = request.app[EXECUTOR]
    limit = settings.max_upload_bytes

    if request.content_type != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Upload DICOM files as multipart/form-data with parts named '{FIELD_NAME}'; "
            f"got {request.content_type or 'no content type'}.",
        )
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "request_too_large", _too_large_detail(settings.max_upload_mb))
    boundary = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, "")).parameters.get(
        "boundary", ""
    )

    loop = asyncio.get_running_loop()
    ingests: list[asyncio.Future[IngestOutcome]] = []
    in_flight = asyncio.Semaphore(MAX_PARTS_IN_FLIGHT)
    ignored_fields: list[str] = []
    received = 0
    temp: Path | None = None
    try:
        async for part, blocks in read_parts(request.content, boundary):
            if part.name != FIELD_NAME:
                ignored_fields.append(part.name or "(unnamed)")
                continue  # its body is skipped
            filename = part.filename or ""
            temp = library.new_temp_path()
            size, rest = await _receive_part(blocks, temp, executor, limit - received)
            received += size
            if size == 0:
                ingests.append(_done(IngestOutcome(filename, "rejected", reason="empty file")))
                temp = None
                continue
            await in_flight.acquire()
            job = asyncio.ensure_future(_store(request, temp, rest, filename))
            job.add_done_callback(lambda _: in_flight.release())
            ingests.append(job)
            temp = None  # owned by the job now
    except _TooLarge:
        outcomes = await _settle(ingests)
        raise ApiError(
            413,
            "request_too_large",
            _too_large_detail(settings.max_upload_mb),
            files=[o.to_json() for o in outcomes],
        ) from None
    except MalformedMultipart as exc:
        outcomes = await _settle(ingests)
        raise ApiError(
            400,
            "malformed_multipart",
            f"The multipart body could not be read: {exc}.",
            files=[o.to_json() for o in outcomes],
        ) from None
    finally:
        if temp is not None:
            await loop.run_in_executor(executor, _unlink_quietly, temp)
        # Whatever went wrong, let started ingests finish so no temporary file is left behind.
        await asyncio.gather(*ingests, return_exceptions=True)

    outcomes = [f.result() for f in ingests]
    if not outcomes:
        hint = f" (found only: {', '.join(ignored_fields)})" if ignored_fields else ""
        raise ApiError(
            400, "no_files", f"The request holds no file parts named '{FIELD_NAME}'{hint}."
        )
    body = {"files": [o.to_json() for o in outcomes]}
    if any(o.outcome != "rejected" for o in outcomes):
        return web.json_response(body)
    raise ApiError(
        422,
        "no_valid_files",
        f"None of the {len(outcomes)} uploaded file(s) is a DICOM image this server can store.",
        **body,
    )


def _done(outcome: IngestOutcome) -> asyncio.Future[IngestOutcome]:
    future: asyncio.Future[IngestOutcome] = asyncio.get_running_loop().create_future()
    future.set_result(outcome)
    return future


async def _settle(ingests: list[asyncio.Future[IngestOutcome]]) -> list[IngestOutcome]:
    done = await asyncio.gather(*ingests, return_exceptions=True)
    return [o for o in done if isinstance(o, IngestOutcome)]


def _too_large_detail(max_mb: int) -> str:
    return f"The upload is larger than this server accepts ({max_mb} MiB per request)."
