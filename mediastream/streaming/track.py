"""The outgoing video track: shows whatever picture the session's player put in its slot.

The track does no rendering of its own. Its `recv()` waits until the frame cap allows the next
frame, takes the newest picture from the slot, stamps it with a presentation time on the 90 kHz
RTP clock and reports it as sent — that is all. Pacing is the server's, not aiortc's fixed 30 fps
clock: when nothing new is put, nothing is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from aiortc.mediastreams import (
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
    MediaStreamError,
    VideoStreamTrack,
)
from av import VideoFrame

from mediastream.streaming.render import RenderedFrame

__all__ = ["FrameSlot", "Picture", "SliceTrack"]


@dataclasses.dataclass(frozen=True)
class Picture:
    """A rendered frame and the last update (`seq`) it reflects."""

    frame: RenderedFrame
    seq: int | None


class FrameSlot:
    """A one-picture mailbox: a newer picture replaces one that was not sent yet.

    Other slots may follow this one (viewers of a shared stream): every picture put here is
    put there too, and a new follower gets the latest picture at once. Only this slot's own
    taker paces the producer (`wait_taken`); a follower that is slower just skips pictures.
    """

    def __init__(self) -> None:
        self._picture: Picture | None = None
        self._latest: Picture | None = None
        self._ready = asyncio.Event()
        self._taken = asyncio.Event()
        self._closed = False
        self._followers: set[FrameSlot] = set()

    def put(self, picture: Picture) -> None:
        self._picture = self._latest = picture
        self._taken.clear()
        self._ready.set()
        for follower in self._followers:
            follower.put(picture)

    def follow(self, follower: FrameSlot) -> None:
        """Put every picture in `follower` too, starting with the latest one."""
        self._followers.add(follower)
        if self._latest is not None:
            follower.put(self._latest)

    def unfollow(self, follower: FrameSlot) -> None:
        self._followers.discard(follower)

    async def take(self) -> Picture:
        """Wait for the next picture; raises `MediaStreamError` once the slot is closed."""
        while True:
            if self._closed:
                raise MediaStreamError
            if self._picture is not None:
                picture, self._picture = self._picture, None
                self._ready.clear()
                self._taken.set()
                return picture
            await self._ready.wait()

    async def wait_taken(self) -> None:
        """Wait until the picture put last has been taken (or the slot closed)."""
        if self._picture is not None and not self._closed:
            await self._taken.wait()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._followers.clear()
        self._ready.set()
        self._taken.set()


class SliceTrack(VideoStreamTrack):
    """A video track fed picture by picture, at most `max_fps` pictures per second."""

    def __init__(self, *, max_fps: float, on_sent: Callable[[Picture, int], None]) -> None:
        super().__init__()
        if not max_fps > 0:
            raise ValueError(f"max_fps must be positive, got {max_fps}")
        self.slot = FrameSlot()
        self._interval = 1.0 / max_fps
        self._on_sent = on_sent
        self._epoch: float | None = None  # loop time of the first frame: pts 0
        self._next_allowed = 0.0
        self._last_pts = -1

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        delay = self._next_allowed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        picture = await self.slot.take()
        pts = self._stamp(loop.time())
        frame = VideoFrame.from_ndarray(picture.frame.i420, format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self._on_sent(picture, pts)
        return frame

    def _stamp(self, now: float) -> int:
        """Presentation time of a frame sent now; advances the frame-cap timeline without drift."""
        if self._epoch is None:
            self._epoch = now
        # Keep to the cap's timeline when on time (timer overshoot does not accumulate into a
        # lower frame rate); after an idle gap, start a new timeline instead of bursting.
        late = now - self._next_allowed
        base = self._next_allowed if 0 <= late < self._interval else now
        self._next_allowed = base + self._interval
        pts = max(round((now - self._epoch) * VIDEO_CLOCK_RATE), self._last_pts + 1)
        self._last_pts = pts
        return pts

    def stop(self) -> None:
        self.slot.close()
        super().stop()  # idempotent: emits "ended" once
