"""A Python client for protocol v1: an aiortc peer that watches a stream and steers it.

Used by the tests and benchmarks, and usable from scripts::

    async with StreamClient("http://127.0.0.1:8000") as client:
        await client.start({"algorithm": "watershed"})
        frame = await client.next_frame()
        reply = await client.update(params={"threshold_ratio": 0.3})

Decoded frames are handed on as soon as their last packet (the RTP marker bit) arrives, as
browsers do. aiortc's own receiver waits for the first packet of the *next* frame, which at one
slice per second would add a second to every measurement; `MarkerJitterBuffer` fixes that for this
client's receiver only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import re
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame
from numpy.typing import NDArray

from mediastream.streaming.ice import rtc_configuration

__all__ = ["MarkerJitterBuffer", "ReceivedFrame", "StreamClient", "StreamClientError"]

Message = dict[str, Any]
_NO_PICTURE = np.zeros((0, 0, 3), np.uint8)


class StreamClientError(Exception):
    """The server answered with an error message where a success was expected."""

    def __init__(self, message: Message) -> None:
        super().__init__(f"{message.get('error')}: {message.get('detail')}")
        self.message = message


class MarkerJitterBuffer(JitterBuffer):
    """A video jitter buffer that releases a frame when its marker-bit packet completes it."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        assert self._origin is not None
        packets: list[Any] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None:
                return None  # a gap: wait for the missing packet
            if packets and packet.timestamp != packets[0].timestamp:
                count -= 1  # the previous frame ended without a marker: release it as it is
                break
            packets.append(packet)
            if packet.marker:
                break
        else:
            return None
        frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=packets[0].timestamp)
        self.remove(count + 1)
        return frame


@dataclasses.dataclass(frozen=True)
class ReceivedFrame:
    """A decoded video frame: receiver pts (0 for the first frame) and when it was decoded."""

    pts: int
    image: NDArray[np.uint8]  # BGR, (height, width, 3)
    received_at: float  # time.perf_counter()


class StreamClient:
    """One WebSocket, at most one stream; see docs/protocol.md."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        pictures: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        # False: decoded frames are counted and timed but not converted to BGR images (their
        # `image` is empty), for clients that only measure, many to a machine.
        self.pictures = pictures
        self.hello: Message | None = None
        self.pc: RTCPeerConnection | None = None
        self.control: RTCDataChannel | None = None
        # The newest decoded frames; the oldest are dropped when nobody reads them.
        self.frames: asyncio.Queue[ReceivedFrame] = asyncio.Queue(maxsize=64)
        self.messages: list[Message] = []  # everything received, WebSocket and data channel
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._arrived = asyncio.Condition()
        self._control_open = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = itertools.count(1)

    async def __aenter__(self) -> StreamClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- signalling ------------------------------------------------------------------------

    async def connect(self) -> Message:
        self._http = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._ws = await self._http.ws_connect(self.base_url + "/ws", headers=headers)
        self._tasks.append(asyncio.create_task(self._read_ws()))
        self.hello = await self.wait_for(lambda m: m["type"] == "hello")
        return self.hello

    async def _read_ws(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self._arrive(json.loads(msg.data))

    async def _arrive(self, message: Message) -> None:
        message["_received_at"] = time.perf_counter()
        async with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()

    async def send(self, message: Message) -> None:
        assert self._ws is not None, "connect() first"
        await self._ws.send_json(message)

    async def wait_for(
        self, predicate: Callable[[Message], bool], timeout: float | None = None, start: int = 0
    ) -> Message:
        """The first message (from index `start`) matching `predicate`, waiting if needed."""
        async with asyncio.timeout(timeout or self.timeout), self._arrived:
            while True:
                for message in self.messages[start:]:
                    if predicate(message):
                        return message
                start = len(self.messages)
                await self._arrived.wait()

    # -- streaming -------------------------------------------------------------------------

    async def start(
        self,
        state: Message | None = None,
        *,
        trickle: bool = False,
        control: bool = True,
        direction: str = "recvonly",
    ) -> Message:
        """Offer a stream and wait for the answer.

        With `trickle`, the offer goes out without candidates and they follow as ``candidate``
        messages, then an end-of-candidates message.
        """
        previous = self.pc, self.control  # closed once the new stream is answered
        pc = RTCPeerConnection(rtc_configuration())
        self.pc = pc
        transceiver = pc.addTransceiver("video", direction=direction)
        # aiortc has no option for this; replace the receiver's (name-mangled) jitter buffer.
        vars(transceiver.receiver)["_RTCRtpReceiver__jitter_buffer"] = MarkerJitterBuffer(
            capacity=512, is_video=True
        )
        self._control_open.clear()
        if control:
            self.control = pc.createDataChannel("control")
            self.control.on("message", self._on_control_message)
            self.control.on("open", self._control_open.set)
        pc.on("track", self._on_track)
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        sdp = pc.localDescription.sdp
        candidates = re.findall(r"^a=(candidate:.*?)\r?$", sdp, flags=re.M)
        if trickle:
            sdp = re.sub(r"^a=(candidate:.*|end-of-candidates)\r?\n", "", sdp, flags=re.M)
        mark = len(self.messages)
        message: Message = {"type": "offer", "sdp": sdp}
        if state is not None:
            message["state"] = state
        await self.send(message)
        answer = await self.wait_for(lambda m: m["type"] in ("answer", "error"), start=mark)
        if answer["type"] == "error":
            await pc.close()
            self.pc, self.control = previous
            raise StreamClientError(answer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        if previous[0] is not None:
            await previous[0].close()
        if trickle:
            for line in candidates:
                await self.send(
                    {"type": "candidate", "candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}
                )
            await self.send({"type": "candidate", "candidate": ""})
        return answer

    def _on_control_message(self, data: str | bytes) -> None:
        if isinstance(data, str):
            asyncio.ensure_future(self._arrive(json.loads(data)))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            self._tasks.append(asyncio.create_task(self._read_track(track)))

    async def _read_track(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, VideoFrame) and frame.pts is not None
                image = (
                    frame.to_ndarray(format="bgr24").astype(np.uint8, copy=False)
                    if self.pictures
                    else _NO_PICTURE
                )
                received = ReceivedFrame(frame.pts, image, time.perf_counter())
                if self.frames.full():
                    self.frames.get_nowait()
                self.frames.put_nowait(received)

    async def next_frame(self, timeout: float | None = None) -> ReceivedFrame:
        async with asyncio.timeout(timeout or self.timeout):
            return await self.frames.get()

    async def control_open(self) -> None:
        """Wait until the control data channel is open."""
        if self.control is None:
            raise RuntimeError("this stream was started without a control channel")
        async with asyncio.timeout(self.timeout):
            await self._control_open.wait()

    async def update(self, *, via: str = "channel", **changes: Any) -> Message:
        """Send an ``update`` (with a fresh seq) and return the ``state`` reply.

        Raises `StreamClientError` when the server answers with an error.
        """
        seq = next(self._seq)
        message = {"type": "update", "seq": seq, **changes}
        mark = len(self.messages)
        if via == "channel":
            await self.control_open()
            assert self.control is not None
            self.control.send(json.dumps(message))
        else:
            await self.send(message)
        reply = await self.wait_for(
            lambda m: m["type"] in ("state", "error") and m.get("seq") == seq, start=mark
        )
        if reply["type"] == "error":
            raise StreamClientError(reply)
        return reply

    async def _request(self, message: Message, replies: tuple[str, ...]) -> Message:
        mark = len(self.messages)
        await self.send(message)
        reply = await self.wait_for(
            lambda m: m["type"] in (*replies, "error") and m.get("seq") is None, start=mark
        )
        if reply["type"] == "error":
            raise StreamClientError(reply)
        return reply

    async def share(self) -> Message:
        """Share the running stream; the reply carries its ``view_token`` and ``url``."""
        return await self._request({"type": "share"}, ("shared",))

    async def unshare(self) -> Message:
        return await self._request({"type": "unshare"}, ("unshared",))

    async def join(self, view_token: str) -> Message:
        """Watch a shared stream: `start()` afterwards receives the presenter's stream."""
        return await self._request({"type": "join", "view_token": view_token}, ("joined",))

    async def frame_message(self, predicate: Callable[[Message], bool], start: int = 0) -> Message:
        return await self.wait_for(lambda m: m["type"] == "frame" and predicate(m), start=start)

    async def stop(self) -> Message:
        mark = len(self.messages)
        await self.send({"type": "stop"})
        return await self.wait_for(lambda m: m["type"] == "stopped", start=mark)

    async def _close_peer(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
            self.control = None

    async def close(self) -> None:
        await self._close_peer()
        if self._ws is not None:
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.close()
