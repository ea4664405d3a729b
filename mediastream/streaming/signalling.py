"""WebSocket signalling, ``GET /ws``: protocol v1 (docs/protocol.md).

One `SignallingConnection` per socket. Only the handler task reads from the socket; everything
sent to the client (replies, frame metadata for clients without a data channel, "stopped") goes
through one outbox drained by a writer task, so messages keep their order. A socket owns at most
one session: a new offer replaces it, ``stop`` ends it, closing the socket releases it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, hdrs, web
from aiortc import RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from mediastream.keys import SETTINGS, STREAMING, WEBSOCKETS
from mediastream.streaming.messages import (
    ProtocolError,
    error_message,
    hello_message,
    parse_message,
    state_message,
)
from mediastream.streaming.session import Session, StreamingContext
from mediastream.streaming.sharing import SHARING_ENDED, Share
from mediastream.streaming.state import InvalidUpdate, initial_state
from mediastream.web.errors import ApiError
from mediastream.web.security import origin_allowed, request_token, token_matches

__all__ = ["SignallingConnection", "websocket_handler"]

log = logging.getLogger(__name__)

CLIENT_TYPES = frozenset(
    {"auth", "offer", "candidate", "update", "stop", "ping", "share", "unshare", "join"}
)
HEARTBEAT_SECONDS = 20.0


class SignallingConnection:
    def __init__(
        self,
        ctx: StreamingContext,
        ws: web.WebSocketResponse,
        *,
        token: str | None,
        authenticated: bool = False,
    ) -> None:
        self.ctx = ctx
        self.ws = ws
        self._server_token = token  # every auth message is checked against it
        self.token = None if authenticated else token  # still expected; None once authenticated
        self.session: Session | None = None
        self.view_token: str | None = None  # after a `join`: this socket's offers watch it
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(), name="ws-writer")

    def post(self, message: dict[str, Any]) -> None:
        """Queue a message for the client (safe from any task or callback)."""
        self._outbox.put_nowait(message)

    async def _write(self) -> None:
        while (message := await self._outbox.get()) is not None:
            try:
                if not self.ws.closed:
                    with contextlib.suppress(ConnectionError):
                        await self.ws.send_json(message)
            finally:
                self._outbox.task_done()

    async def handle(self, data: str | bytes) -> None:
        """Act on one client message; every failure becomes an error reply."""
        try:
            if len(data) > self.ctx.max_message_bytes:
                raise ProtocolError(
                    "message_too_large",
                    f"The message has {len(data)} bytes; this server accepts at most "
                    f"{self.ctx.max_message_bytes}.",
                )
            message = parse_message(data, CLIENT_TYPES)
            kind = message["type"]
            if kind == "auth":
                await self._auth(message)
            elif kind == "ping":
                self.post({"type": "pong", "id": message.get("id")})
            elif self.token is not None:
                raise ProtocolError(
                    "unauthorized", 'Authenticate first: {"type": "auth", "token": "…"}.'
                )
            elif kind == "offer":
                await self._offer(message)
            elif kind == "candidate":
                await self._candidate(message)
            elif kind == "update":
                self._require_session().update(message, self.post)
            elif kind == "stop":
                await self._stop()
            elif kind == "share":
                self._share()
            elif kind == "unshare":
                await self._unshare()
            elif kind == "join":
                self._join(message)
        except (ProtocolError, InvalidUpdate) as exc:
            self.post(error_message(exc.code, exc.detail))
        except Exception:  # a bug must not close the socket or leak a traceback
            log.exception("signalling message failed")
            self.post(error_message("internal_error", "The server failed to handle that message."))

    async def _auth(self, message: Mapping[str, Any]) -> None:
        """Check the token, also on a socket that is authenticated already: a wrong token is
        never answered "authenticated"."""
        if self._server_token is None:
            self.post({"type": "authenticated"})
            return
        given = message.get("token")
        if not token_matches(given if isinstance(given, str) else None, self._server_token):
            self.post(error_message("unauthorized", "The token is wrong."))
            await self._outbox.join()  # the reason goes out before the close
            await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"unauthorized")
            return
        self.token = None
        self.post({"type": "authenticated"})

    def _require_session(self) -> Session:
        if self.session is None or self.session.closed:
            raise ProtocolError(
                "no_stream", "There is no stream on this socket: send an offer first."
            )
        return self.session

    async def _offer(self, message: Mapping[str, Any]) -> None:
        sdp = message.get("sdp")
        if not isinstance(sdp, str) or not sdp.strip():
            raise ProtocolError("invalid_offer", 'An offer needs an "sdp" string.')
        requested = message.get("state")
        if requested is not None and not isinstance(requested, Mapping):
            raise ProtocolError("invalid_update", "state must be an object.")
        share = None
        if self.view_token is not None:  # a viewer: the presenter's state, not one of its own
            share = self._joined_share()
            state = share.presenter.state
        else:
            state = initial_state(self.ctx.library, requested)
        session, answer = await self.ctx.open_session(
            state,
            RTCSessionDescription(sdp=sdp, type="offer"),
            replacing=self.session,
            signal=self.post,
            on_close=self._session_closed,
            share=share,
        )
        if self.session is not None:  # only a usable offer replaces the running stream
            await self.session.close("replaced by a new offer")
        self.session = session
        self.post({"type": "answer", "sdp": answer.sdp})
        # The state the stream starts in (defaults adapt to the image), before any frame.
        self.post(state_message(session.state.to_json(), None))

    async def _candidate(self, message: Mapping[str, Any]) -> None:
        session = self._require_session()
        text = message.get("candidate")
        if not text:  # empty or absent: the client has no more candidates
            await session.add_candidate(None)
            return
        mid, index = message.get("sdpMid"), message.get("sdpMLineIndex")
        try:
            if not isinstance(text, str):
                raise ValueError(text)
            candidate = candidate_from_sdp(text.removeprefix("candidate:"))
            candidate.sdpMid = mid if isinstance(mid, str) else None
            candidate.sdpMLineIndex = index if isinstance(index, int) else None
            if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
                candidate.sdpMLineIndex = 0
        except (ValueError, AssertionError, IndexError, TypeError):
            raise ProtocolError(
                "invalid_candidate", f"Not an ICE candidate line: {str(text)[:80]!r}."
            ) from None
        await session.add_candidate(candidate)

    async def _stop(self) -> None:
        session = self._require_session()
        await session.close("stopped by the client")

    # -- sharing (mediastream.streaming.sharing) -------------------------------------------

    def _presenting(self) -> Session:
        session = self._require_session()
        if session.follows is not None:
            raise ProtocolError("read_only", "A viewer cannot share someone else's stream.")
        return session

    def _share(self) -> None:
        share = self.ctx.shares.share(self._presenting())
        self.post(
            {
                "type": "shared",
                "view_token": share.token,
                "url": f"?view={share.token}",
                "viewers": len(share.viewers),
            }
        )

    async def _unshare(self) -> None:
        share = self.ctx.shares.of(self._presenting())
        if share is not None:
            await self.ctx.end_share(share, SHARING_ENDED)
        self.post({"type": "unshared"})

    def _join(self, message: Mapping[str, Any]) -> None:
        share = self.ctx.shares.get(message.get("view_token"))
        if share is None or share.presenter.closed:
            raise ProtocolError(
                "unknown_view",
                "No shared stream has that view token: it is wrong, or its sharing ended.",
            )
        self.view_token = share.token
        self.post({"type": "joined", "state": share.presenter.state.to_json()})

    def _joined_share(self) -> Share:
        share = self.ctx.shares.get(self.view_token)
        if share is None or share.presenter.closed:
            self.view_token = None
            raise ProtocolError("unknown_view", "That shared stream has ended.")
        return share

    def _session_closed(self, session: Session, reason: str) -> None:
        if session is self.session:  # not a refused offer's session: the client knew it
            self.session = None
            self.post({"type": "stopped", "reason": reason})

    async def close(self) -> None:
        """The socket is gone: release the session and the writer."""
        if self.session is not None:
            await self.session.close("socket closed")
        self._outbox.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    """``GET /ws``: check → prepare → register → read messages → unregister and release."""
    settings = request.app[SETTINGS]
    if not origin_allowed(request):
        raise ApiError(
            403,
            "forbidden_origin",
            f"WebSocket connections from {request.headers.get(hdrs.ORIGIN)} are not allowed; "
            "open the page from this server, or start it with --cors-origin for that origin.",
        )
    token = settings.token
    authenticated = token is None
    if token is not None:
        given = request_token(request) or request.query.get("token")
        if given is not None:
            if not token_matches(given, token):
                raise ApiError(401, "unauthorized", "The token is wrong.")
            authenticated = True
    # aiohttp closes the socket (1009) above its limit; below it, an oversized message gets
    # a JSON error and the socket stays open.
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT_SECONDS, max_msg_size=max(4 * settings.max_message_bytes, 1 << 20)
    )
    await ws.prepare(request)
    sockets = request.app[WEBSOCKETS]
    sockets.add(ws)
    connection = SignallingConnection(
        request.app[STREAMING], ws, token=token, authenticated=authenticated
    )
    try:
        connection.post(hello_message())
        async for msg in ws:
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await connection.handle(msg.data)
    finally:
        sockets.discard(ws)
        await connection.close()
    return ws
