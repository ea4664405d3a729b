"""Encoded fan-out: one encode per picture for any number of viewers, each from a keyframe."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from mediastream.streaming.fanout import (
    QUEUE_PICTURES,
    EncodedFanout,
    EncodedPicture,
    PictureQueue,
)
from mediastream.streaming.render import RenderedFrame
from mediastream.streaming.track import FrameSlot, Picture


def picture(level: int, seq: int) -> Picture:
    image = np.full((96, 64), level, np.uint8)  # I420 of a 64x64 picture
    image[:64, : 8 + level % 50] = 255 - level
    frame = RenderedFrame(image, 0, 1, "none", "final", {}, {})
    return Picture(frame, seq)


def encoded(keyframe: bool, seq: int = 0) -> EncodedPicture:
    return EncodedPicture(b"x", keyframe, picture(0, seq))


async def test_a_queue_starts_at_a_keyframe_and_restarts_there_when_behind() -> None:
    resets: list[int] = []
    queue = PictureQueue(lambda: resets.append(1))
    queue.push(encoded(False, 1))  # before any keyframe: useless to a decoder
    queue.push(encoded(True, 2))
    queue.push(encoded(False, 3))
    assert [(await queue.get()).picture.seq for _ in range(2)] == [2, 3]
    for seq in range(QUEUE_PICTURES):
        queue.push(encoded(False, 10 + seq))
    queue.push(encoded(False, 99))  # one too many: dropped, and a keyframe is asked for
    assert resets == [1]
    queue.push(encoded(False, 100))  # still waiting for the keyframe
    queue.push(encoded(True, 101))
    assert (await queue.get()).picture.seq == 101
    queue.close()
    with pytest.raises(MediaStreamError):
        await queue.get()


async def test_every_picture_is_encoded_once_for_all_subscribers() -> None:
    source = FrameSlot()
    with ThreadPoolExecutor(2) as executor:
        fanout = EncodedFanout(source, executor, bitrate=1_000_000)
        queues = [fanout.subscribe() for _ in range(3)]
        encodes = 0
        real_encode = fanout._encode

        def counting(*args: object) -> EncodedPicture:
            nonlocal encodes
            encodes += 1
            return real_encode(*args)  # type: ignore[arg-type]

        fanout._encode = counting  # type: ignore[method-assign,assignment]
        received: list[list[EncodedPicture]] = [[] for _ in queues]
        for seq in range(5):
            source.put(picture(20 * seq, seq))
            async with asyncio.timeout(10):
                for got, queue in zip(received, queues, strict=True):
                    got.append(await queue.get())
        await fanout.close()
    assert encodes == 5
    for got in received:
        assert [item.picture.seq for item in got] == list(range(5))
        assert got[0].keyframe  # subscribers joined before the first picture: it is a key
        assert all(a is b for a, b in zip(got, received[0], strict=True))  # the same bytes
    decoder = av.CodecContext.create("libvpx", "r")
    frames = [f for item in received[0] for f in decoder.decode(av.Packet(item.data))]
    assert len(frames) == 5 and (frames[0].width, frames[0].height) == (64, 64)
