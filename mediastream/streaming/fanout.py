"""Encoded fan-out for shared streams: each picture is VP8-encoded once, for every viewer.

aiortc encodes per sender, so N viewers of a stream would cost N encodes of every picture;
its `MediaRelay` shares decoded frames only. Here one `EncodedFanout` per shared stream
follows the presenter's frame slot, encodes each new picture once (libvpx through PyAV, set up
as aiortc's own VP8 encoder is, in a worker thread) and hands the compressed picture to every
viewer's `SharedTrack`. A track returns it to aiortc as an `av.Packet`, which aiortc only
packetizes (`Vp8Encoder.pack`): a viewer costs RTP and SRTP work, no encode.

What this costs in return, and how it is handled:

* **One codec.** Viewers must receive VP8 (mandatory in every WebRTC browser); their answer
  offers nothing else (`VIEWER_CODEC`).
* **Inter frames depend on earlier ones**, so a viewer must get every compressed picture from a
  keyframe on. A new viewer waits for the next keyframe, which its arrival requests; a viewer
  that falls `QUEUE_PICTURES` behind is reset to the next keyframe, which it may request at most
  every `RESET_KEYFRAME_SECONDS` (keyframes are several times larger than other pictures: a
  slow viewer must not slow everyone with a stream of them). As receivers' keyframe
  requests (PLI) do not reach a pre-encoded stream, a keyframe also goes out every
  `KEYFRAME_INTERVAL` seconds, so a viewer that lost packets recovers within that time.
* **One bitrate** for all viewers: the configured top (``--video-kbps``); receivers' bandwidth
  estimates cannot lower it per viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fractions
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor

import av
from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, MediaStreamError
from aiortc.mediastreams import MediaStreamTrack as _MediaStreamTrack

from mediastream.streaming.track import FrameSlot, Picture

__all__ = ["KEYFRAME_INTERVAL", "VIEWER_CODEC", "EncodedFanout", "SharedTrack"]

VIEWER_CODEC = "video/VP8"
KEYFRAME_INTERVAL = 2.0  # seconds
QUEUE_PICTURES = 8  # a viewer this far behind starts again at the next keyframe
RESET_KEYFRAME_SECONDS = 0.5
_CLOCK = fractions.Fraction(1, VIDEO_CLOCK_RATE)


@dataclasses.dataclass(frozen=True, eq=False)
class EncodedPicture:
    data: bytes
    keyframe: bool
    picture: Picture


class PictureQueue:
    """One viewer's compressed pictures, in order, from a keyframe on."""

    def __init__(self, on_reset: Callable[[], None]) -> None:
        self._items: deque[EncodedPicture] = deque()
        self._ready = asyncio.Event()
        self._on_reset = on_reset
        self._waiting_for_keyframe = True
        self._closed = False

    def push(self, item: EncodedPicture) -> None:
        if self._waiting_for_keyframe and not item.keyframe:
            return
        if len(self._items) >= QUEUE_PICTURES:  # too far behind: restart at a keyframe
            self._items.clear()
            self._waiting_for_keyframe = True
            self._on_reset()
            if not item.keyframe:
                return
        self._waiting_for_keyframe = False
        self._items.append(item)
        self._ready.set()

    async def get(self) -> EncodedPicture:
        while not self._items:
            if self._closed:
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def close(self) -> None:
        self._closed = True
        self._ready.set()


class EncodedFanout:
    """Encodes the pictures put in `source` once and hands them to every subscriber."""

    def __init__(self, source: FrameSlot, executor: Executor, *, bitrate: int) -> None:
        self._source = source
        self._executor = executor
        self._bitrate = bitrate
        self._input = FrameSlot()
        self._subscribers: set[PictureQueue] = set()
        self._codec: av.VideoCodecContext | None = None
        self._force_keyframe = True
        self._last_keyframe = 0.0
        self._epoch = time.monotonic()
        self._last_pts = -1
        source.follow(self._input)
        self._task = asyncio.create_task(self._run(), name="fanout")

    def subscribe(self) -> PictureQueue:
        queue = PictureQueue(self._reset_requested)
        self._subscribers.add(queue)
        self.request_keyframe()
        return queue

    def _reset_requested(self) -> None:
        """A viewer fell behind: a keyframe soon, but not more often than every so often."""
        if time.monotonic() - self._last_keyframe >= RESET_KEYFRAME_SECONDS:
            self.request_keyframe()

    def unsubscribe(self, queue: PictureQueue) -> None:
        self._subscribers.discard(queue)
        queue.close()

    def request_keyframe(self) -> None:
        self._force_keyframe = True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(MediaStreamError):
            while True:
                picture = await self._input.take()
                if not self._subscribers:
                    continue
                force, self._force_keyframe = self._force_keyframe, False
                encoded = await loop.run_in_executor(self._executor, self._encode, picture, force)
                for queue in list(self._subscribers):
                    queue.push(encoded)

    def _encode(self, picture: Picture, force_keyframe: bool) -> EncodedPicture:
        """One picture through libvpx (in a worker thread; one at a time, in order)."""
        rendered = picture.frame
        frame = av.VideoFrame.from_ndarray(rendered.i420, format="yuv420p")
        now = time.monotonic()
        if self._codec is None or (self._codec.width, self._codec.height) != (
            frame.width,
            frame.height,
        ):
            self._codec = _vp8_codec(frame.width, frame.height, self._bitrate)
            force_keyframe = True
        if force_keyframe or now - self._last_keyframe >= KEYFRAME_INTERVAL:
            frame.pict_type = av.video.frame.PictureType.I
        pts = max(round((now - self._epoch) * VIDEO_CLOCK_RATE), self._last_pts + 1)
        self._last_pts = frame.pts = pts
        frame.time_base = _CLOCK
        packets = self._codec.encode(frame)
        keyframe = any(p.is_keyframe for p in packets)
        if keyframe:
            self._last_keyframe = now
        return EncodedPicture(b"".join(bytes(p) for p in packets), keyframe, picture)

    async def close(self) -> None:
        self._source.unfollow(self._input)
        self._input.close()
        for queue in self._subscribers:
            queue.close()
        self._subscribers.clear()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _vp8_codec(width: int, height: int, bitrate: int) -> av.VideoCodecContext:
    """libvpx set up as aiortc's `Vp8Encoder` sets it up (real time, CBR at `bitrate`)."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.time_base = _CLOCK
    codec.gop_size = 3000  # keyframes only when asked (or every KEYFRAME_INTERVAL)
    codec.qmin, codec.qmax = 2, 56
    codec.options = {
        "bufsize": str(bitrate),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    codec.thread_count = 1  # the shared encoder runs beside the render workers
    return codec


class SharedTrack(_MediaStreamTrack):
    """A viewer's video track: the shared stream's compressed pictures, stamped for this viewer."""

    kind = "video"

    def __init__(self, queue: PictureQueue, *, on_sent: Callable[[Picture, int], None]) -> None:
        super().__init__()
        self.queue = queue
        self._on_sent = on_sent
        self._epoch: float | None = None
        self._last_pts = -1

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self.queue.get()
        now = asyncio.get_running_loop().time()
        if self._epoch is None:
            self._epoch = now
        pts = max(round((now - self._epoch) * VIDEO_CLOCK_RATE), self._last_pts + 1)
        self._last_pts = pts
        packet = av.Packet(item.data)
        packet.pts = pts
        packet.time_base = VIDEO_TIME_BASE
        self._on_sent(item.picture, pts)
        return packet

    def stop(self) -> None:
        self.queue.close()
        super().stop()
