"""A small DICOMweb client (QIDO-RS, WADO-RS, STOW-RS) over aiohttp, for `PacsLibrary`.

The client owns an event loop on a thread of its own, with its own aiohttp session. The library
is called from worker threads (rendering, uploads, listings) that must block until the PACS has
answered, and from the prefetcher, which must not block anyone: both are served by
``asyncio.run_coroutine_threadsafe`` onto this loop. Keeping the PACS off the server's event loop
means a slow PACS can never stall signalling or video, and the library works the same inside and
outside the web application (benchmarks, tests).

Every request has a timeout. One media type per ``Accept`` header: Orthanc answers 400 to lists.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
from aiohttp import hdrs

__all__ = [
    "DicomwebClient",
    "DicomwebConfig",
    "PacsRefused",
    "PacsUnavailable",
    "StowResult",
    "first_value",
    "parse_header",
]

T = TypeVar("T")

DICOM_JSON = "application/dicom+json"
# Ask for the instance as stored: no transcoding, the bytes the PACS received.
DICOM_AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
# DICOM PS3.4 Table GG.4-1 and PS3.18 failure reasons, as STOW-RS reports them.
_FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0111: "duplicate SOP Instance",
    0x0117: "invalid object instance",
    0x0122: "SOP class not supported",
    0x0124: "not authorised",
    0xA700: "out of resources",
    0xA900: "data set does not match SOP class",
    0xC000: "cannot understand",
    0xC122: "transfer syntax not supported",
}


class PacsUnavailable(Exception):
    """The PACS did not answer in time, could not be reached, or failed (HTTP 5xx, 401, 403)."""


class PacsRefused(Exception):
    """The PACS answered, and refused the request; the message is its reason."""


def parse_header(line: str) -> tuple[str, str]:
    """``"Name: value"`` -> ``("Name", "value")``; raises ValueError naming the problem."""
    name, sep, value = line.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise ValueError(f'dicomweb header must look like "Name: value", got {line!r}')
    if "\r" in value or "\n" in value:
        raise ValueError(f"dicomweb header {name!r} must not contain line breaks")
    return name, value


@dataclass(frozen=True)
class DicomwebConfig:
    """Where the DICOMweb service is and how to authenticate; validated here."""

    url: str
    auth: tuple[str, str] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 10.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"dicomweb must be an http:// or https:// URL, got {self.url!r}")
        if not 0 < self.timeout <= 600:
            raise ValueError(f"timeout must be between 0 and 600 seconds, got {self.timeout}")

    @property
    def root(self) -> str:
        return self.url.rstrip("/")

    @property
    def orthanc_root(self) -> str:
        """Orthanc's REST API: the DICOMweb root's parent (``…/dicom-web`` -> ``…``)."""
        parts = urlsplit(self.root)
        path = parts.path.rsplit("/", 1)[0]
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True)
class StowResult:
    """What STOW-RS said about one instance: stored, or refused with the PACS's reason."""

    stored: bool
    reason: str | None = None


def first_value(item: Mapping[str, Any], tag: str) -> Any:
    """The first value of `tag` (e.g. ``"0020000E"``) in a DICOM JSON object, or None."""
    element = item.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if isinstance(values, list) and values else None


class DicomwebClient:
    """QIDO-RS, WADO-RS, STOW-RS and Orthanc's delete, on a dedicated loop thread.

    Coroutines run on the client's loop: blocking callers use `call`, background work `submit`.
    `close` is idempotent.
    """

    def __init__(self, config: DicomwebConfig) -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dicomweb", daemon=True)
        self._thread.start()
        self._session: aiohttp.ClientSession = self.call(self._open(), timeout=10)
        self._closed = False

    async def _open(self) -> aiohttp.ClientSession:
        headers = dict(self.config.headers)
        if self.config.auth:  # RFC 7617, built here: aiohttp deprecates its BasicAuth
            credentials = ":".join(self.config.auth).encode("utf-8")
            headers[hdrs.AUTHORIZATION] = "Basic " + base64.b64encode(credentials).decode()
        timeout = aiohttp.ClientTimeout(
            total=self.config.timeout, sock_connect=min(3.0, self.config.timeout)
        )
        return aiohttp.ClientSession(headers=headers, timeout=timeout, raise_for_status=False)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the client's loop; never blocks."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the client's loop and wait for it (from any other thread)."""
        future = self.submit(coro)
        try:
            return future.result(timeout=timeout or self.config.timeout + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise PacsUnavailable("no answer in time") from None

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            self.call(self._shutdown(), timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()

    async def _shutdown(self) -> None:
        """Cancel what still runs here (refreshes, prefetches), then close the session."""
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self._session.close()

    # -- requests ---------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        accept: str | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        first_part: bool = False,
    ) -> tuple[int, str, bytes]:
        """One request, its whole body read; transport failures become `PacsUnavailable`.

        With `first_part`, a 200 answer is multipart and the body returned is its first part's.
        """
        request_headers = dict(headers or {})
        if accept:
            request_headers[hdrs.ACCEPT] = accept
        try:
            async with self._session.request(
                method, url, data=data, headers=request_headers
            ) as response:
                status, reason = response.status, response.reason or ""
                if first_part and status == 200:
                    body = await _first_part(response)
                else:
                    body = await response.read()
        except TimeoutError:
            raise PacsUnavailable(f"no answer within {self.config.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise PacsUnavailable(f"connection failed: {_describe(exc)}") from None
        if status >= 500 or status in (401, 403, 407):
            raise PacsUnavailable(f"the PACS answered HTTP {status} {reason}".rstrip())
        return status, reason, body

    async def _json(self, url: str) -> Any:
        status, reason, body = await self._request("GET", url, accept=DICOM_JSON)
        if status == 204 or (status == 200 and not body.strip()):
            return []
        if status != 200:
            raise PacsRefused(f"HTTP {status} {reason}: {_error_text(body)}".rstrip(": "))
        try:
            return json.loads(body)
        except ValueError:
            raise PacsUnavailable("the PACS sent a malformed JSON answer") from None

    async def search_series(self) -> list[dict[str, Any]]:
        """QIDO-RS: every series, with its study and number of instances."""
        url = (
            f"{self.config.root}/series?includefield=0020000D"
            "&includefield=NumberOfSeriesRelatedInstances"
        )
        rows = await self._json(url)
        return [r for r in rows if isinstance(r, dict)]

    async def series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
        """WADO-RS metadata of every instance of a series (DICOM JSON)."""
        url = f"{self.config.root}/studies/{_q(study_uid)}/series/{_q(series_uid)}/metadata"
        items = await self._json(url)
        return [i for i in items if isinstance(i, dict)]

    async def instance_exists(self, sop_instance_uid: str) -> bool:
        """QIDO-RS: is an instance with this SOP Instance UID stored?"""
        rows = await self._json(
            f"{self.config.root}/instances?SOPInstanceUID={_q(sop_instance_uid)}"
        )
        return bool(rows)

    async def retrieve_instance(self, study_uid: str, series_uid: str, sop_uid: str) -> bytes:
        """WADO-RS: the instance as a DICOM file, in the transfer syntax it is stored in."""
        url = (
            f"{self.config.root}/studies/{_q(study_uid)}/series/{_q(series_uid)}"
            f"/instances/{_q(sop_uid)}"
        )
        # identity: pixel data gains little from gzip, and Orthanc spends ~80 ms per 512 KB
        # slice compressing it (metadata, which is JSON, stays compressed).
        status, reason, body = await self._request(
            "GET",
            url,
            accept=DICOM_AS_STORED,
            headers={hdrs.ACCEPT_ENCODING: "identity"},
            first_part=True,
        )
        if status == 404:
            raise PacsRefused(f"the PACS has no instance {sop_uid}")
        if status != 200:
            raise PacsRefused(f"HTTP {status} {reason}: {_error_text(body)}".rstrip(": "))
        return body

    async def store_instance(self, data: bytes, sop_uid: str) -> StowResult:
        """STOW-RS one DICOM file; a refusal carries the PACS's reason."""
        with aiohttp.MultipartWriter('related; type="application/dicom"') as writer:
            writer.append(data, {hdrs.CONTENT_TYPE: "application/dicom"})
        status, reason, body = await self._request(
            "POST", f"{self.config.root}/studies", accept=DICOM_JSON, data=writer
        )
        try:
            answer = json.loads(body) if body.strip() else {}
        except ValueError:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        failed = (answer.get("00081198") or {}).get("Value") or []
        stored = (answer.get("00081199") or {}).get("Value") or []
        for item in failed:
            if first_value(item, "00081155") in (sop_uid, None):
                code = first_value(item, "00081197")
                return StowResult(False, _failure_reason(code))
        if status in (200, 202) and any(first_value(i, "00081155") == sop_uid for i in stored):
            return StowResult(True)
        detail = _error_text(body) if not answer else ""
        said = f"HTTP {status} {reason}".rstrip() + (f": {detail}" if detail else "")
        return StowResult(False, f"the PACS refused it: {said}")

    async def orthanc_delete_series(self, series_uid: str) -> bool:
        """Orthanc's REST API: find the series' Orthanc id, delete it; False if not there."""
        root = self.config.orthanc_root
        status, reason, body = await self._request(
            "POST", f"{root}/tools/lookup", data=series_uid.encode("ascii")
        )
        if status != 200:
            raise PacsRefused(f"HTTP {status} {reason}: {_error_text(body)}".rstrip(": "))
        try:
            matches = json.loads(body)
        except ValueError:
            raise PacsUnavailable("the PACS sent a malformed JSON answer") from None
        ids = [m["ID"] for m in matches if isinstance(m, dict) and m.get("Type") == "Series"]
        for orthanc_id in ids:
            status, reason, body = await self._request("DELETE", f"{root}/series/{_q(orthanc_id)}")
            if status not in (200, 404):
                raise PacsRefused(f"HTTP {status} {reason}: {_error_text(body)}".rstrip(": "))
        return bool(ids)


async def _first_part(response: aiohttp.ClientResponse) -> bytes:
    """The body of the first part of a multipart answer (WADO-RS sends one per instance)."""
    try:
        part = await aiohttp.MultipartReader(response.headers, response.content).next()
    except ValueError as exc:  # aiohttp's reader signals bad framing with ValueError
        raise PacsUnavailable(f"the PACS sent a malformed multipart answer: {exc}") from None
    if not isinstance(part, aiohttp.BodyPartReader):
        raise PacsUnavailable("the PACS sent an empty multipart answer")
    return bytes(await part.read(decode=False))


def _q(uid: str) -> str:
    return quote(uid, safe="")


def _failure_reason(code: Any) -> str:
    if not isinstance(code, int):
        return "the PACS refused it without giving a reason"
    known = _FAILURE_REASONS.get(code)
    return f"the PACS refused it: {known or 'failure'} (0x{code:04X})"


def _error_text(body: bytes) -> str:
    """A short sentence from an error body: Orthanc's JSON ``Message``/``Details`` or text."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("Message", "Details") if data.get(k)]
        return "; ".join(parts)[:200]
    return ""


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]
