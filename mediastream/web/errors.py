"""JSON errors: every failure a client sees is ``{"error": "<code>", "detail": "<sentence>"}``.

Handlers raise `ApiError` (or let a `LibraryError` escape); the middleware turns those, aiohttp's
own HTTP exceptions (unknown path, wrong method, body too large) and anything unexpected into JSON
with a fitting status. Unexpected exceptions are logged here with their traceback and reach the
client only as a generic sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from mediastream.dicom.errors import (
    DeleteNotAllowed,
    FrameDecodeError,
    FrameNotFound,
    LibraryError,
    LibraryUnavailable,
    SeriesNotFound,
)

__all__ = ["ApiError", "error_middleware", "json_error", "missing_static_files"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_LIBRARY_STATUS: dict[type[LibraryError], int] = {
    SeriesNotFound: 404,
    FrameNotFound: 404,
    FrameDecodeError: 422,
    DeleteNotAllowed: 405,
    LibraryUnavailable: 503,
}

# Codes for aiohttp's own exceptions, by status.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error meant for the client: HTTP status, short machine code, human sentence."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def json_error(status: int, code: str, detail: str, **extra: Any) -> web.Response:
    """The one shape of every error response."""
    return web.json_response({"error": code, "detail": detail, **extra}, status=status)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    status = exc.status
    code = _HTTP_CODES.get(status, f"http_{status}")
    if status == 404:
        detail = f"There is nothing at {request.method} {request.path}."
    elif status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        detail = f"{request.method} is not allowed on {request.path}; allowed: {allowed}."
    elif status == 413:
        detail = "The request body is larger than this server accepts."
    elif status == 403:
        detail = f"{request.path} cannot be listed or read."
    else:
        detail = exc.text or exc.reason
    response = json_error(status, code, detail)
    if status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.code, exc.detail, **exc.extra)
    except LibraryError as exc:
        response = json_error(_LIBRARY_STATUS.get(type(exc), 400), exc.code, str(exc))
        if isinstance(exc, DeleteNotAllowed):  # a 405 lists what the resource still allows
            response.headers["Allow"] = ", ".join(_methods_but(request, hdrs.METH_DELETE))
        return response
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects and the like are not errors
            raise
        return _from_http_exception(request, exc)
    except ConnectionError:
        raise  # the client went away; there is nobody to answer
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return json_error(500, "internal_error", "The server failed to handle this request.")


def _methods_but(request: web.Request, method: str) -> list[str]:
    resource = request.match_info.route.resource
    routes = list(resource) if resource is not None else []
    return sorted({route.method for route in routes} - {method})


def missing_static_files(static_dir: Path) -> Middleware:
    """Make a missing static file a JSON 404 like every other unknown path.

    aiohttp's static handler finds out that a file is missing only while sending it, and then
    answers with an empty 404. Traversal and directories stay aiohttp's to refuse.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        filename = request.match_info.get("filename")
        if (
            filename is not None
            and request.path.startswith("/static/")
            and not (static_dir / filename).exists()
        ):
            raise web.HTTPNotFound()
        return await handler(request)

    return middleware
