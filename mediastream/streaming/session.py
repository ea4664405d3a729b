"""One streaming session per viewer: the peer connection, its track, control channel and player.

Sessions are opened in one place, `StreamingContext.open_session`: a session joins the app's set
(and takes a stream slot) only once its offer is answered, and is closed on any failure before
that. The session is the only owner of its resources. It closes itself when the connection fails
or closes; its owner (a WebSocket connection or the REST adapter) closes it on stop, on a
replacing offer or when the socket goes away; the application closes every session on shutdown.
`close` is idempotent and releases everything: player task, track, peer connection, membership
in the app's set of sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from mediastream.dicom.backend import ImageStore
from mediastream.streaming.messages import (
    ProtocolError,
    error_message,
    frame_message,
    message_seq,
    parse_message,
    state_message,
)
from mediastream.streaming.player import Player
from mediastream.streaming.render import Renderer
from mediastream.streaming.state import InvalidUpdate, StreamState, apply_update
from mediastream.streaming.throttle import TokenBucket, merge_updates
from mediastream.streaming.track import Picture, SliceTrack

__all__ = ["CONTROL_LABEL", "Session", "StreamingContext"]

log = logging.getLogger(__name__)

CONTROL_LABEL = "control"
PC_CLOSE_TIMEOUT = 5.0
Send = Callable[[dict[str, Any]], None]


@dataclasses.dataclass
class StreamingContext:
    """What every session shares; one per application."""

    library: ImageStore
    renderer: Renderer
    executor: Executor
    rtc_configuration: RTCConfiguration
    max_fps: float
    max_sessions: int
    max_message_bytes: int = 256 * 1024
    max_updates_per_second: int = 60
    sessions: set[Session] = dataclasses.field(default_factory=set)
    # Offers being answered: each holds a slot until it succeeds or fails.
    _opening: int = dataclasses.field(default=0, init=False)

    def has_room(self, replacing: Session | None = None) -> bool:
        current = len(self.sessions - {replacing} if replacing else self.sessions)
        return current + self._opening < self.max_sessions

    async def open_session(
        self,
        state: StreamState,
        offer: RTCSessionDescription,
        *,
        replacing: Session | None = None,
        signal: Send | None = None,
        origin: str = "ws",
        on_close: Callable[[Session, str], None] | None = None,
    ) -> tuple[Session, RTCSessionDescription]:
        """Answer `offer` with a new session streaming `state`; the only way sessions start.

        The session counts against ``max_sessions`` from the start, but joins `sessions` only
        once the answer exists; whatever fails before that — a refused offer, an error aiortc
        raises, a cancelled request — closes it, so a failed offer never keeps a slot.

        Raises
        ------
        ProtocolError
            ``too_many_sessions``, or ``invalid_offer`` for any offer that cannot be answered.
        """
        if not self.has_room(replacing):
            raise ProtocolError(
                "too_many_sessions",
                f"The server is streaming to {self.max_sessions} viewers already; "
                "try again when one has stopped.",
            )
        self._opening += 1
        session: Session | None = None
        try:
            session = Session(self, state, signal=signal, origin=origin, on_close=on_close)
            answer = await session.accept(offer)
        except BaseException as exc:
            if session is not None:
                await session.close("offer refused")  # never answered: not news to the client
            if isinstance(exc, ProtocolError) or not isinstance(exc, Exception):
                raise
            log.info("offer refused: %s: %s", type(exc).__name__, exc)
            raise ProtocolError(
                "invalid_offer", f"The offer could not be answered: {_reason(exc)}."
            ) from None
        finally:
            self._opening -= 1
        self.sessions.add(session)
        return session, answer

    async def series_deleted(self, series_uid: str | None) -> None:
        """Stop the streams showing a deleted series (`None`: every series was deleted)."""
        if series_uid is None:
            self.renderer.cache.clear()
        else:
            self.renderer.cache.discard_series(series_uid)
        doomed = [s for s in self.sessions if series_uid in (None, s.state.series)]
        await asyncio.gather(*(s.close("the series was deleted") for s in doomed))


class Session:
    """A peer connection streaming one series to one viewer."""

    def __init__(
        self,
        ctx: StreamingContext,
        state: StreamState,
        *,
        signal: Send | None = None,
        origin: str = "ws",
        on_close: Callable[[Session, str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.origin = origin
        self.close_reason: str | None = None
        self._signal = signal
        self._on_close = on_close
        self._closing = False
        self._closed = asyncio.Event()
        self._candidates_ended = False
        self._bucket = TokenBucket(ctx.max_updates_per_second)
        self._pending: tuple[dict[str, Any], int | None, Send] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.control: RTCDataChannel | None = None
        self.pc = RTCPeerConnection(ctx.rtc_configuration)
        self.track = SliceTrack(max_fps=ctx.max_fps, on_sent=self._on_sent)
        self.player = Player(
            renderer=ctx.renderer,
            executor=ctx.executor,
            slot=self.track.slot,
            state=state,
            on_error=self._on_render_error,
        )
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self.pc.on("track", self._on_remote_track)

    @property
    def state(self) -> StreamState:
        return self.player.state

    @property
    def closed(self) -> bool:
        return self._closing

    # -- negotiation -----------------------------------------------------------------------

    async def accept(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer the client's offer; the answer carries all of the server's candidates."""
        if offer.type != "offer":
            raise ProtocolError(
                "invalid_offer", f'Expected an SDP of type "offer", got {offer.type!r}.'
            )
        try:
            await self.pc.setRemoteDescription(offer)
        except (ValueError, AssertionError, IndexError, KeyError) as exc:
            raise ProtocolError(
                "invalid_offer", f"The offer SDP could not be used: {exc}."
            ) from None
        video = [t for t in self.pc.getTransceivers() if t.kind == "video"]
        if not video:
            raise ProtocolError(
                "invalid_offer",
                "The offer has no video section: add a video transceiver to receive the stream.",
            )
        transceiver = video[0]
        transceiver.sender.replaceTrack(self.track)
        # Media the client offers to send (the older app sends a blank canvas) is refused.
        transceiver.direction = "sendonly"
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        self.player.start()
        description = self.pc.localDescription
        assert description is not None
        return description

    async def add_candidate(self, candidate: RTCIceCandidate | None) -> None:
        """Add a trickled client candidate; `None` marks the end of candidates."""
        if self._candidates_ended:
            if candidate is None:
                return  # a repeated end-of-candidates changes nothing
            raise ProtocolError(
                "invalid_candidate", "This client already sent its end-of-candidates marker."
            )
        self._candidates_ended = candidate is None
        try:
            await self.pc.addIceCandidate(candidate)
        except (ValueError, AssertionError, TypeError) as exc:  # what aiortc/aioice raise
            raise ProtocolError("invalid_candidate", f"The candidate was refused: {exc}.") from None

    # -- control ---------------------------------------------------------------------------

    def update(self, message: Mapping[str, Any], reply: Send) -> None:
        """Apply an ``update`` message and `reply` with ``state`` or ``error``.

        Past the session's update rate, a valid update is merged into one pending update
        (latest wins) and applied, and replied to, as soon as the rate allows.
        """
        try:
            seq = message_seq(message)
        except ProtocolError as exc:
            reply(error_message(exc.code, exc.detail))
            return
        self.player.follow_series()  # validate against the series as it is now
        changes = {k: v for k, v in message.items() if k not in ("type", "seq")}
        if self._pending is not None or not self._bucket.take():
            merged = merge_updates(self._pending[0] if self._pending else {}, changes)
            try:  # refuse an invalid update now rather than after the wait
                apply_update(self.player.state, merged, self.ctx.library)
            except InvalidUpdate as exc:
                reply(error_message(exc.code, exc.detail, seq))
                return
            if self._pending is None:
                loop = asyncio.get_running_loop()
                loop.call_later(self._bucket.wait_time(), self._apply_pending)
            self._pending = (merged, seq, reply)
            return
        self._apply(changes, seq, reply)

    def _apply(self, changes: Mapping[str, Any], seq: int | None, reply: Send) -> None:
        try:
            state = apply_update(self.player.state, changes, self.ctx.library)
        except InvalidUpdate as exc:
            reply(error_message(exc.code, exc.detail, seq))
            return
        self.player.show(state, seq)
        reply(state_message(state.to_json(), seq))

    def _apply_pending(self) -> None:
        if self._pending is None or self._closing:
            return
        if not self._bucket.take():
            asyncio.get_running_loop().call_later(self._bucket.wait_time(), self._apply_pending)
            return
        (changes, seq, reply), self._pending = self._pending, None
        self._apply(changes, seq, reply)

    def handle_control(self, data: str | bytes, reply: Send) -> None:
        """One message on the data channel."""
        if len(data) > self.ctx.max_message_bytes:
            reply(error_message("message_too_large", _too_large(len(data), self.ctx)))
            return
        try:
            message = parse_message(data, frozenset({"update"}))
        except ProtocolError as exc:
            reply(error_message(exc.code, exc.detail))
            return
        self.update(message, reply)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != CONTROL_LABEL:
            return
        self.control = channel

        def reply(message: dict[str, Any]) -> None:
            if channel.readyState == "open":
                channel.send(json.dumps(message))

        @channel.on("message")
        def on_message(data: str | bytes) -> None:
            try:
                self.handle_control(data, reply)
            except Exception:  # raised into aiortc, it would end the whole DTLS transport
                log.exception("control message failed")
                reply(error_message("internal_error", "The server failed to handle that message."))

    def _send(self, message: dict[str, Any]) -> None:
        """To the client: on the control channel when open, else over the signalling socket."""
        if self.control is not None and self.control.readyState == "open":
            self.control.send(json.dumps(message))
        elif self._signal is not None:
            self._signal(message)

    def _on_sent(self, picture: Picture, pts: int) -> None:
        self._send(frame_message(picture.frame, picture.seq, pts))

    def _on_render_error(self, code: str, detail: str, seq: int | None) -> None:
        self._send(error_message(code, detail, seq))

    # -- lifecycle -------------------------------------------------------------------------

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state in ("failed", "closed") and not self._closing:
            self._spawn(self.close(f"connection {state}"))

    def _on_remote_track(self, track: MediaStreamTrack) -> None:
        # Consume anything the client sends anyway, so nothing queues up in memory.
        self._spawn(_drain(track))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, reason: str) -> None:
        """Release everything this session holds; idempotent.

        A second caller waits for the first to finish, so shutdown never leaves a session
        half-closed (aiortc may already be closing the connection itself when the peer left).
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self.close_reason = reason
        try:
            await self.player.stop()
            self.track.stop()
            try:
                await asyncio.wait_for(self.pc.close(), PC_CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning("peer connection did not close within %s s", PC_CLOSE_TIMEOUT)
            current = asyncio.current_task()
            for task in list(self._tasks):
                if task is not current:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            self.ctx.sessions.discard(self)
            self._closed.set()
        if self._on_close is not None:
            self._on_close(self, reason)
        log.info("session closed: %s", reason)


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()).rstrip(".")
    return text or type(exc).__name__


def _too_large(size: int, ctx: StreamingContext) -> str:
    return f"The message has {size} bytes; this server accepts at most {ctx.max_message_bytes}."


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
