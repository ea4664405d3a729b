"""Viewers that log what they receive, and pairing decoded frames with frame messages.

A viewer logs every decoded video frame (receiver pts, when it was decoded) and every message
(with ``_received_at``), both on `time.perf_counter()`; a latency pairs the two by pts, as
docs/protocol.md describes. Both viewers release a frame on its RTP marker bit, as browsers do
(`mediastream.client.MarkerJitterBuffer`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
import cv2
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame
from numpy.typing import NDArray

from bench.streamkit.server import ROOT, Message, Server
from mediastream.client import MarkerJitterBuffer, ReceivedFrame, StreamClient
from mediastream.streaming.ice import rtc_configuration

PTS_TOLERANCE = 2  # ticks of the 90 kHz clock (docs/protocol.md)
STREAM_SCRIPT = ROOT / "bench" / "stream.py"  # runs the child processes too (hidden flags)


@dataclasses.dataclass(frozen=True)
class Decoded:
    pts: int
    at: float
    gray: NDArray[np.uint8] | None = None


@dataclasses.dataclass(frozen=True)
class Match:
    """A frame message and the decoded frame it describes."""

    message: Message
    decoded: Decoded


def rtp_offset(decoded: Sequence[int], sent: Sequence[int]) -> int:
    """The server pts of the receiver's pts 0 (nonzero when the first frames were not received).

    Tries the offsets that pair one of the first decoded frames with one of the first frame
    messages and keeps the one that pairs the most frames; pts follow the wall clock, so frame
    intervals are irregular at the scale of the tolerance and one offset clearly wins.
    """
    if not decoded or not sent:
        return 0
    ordered = sorted(sent)

    def score(offset: int) -> int:
        hits = 0
        for pts in decoded:
            i = bisect.bisect_left(ordered, pts + offset - PTS_TOLERANCE)
            hits += i < len(ordered) and ordered[i] <= pts + offset + PTS_TOLERANCE
        return hits

    candidates = {m - d for d in decoded[:5] for m in sent[:40] if m >= d}
    best = max(candidates | {0}, key=lambda o: (score(o), o == 0))
    return 0 if score(0) >= 0.8 * score(best) else best


class FrameLog:
    """Decoded frames and frame messages of one stream, and pairing them by pts."""

    def __init__(self, messages: list[Message], keep_images: bool = False) -> None:
        self.messages = messages  # every message, in arrival order (shared with the viewer)
        self.keep_images = keep_images
        self.decoded: list[Decoded] = []
        self._pts: list[int] = []  # of `decoded`; increasing (the decoder keeps the order)
        self._offset: int | None = None

    def add(self, pts: int, at: float, bgr: NDArray[np.uint8] | None) -> None:
        gray = None
        if self.keep_images and bgr is not None:
            gray = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), np.uint8)
        self.decoded.append(Decoded(pts, at, gray))
        self._pts.append(pts)

    def frames(self, start: int = 0) -> list[Message]:
        return [m for m in self.messages[start:] if m.get("type") == "frame"]

    def offset(self) -> int:
        if self._offset is not None:
            return self._offset
        sent = [int(m["pts"]) for m in self.frames()]
        offset = rtp_offset([d.pts for d in self.decoded[:30]], sent[:60])
        if len(self.decoded) >= 10 and len(sent) >= 10:
            self._offset = offset  # settled
        return offset

    def decoded_for(self, message: Message) -> Decoded | None:
        target = int(message["pts"]) - self.offset()
        i = bisect.bisect_left(self._pts, target - PTS_TOLERANCE)
        if i < len(self._pts) and self._pts[i] <= target + PTS_TOLERANCE:
            return self.decoded[i]
        return None

    async def first_match(
        self, predicate: Callable[[Message], bool], start: int = 0, timeout: float = 5.0
    ) -> Match | None:
        """The earliest decoded frame whose frame message (from `start`) satisfies `predicate`.

        Either may arrive first; polled every few ms (the times compared were stamped on
        arrival, so polling does not change them). None on timeout.
        """
        deadline = time.perf_counter() + timeout
        while True:
            pairs = []
            for message in self.frames(start):
                if predicate(message) and (frame := self.decoded_for(message)) is not None:
                    pairs.append(Match(message, frame))
            if pairs:
                return min(pairs, key=lambda p: p.decoded.at)
            if time.perf_counter() > deadline:
                return None
            await asyncio.sleep(0.003)

    async def wait_decoded(self, count: int = 1, timeout: float = 10.0) -> Decoded:
        """The `count`-th decoded frame of the stream, waiting for it."""
        async with asyncio.timeout(timeout):
            while len(self.decoded) < count:
                await asyncio.sleep(0.002)
        return self.decoded[count - 1]


class Viewer(StreamClient):
    """A `StreamClient` that logs every decoded frame and stamps when it sent each message."""

    def __init__(
        self,
        base_url: str,
        *,
        keep_images: bool = False,
        timeout: float = 10.0,
        pictures: bool = True,
    ):
        super().__init__(base_url, timeout=timeout, pictures=pictures)
        self.log = FrameLog(self.messages, keep_images)
        self.sent_at: dict[str, float] = {}
        self._drain: asyncio.Task[None] | None = None

    async def connect(self) -> Message:
        # Drain the bounded `frames` queue continuously, so no frame is dropped unseen.
        self._drain = asyncio.create_task(self._drain_frames())
        return await super().connect()

    async def _drain_frames(self) -> None:
        while True:
            frame: ReceivedFrame = await self.frames.get()
            self.log.add(frame.pts, frame.received_at, frame.image)

    async def send(self, message: Message) -> None:
        self.sent_at[message["type"]] = time.perf_counter()
        await super().send(message)

    async def close(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
        await super().close()


def streaming(client: Viewer) -> bool:
    """Whether the client's last stream is still on (answered, and no ``stopped`` since)."""
    kinds = [m["type"] for m in client.messages if m["type"] in ("answer", "stopped")]
    return bool(kinds) and kinds[-1] == "answer"


@contextlib.asynccontextmanager
async def viewer(url: str, **kwargs: Any) -> AsyncIterator[Viewer]:
    """A connected `Viewer`; on exit it stops its stream politely, then closes."""
    client = Viewer(url, **kwargs)
    try:
        async with asyncio.timeout(client.timeout):
            await client.connect()
        yield client
    finally:
        if streaming(client):
            with contextlib.suppress(Exception):
                await client.stop()
        await client.close()


class LegacyViewer:
    """The older service's client: a peer connection offered by ``POST /watershed|/snakes``.

    It opens a ``control`` data channel as well, only to learn what each frame shows (frame
    messages go there; those sent before it opens are lost — REST streams have no socket).
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.messages: list[Message] = []
        self.log = FrameLog(self.messages)
        self.pc = RTCPeerConnection(rtc_configuration())
        self.answered_at = 0.0
        self._reader: asyncio.Task[None] | None = None

    async def start(self, algorithm: str, query: dict[str, Any]) -> float:
        """Offer and set the answer; returns when the offer was posted (perf_counter)."""
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        vars(transceiver.receiver)["_RTCRtpReceiver__jitter_buffer"] = MarkerJitterBuffer(
            capacity=512, is_video=True
        )
        control = self.pc.createDataChannel("control")
        control.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        posted = time.perf_counter()
        offer = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        query = {k: str(v) for k, v in query.items()}
        answer = await self.server.post(f"/{algorithm}", params=query, json=offer)
        self.answered_at = time.perf_counter()
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return posted

    def _on_message(self, data: str | bytes) -> None:
        if isinstance(data, str):
            message = json.loads(data)
            message["_received_at"] = time.perf_counter()
            self.messages.append(message)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._reader = asyncio.create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, VideoFrame) and frame.pts is not None
                # Converted like StreamClient does, so both are stamped at the same point.
                image = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
                self.log.add(frame.pts, time.perf_counter(), image)

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


# -- a WebSocket round-trip probe, run in its own process -------------------------------------


async def ping_probe(url: str, seconds: float, interval: float) -> list[float]:
    """Ping the server's WebSocket every `interval` s for `seconds`; the round trips in s.

    Prints ``ready`` once connected, so the caller can align its measurement window.
    """
    rtts: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws") as ws:
        await ws.receive_json()  # hello
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        n = 0
        while loop.time() < end:
            n += 1
            sent = time.perf_counter()
            await ws.send_json({"type": "ping", "id": n})
            while True:
                reply = await ws.receive_json(timeout=10)
                if reply.get("type") == "pong" and reply.get("id") == n:
                    break
            rtts.append(time.perf_counter() - sent)
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - sent)))
    return rtts


class ProbeProcess:
    """`ping_probe` in a child process (this process is busy decoding video)."""

    def __init__(self, url: str, seconds: float, interval: float = 0.05) -> None:
        self.command = [sys.executable, str(STREAM_SCRIPT), "--ping-probe", url]
        self.command += ["--probe-seconds", str(seconds), "--probe-interval", str(interval)]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the child; returns once its socket is connected and pinging begins."""
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        async with asyncio.timeout(30):
            line = await self.process.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"ping probe failed to start: {line!r}")

    async def result(self) -> list[float]:
        assert self.process is not None and self.process.stdout is not None
        out = await self.process.stdout.read()
        await self.process.wait()
        return [float(x) for x in json.loads(out)]
