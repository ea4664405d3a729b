"""The outgoing track and its one-picture slot, without a peer connection."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from mediastream.streaming.render import RenderedFrame, ResultCache
from mediastream.streaming.track import FrameSlot, Picture, SliceTrack


def picture(index: int, seq: int | None = None, size: int = 16) -> Picture:
    i420 = np.full((size * 3 // 2, size), index, dtype=np.uint8)
    frame = RenderedFrame(i420, index, 10, "none", "final", {}, {"total": 0.0})
    return Picture(frame, seq)


async def test_slot_keeps_only_the_newest_picture() -> None:
    slot = FrameSlot()
    slot.put(picture(1))
    slot.put(picture(2))
    assert (await slot.take()).frame.index == 2
    taker = asyncio.ensure_future(slot.take())
    await asyncio.sleep(0)
    assert not taker.done()  # nothing new: it waits
    slot.put(picture(3))
    assert (await asyncio.wait_for(taker, 5)).frame.index == 3


async def test_track_stamps_increasing_pts_from_zero_and_reports_each_frame() -> None:
    sent: list[tuple[int | None, int]] = []
    track = SliceTrack(max_fps=120, on_sent=lambda p, pts: sent.append((p.seq, pts)))
    pts = []
    for i in range(4):
        track.slot.put(picture(i, seq=i))
        frame = await asyncio.wait_for(track.recv(), 5)
        assert (frame.width, frame.height) == (16, 16)
        assert frame.to_ndarray()[0, 0] == i
        assert frame.pts is not None
        pts.append(frame.pts)
    assert pts[0] == 0 and pts == sorted(set(pts))
    assert sent == list(zip(range(4), pts, strict=True))


async def test_frame_cap_spaces_frames() -> None:
    loop = asyncio.get_running_loop()
    track = SliceTrack(max_fps=20, on_sent=lambda p, pts: None)
    times = []
    for i in range(4):
        track.slot.put(picture(i))
        await asyncio.wait_for(track.recv(), 5)
        times.append(loop.time())
    gaps = np.diff(times)
    assert gaps.min() >= 0.05 - 0.005  # never faster than the cap (timer resolution aside)


async def test_stop_is_idempotent_and_ends_recv() -> None:
    track = SliceTrack(max_fps=30, on_sent=lambda p, pts: None)
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(MediaStreamError):
        await track.recv()
    assert track.readyState == "ended"


def test_result_cache_is_bounded_by_bytes() -> None:
    one = picture(0, size=16).frame  # 384 bytes
    cache = ResultCache(max_bytes=one.nbytes * 3)
    for i in range(5):
        cache.put(("s", i), one)
    assert len(cache) == 3 and cache.nbytes == one.nbytes * 3
    assert cache.get(("s", 0)) is None and cache.get(("s", 4)) is one
    cache.discard_series("s")
    assert len(cache) == 0 and cache.nbytes == 0
