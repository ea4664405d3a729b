"""A refused offer never keeps a stream slot, on the WebSocket and on the older REST endpoints.

aiortc refuses some offers with its own errors (an ``OperationError`` when the offer's video
section has no codec the server can send); those must free the slot like any other refusal.
"""

from __future__ import annotations

import re

import aiohttp
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection

from mediastream.client import StreamClient, StreamClientError
from mediastream.streaming.ice import rtc_configuration
from tests.streaming.conftest import ServerFactory, streaming

MAX_SESSIONS = 4


async def offer_without_a_usable_codec() -> str:
    """A real aiortc offer whose video codecs are all renamed to one the server cannot send."""
    pc = RTCPeerConnection(rtc_configuration())
    pc.addTransceiver("video", direction="recvonly")
    pc.createDataChannel("control")
    await pc.setLocalDescription(await pc.createOffer())
    assert pc.localDescription is not None
    sdp = pc.localDescription.sdp
    await pc.close()
    video = re.compile(r"^(a=rtpmap:\d+ )(VP8|H264|rtx)/90000", re.M)
    assert video.search(sdp)
    return video.sub(r"\1AV1/90000", sdp)


async def health_sessions(server: TestServer) -> int:
    async with aiohttp.ClientSession() as http:
        body = await (await http.get(server.make_url("/health"))).json()
    return int(body["streaming"]["sessions"])


async def test_twenty_unusable_offers_leave_every_slot_free(make_server: ServerFactory) -> None:
    server = await make_server(max_sessions=MAX_SESSIONS)
    sdp = await offer_without_a_usable_codec()
    async with StreamClient(str(server.make_url(""))) as client:
        assert client._ws is not None
        for _ in range(20):  # five times the number of slots
            mark = len(client.messages)
            await client.send({"type": "offer", "sdp": sdp})
            reply = await client.wait_for(lambda m: m["type"] in ("answer", "error"), start=mark)
            assert reply["type"] == "error" and reply["error"] == "invalid_offer", reply
            assert reply["detail"].startswith("The offer could not be answered: ")
        assert await health_sessions(server) == 0
        assert streaming(server).sessions == set()
        await client.start({"playing": False})  # a normal offer streams
        await client.frame_message(lambda m: True)
        await client.next_frame()
        assert await health_sessions(server) == 1


async def test_unusable_rest_offers_leave_every_slot_free(make_server: ServerFactory) -> None:
    server = await make_server(max_sessions=MAX_SESSIONS)
    sdp = await offer_without_a_usable_codec()
    async with aiohttp.ClientSession() as http:
        for path in ["/watershed", "/snakes"] * 10:
            response = await http.post(server.make_url(path), json={"sdp": sdp, "type": "offer"})
            body = await response.json()
            assert (response.status, body["error"]) == (400, "invalid_offer"), body
    assert await health_sessions(server) == 0
    clients = [StreamClient(str(server.make_url(""))) for _ in range(MAX_SESSIONS)]
    try:
        for client in clients:  # every slot can still be used
            await client.connect()
            await client.start({"playing": False})
        assert await health_sessions(server) == MAX_SESSIONS
        extra = StreamClient(str(server.make_url("")))
        async with extra:
            try:
                await extra.start({"playing": False})
            except StreamClientError as refused:
                assert refused.message["error"] == "too_many_sessions"
            else:
                raise AssertionError("a fifth stream was accepted with four slots")
    finally:
        for client in clients:
            await client.close()
