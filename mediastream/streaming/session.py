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
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from mediastream.dicom.backend import ImageStore
from mediastream.streaming.fanout import (
    VIEWER_CODEC,
    EncodedFanout,
    PictureQueue,
    SharedTrack,
)
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
from mediastream.streaming.sharing import PRESENTER_LEFT, Share, ShareRegistry
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
    max_viewers: int = 32
    video_bitrate: int = 4_000_000  # bit/s of a shared stream's one encoder (--video-kbps)
    sessions: set[Session] = dataclasses.field(default_factory=set)
    shares: ShareRegistry = dataclasses.field(init=False)
    # Offers being answered: each holds a slot until it succeeds or fails.
    _opening: int = dataclasses.field(default=0, init=False)

    def __post_init__(self) -> None:
        self.shares = ShareRegistry(self.max_viewers)

    def has_room(self, replacing: Session | None = None) -> bool:
        """Whether another stream may start. Viewers of a shared stream do not count here
        (they render nothing); each share has its own limit, ``max_viewers``."""
        current = sum(1 for s in self.sessions if s.follows is None and s is not replacing)
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
        share: Share | None = None,
    ) -> tuple[Session, RTCSessionDescription]:
        """Answer `offer` with a new session streaming `state`; the only way sessions start.

        With `share`, the session is a viewer of that share's presenter (`state` is ignored).
        The session counts against ``max_sessions`` (a viewer: against ``max_viewers``) from
        the start, but joins `sessions` only once the answer exists; whatever fails before
        that — a refused offer, an error aiortc raises, a cancelled request — closes it, so a
        failed offer never keeps a slot.

        Raises
        ------
        ProtocolError
            ``too_many_sessions`` / ``too_many_viewers``, ``unknown_view`` for a share that
            ended, or ``invalid_offer`` for any offer that cannot be answered.
        """
        if share is not None:
            self._check_can_view(share)
            if share.fanout is None:
                presenting = share.presenter.track
                assert isinstance(presenting, SliceTrack)  # a presenter renders its own
                share.fanout = EncodedFanout(
                    presenting.slot, self.executor, bitrate=self.video_bitrate
                )
        elif not self.has_room(replacing):
            raise ProtocolError(
                "too_many_sessions",
                f"The server is streaming to {self.max_sessions} viewers already; "
                "try again when one has stopped.",
            )
        self._opening += 1
        session: Session | None = None
        try:
            follows = None if share is None else share.presenter
            session = Session(
                self, state, signal=signal, origin=origin, on_close=on_close, follows=follows
            )
            answer = await session.accept(offer)
            if share is not None:
                self._check_can_view(share)  # the share may have ended meanwhile
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
        if share is not None:
            share.viewers.add(session)
            share.presenter.notify_viewers()
        return session, answer

    def _check_can_view(self, share: Share) -> None:
        if self.shares.get(share.token) is not share or share.presenter.closed:
            raise ProtocolError("unknown_view", "That shared stream has ended.")
        if len(share.viewers) >= self.max_viewers:
            raise ProtocolError(
                "too_many_viewers",
                f"{self.max_viewers} people are watching this stream already, "
                "the most this server allows.",
            )

    async def end_share(self, share: Share, reason: str) -> None:
        """Revoke `share`'s token and stop its viewers' streams with `reason`."""
        self.shares.revoke(share)
        viewers, share.viewers = list(share.viewers), set()
        await asyncio.gather(*(viewer.close(reason) for viewer in viewers))
        if share.fanout is not None:
            await share.fanout.close()
            share.fanout = None

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
        follows: Session | None = None,
    ) -> None:
        self.ctx = ctx
        self.origin = origin
        self.follows = follows  # the presenter, for a viewer of a shared stream
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
        # A viewer has no player of its own: its track shows the presenter's pictures, already
        # compressed by the share's fan-out.
        self.track: SliceTrack | SharedTrack
        self._pictures: PictureQueue | None = None
        self.player: Player | None = None
        share = None if follows is None else ctx.shares.of(follows)
        if share is not None and share.fanout is not None:
            self._pictures = share.fanout.subscribe()
            self.track = SharedTrack(self._pictures, on_sent=self._on_sent)
        else:
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
        if self.follows is not None:
            return self.follows.state
        assert self.player is not None
        return self.player.state

    @property
    def viewers(self) -> set[Session]:
        share = self.ctx.shares.of(self)
        return set() if share is None else share.viewers

    def notify_viewers(self) -> None:
        """Tell the presenter how many are watching (after a viewer joins or leaves)."""
        self._send({"type": "viewers", "count": len(self.viewers)})

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
        if isinstance(self.track, SharedTrack):  # pre-encoded VP8 (and its retransmissions)
            codecs = RTCRtpSender.getCapabilities("video").codecs
            wanted = [c for c in codecs if c.mimeType in (VIEWER_CODEC, "video/rtx")]
            transceiver.setCodecPreferences(wanted)
        transceiver.sender.replaceTrack(self.track)
        # Media the client offers to send (the older app sends a blank canvas) is refused.
        transceiver.direction = "sendonly"
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        if self.player is not None:
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
        if self.player is None:
            reply(
                error_message(
                    "read_only",
                    "This is a shared stream: only its presenter can change it.",
                    seq,
                )
            )
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
        assert self.player is not None
        try:
            state = apply_update(self.player.state, changes, self.ctx.library)
        except InvalidUpdate as exc:
            reply(error_message(exc.code, exc.detail, seq))
            return
        self.player.show(state, seq)
        message = state_message(state.to_json(), seq)
        reply(message)
        for viewer in self.viewers:  # viewers see the presenter's controls move
            viewer._send(message)

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
            share = self.ctx.shares.of(self)
            if share is not None:
                await self.ctx.end_share(share, PRESENTER_LEFT)
            if self.follows is not None:
                self._leave_share()
            if self.player is not None:
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

    def _leave_share(self) -> None:
        assert self.follows is not None
        share = self.ctx.shares.of(self.follows)
        if share is not None and share.fanout is not None and self._pictures is not None:
            share.fanout.unsubscribe(self._pictures)
        if share is not None and self in share.viewers:
            share.viewers.discard(self)
            self.follows.notify_viewers()


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()).rstrip(".")
    return text or type(exc).__name__


def _too_large(size: int, ctx: StreamingContext) -> str:
    return f"The message has {size} bytes; this server accepts at most {ctx.max_message_bytes}."


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
