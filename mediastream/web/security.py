"""Access control: the bearer token, the WebSocket origin check, tokens kept out of logs.

With a token configured, every API request needs ``Authorization: Bearer <token>``. Public are
only the bundled page, its static files, ``/health`` and the API documentation — none of which
holds patient data. The WebSocket also accepts the token as ``?token=`` (browsers cannot set
headers on a WebSocket) or in a first ``{"type": "auth"}`` message (see signalling).
"""

from __future__ import annotations

import hmac
import re
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger

from mediastream.keys import SETTINGS
from mediastream.settings import Settings
from mediastream.web.errors import json_error

__all__ = [
    "PUBLIC_PATHS",
    "RedactingAccessLogger",
    "auth_middleware",
    "origin_allowed",
    "request_token",
    "tls_context",
    "token_matches",
]

PUBLIC_PATHS = frozenset({"/", "/health", "/docs", "/redoc", "/openapi.json"})
PUBLIC_PREFIXES = ("/static/",)
WEBSOCKET_PATH = "/ws"  # authenticates itself: ?token= or an "auth" message

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing reveals nothing about the token."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def request_token(request: web.Request) -> str | None:
    """The token a request carries in ``Authorization: Bearer …``."""
    scheme, _, value = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or path == WEBSOCKET_PATH


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[SETTINGS].token
    if expected is None or request.method == "OPTIONS" or _is_public(request.path):
        return await handler(request)
    if not token_matches(request_token(request), expected):
        response = json_error(
            401,
            "unauthorized",
            "This server needs 'Authorization: Bearer <token>' on API requests; the token "
            "was missing or wrong.",
        )
        response.headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="mediastream"'
        return response
    return await handler(request)


def origin_allowed(request: web.Request) -> bool:
    """A browser's WebSocket handshake must come from this server's page or a CORS origin.

    Without this, any web page open in the same browser could open the socket (cross-site
    WebSocket hijacking). Clients that are not browsers send no Origin and are let through;
    they must still present the token when one is configured.
    """
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return True
    own = f"{request.scheme}://{request.host}"
    return origin == own or origin in request.app[SETTINGS].cors_origins


_TOKEN_IN_QUERY = re.compile(r"(?<=[?&]token=)[^&\s]*")


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line, with ``?token=…`` values replaced by ``***``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = _TOKEN_IN_QUERY.sub("***", request.path_qs)
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %s %.3fs',
            request.remote,
            request.method,
            path,
            request.version.major,
            request.version.minor,
            response.status,
            response.body_length,
            time,
        )


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context for ``--tls-cert``/``--tls-key``, or None for plain HTTP."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context
