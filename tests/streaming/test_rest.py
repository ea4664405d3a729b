"""The older service's REST endpoints keep working for its clients."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from mediastream.streaming.ice import rtc_configuration
from tests.streaming.conftest import streaming


class Receiver:
    """A bare aiortc peer, as the older browser app behaves: no trickle, no data channel."""

    def __init__(self, *, send_canvas: bool = False) -> None:
        self.pc = RTCPeerConnection(rtc_configuration())
        self.frames: asyncio.Queue[Any] = asyncio.Queue()
        if send_canvas:  # the older app offers sendrecv with a blank canvas it never uses
            self.pc.addTrack(VideoStreamTrack())
        else:
            self.pc.addTransceiver("video", direction="recvonly")
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def read() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    await self.frames.put(await track.recv())

        asyncio.ensure_future(read())

    async def offer(self, *, strip_candidates: bool) -> dict[str, str]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        sdp = self.pc.localDescription.sdp
        if strip_candidates:  # the older app does not wait for ICE gathering
            sdp = re.sub(r"^a=(candidate:.*|end-of-candidates)\r?\n", "", sdp, flags=re.M)
        return {"sdp": sdp, "type": "offer"}

    async def answer(self, body: dict[str, str]) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(**body))


async def post(server: TestServer, path: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        response = await http.post(server.make_url(path), json=body)
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("path", "algorithm", "expected"),
    [
        (
            "/watershed?threshold_ratio=0.3&kernel_size=5&image_delay=0.5",
            "watershed",
            {"threshold_ratio": 0.3, "kernel_size": 5},
        ),
        (
            "/snakes?kernel_size=3&x=60&y=70&radius=25&image_delay=2",
            "snakes",
            {"x": 60, "y": 70, "radius": 25},
        ),
    ],
)
async def test_rest_offer_streams_with_query_parameters(
    server: TestServer, path: str, algorithm: str, expected: dict[str, float]
) -> None:
    peer = Receiver()
    status, body = await post(server, path, await peer.offer(strip_candidates=False))
    assert status == 200, body
    assert set(body) == {"sdp", "type"} and body["type"] == "answer"
    await peer.answer(body)
    async with asyncio.timeout(10):
        frame = await peer.frames.get()
    assert frame.width == 128 and frame.height == 128
    [session] = streaming(server).sessions
    assert session.state.algorithm == algorithm
    assert session.state.image_delay == float(path.rsplit("=", 1)[1])
    for name, value in expected.items():
        assert session.state.params_json[name] == value
    await peer.pc.close()


async def test_sendrecv_offer_without_candidates(server: TestServer) -> None:
    peer = Receiver(send_canvas=True)
    status, body = await post(server, "/watershed", await peer.offer(strip_candidates=True))
    assert status == 200, body
    assert "a=sendonly" in body["sdp"]  # the client's blank canvas is refused, not queued
    await peer.answer(body)
    async with asyncio.timeout(10):
        await peer.frames.get()
    [session] = streaming(server).sessions
    assert session.state.params_json["threshold_ratio"] == 0.5  # the older defaults
    assert session.state.params_json["kernel_size"] == 3
    assert session.state.image_delay == 1.0
    await peer.pc.close()


async def test_stop_stream_stops_rest_streams(server: TestServer) -> None:
    peers = [Receiver(), Receiver()]
    for peer in peers:
        status, body = await post(server, "/snakes", await peer.offer(strip_candidates=False))
        assert status == 200
        await peer.answer(body)
    assert len(streaming(server).sessions) == 2
    status, body = await post(server, "/stop-stream", None)
    assert (status, body) == (200, {"message": "All streams stopped"})
    assert streaming(server).sessions == set()
    for peer in peers:
        await peer.pc.close()


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/watershed?threshold_ratio=2", {"sdp": "v=0", "type": "offer"}, 400, "invalid_params"),
        ("/snakes?radius=abc", {"sdp": "v=0", "type": "offer"}, 400, "invalid_params"),
        ("/watershed?image_delay=-1", {"sdp": "v=0", "type": "offer"}, 400, "invalid_params"),
        ("/watershed", {"sdp": "v=0", "type": "answer"}, 400, "invalid_offer"),
        ("/watershed", ["not", "an", "offer"], 400, "invalid_offer"),
        ("/watershed", {"sdp": "garbage", "type": "offer"}, 400, "invalid_offer"),
    ],
)
async def test_rest_errors_are_json(
    server: TestServer, path: str, body: Any, status: int, code: str
) -> None:
    got_status, got = await post(server, path, body)
    assert (got_status, got["error"]) == (status, code)
    assert streaming(server).sessions == set()
