"""The WebSocket protocol itself: hello, errors that never close the socket, session release."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

import segmentation
from mediastream.client import StreamClient, StreamClientError
from tests.streaming.conftest import ServerFactory, streaming


async def wait_until_no_sessions(server: TestServer) -> None:
    async with asyncio.timeout(10):
        while streaming(server).sessions:
            await asyncio.sleep(0.02)


async def test_hello_describes_every_algorithm(client: StreamClient) -> None:
    hello = client.hello
    assert hello is not None
    assert hello["protocol"] == 1
    assert list(hello["algorithms"]) == segmentation.algorithm_names()
    for name, schema in hello["algorithms"].items():
        assert schema == segmentation.get_algorithm(name).schema()
    radius = hello["algorithms"]["snakes"]["params"]["radius"]
    assert {"type", "default", "min", "max", "step", "description"} <= set(radius)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('{"no": "type"}', "invalid_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "update", "seq": 1, "playing": false}', "no_stream"),
        (
            '{"type": "candidate", "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}',
            "no_stream",
        ),
        ('{"type": "offer"}', "invalid_offer"),
        ('{"type": "offer", "sdp": "v=0 nonsense"}', "invalid_offer"),
        ('{"type": "offer", "sdp": "v=0", "state": {"series": "1.2.3"}}', "series_not_found"),
        ('{"type": "offer", "sdp": "v=0", "state": {"algorithm": "magic"}}', "invalid_update"),
    ],
)
async def test_malformed_messages_get_errors_and_the_socket_stays(
    client: StreamClient, raw: str, code: str
) -> None:
    assert client._ws is not None
    mark = len(client.messages)
    await client._ws.send_str(raw)
    error = await client.wait_for(lambda m: m["type"] == "error", start=mark)
    assert error["error"] == code
    assert error["detail"]
    await client.send({"type": "ping", "id": 7})
    pong = await client.wait_for(lambda m: m["type"] == "pong", start=mark)
    assert pong["id"] == 7


async def test_binary_frames_are_refused_politely(client: StreamClient) -> None:
    assert client._ws is not None
    mark = len(client.messages)
    await client._ws.send_bytes(b"\x00\x01")
    error = await client.wait_for(lambda m: m["type"] == "error", start=mark)
    assert error["error"] == "invalid_message"


async def test_bad_candidate_is_an_error_not_a_crash(client: StreamClient) -> None:
    await client.start({"playing": False})
    mark = len(client.messages)
    await client.send({"type": "candidate", "candidate": "candidate:garbage", "sdpMid": "0"})
    error = await client.wait_for(lambda m: m["type"] == "error", start=mark)
    assert error["error"] == "invalid_candidate"
    await client.frame_message(lambda m: True, start=mark)


async def test_abrupt_socket_close_releases_the_session(server: TestServer) -> None:
    client = StreamClient(str(server.make_url("")))
    await client.connect()
    await client.start({"algorithm": "watershed"})
    await client.frame_message(lambda m: True)
    assert len(streaming(server).sessions) == 1
    assert client._ws is not None
    await client._ws.close()  # no stop message: the socket just goes away
    await wait_until_no_sessions(server)
    await client.close()


async def test_peer_that_vanishes_releases_the_session(server: TestServer) -> None:
    client = StreamClient(str(server.make_url("")))
    await client.connect()
    await client.start({"algorithm": "none"})
    await client.frame_message(lambda m: True)
    assert client.pc is not None
    mark = len(client.messages)
    await client.pc.close()  # the peer connection goes; the socket stays
    stopped = await client.wait_for(lambda m: m["type"] == "stopped", start=mark)
    assert stopped["reason"].startswith("connection")
    await wait_until_no_sessions(server)
    await client.close()


async def test_max_sessions_refuses_more(make_server: ServerFactory) -> None:
    server = await make_server(max_sessions=1)
    url = str(server.make_url(""))
    async with StreamClient(url) as first, StreamClient(url) as second:
        await first.start({"playing": False})
        with pytest.raises(StreamClientError) as refused:
            await second.start({"playing": False})
        assert refused.value.message["error"] == "too_many_sessions"
        # The first viewer may still replace its own stream.
        await first.start({"algorithm": "watershed", "playing": False})
        await first.stop()
        await second.start({"playing": False})
        await second.frame_message(lambda m: True)


async def test_shutdown_closes_sockets_going_away(make_server: ServerFactory) -> None:
    server = await make_server()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.make_url("/ws"))
        await ws.receive_json()  # hello
        closing = asyncio.ensure_future(server.close())
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        await closing


async def test_deleting_the_series_stops_its_streams(
    client: StreamClient, server: TestServer, series_uid: str
) -> None:
    await client.start({"algorithm": "watershed", "playing": False})
    await client.frame_message(lambda m: True)
    mark = len(client.messages)
    async with aiohttp.ClientSession() as http:
        response = await http.delete(server.make_url(f"/images/{series_uid}"))
        assert response.status == 200
    stopped = await client.wait_for(lambda m: m["type"] == "stopped", start=mark)
    assert stopped["reason"] == "the series was deleted"
    assert streaming(server).sessions == set()
    assert len(streaming(server).renderer.cache) == 0


async def test_end_of_candidates_twice_is_harmless_and_late_candidates_refused(
    client: StreamClient,
) -> None:
    await client.start({"playing": False}, trickle=True)
    mark = len(client.messages)
    await client.send({"type": "candidate", "candidate": ""})  # the client's second end marker
    late = "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host"
    await client.send({"type": "candidate", "candidate": late, "sdpMid": "0"})
    error = await client.wait_for(lambda m: m["type"] == "error", start=mark)
    assert error["error"] == "invalid_candidate" and "end-of-candidates" in error["detail"]
    errors = [m for m in client.messages[mark:] if m["type"] == "error"]
    assert len(errors) == 1
    await client.frame_message(lambda m: True, start=mark)


async def test_peer_vanishing_while_playing_flat_out_does_not_stall_the_server(
    server: TestServer,
) -> None:
    """At image_delay 0 with every slice cached, the player never needs to wait for anything
    but the track; when the track ends with the peer, it must stop rather than spin."""
    client = StreamClient(str(server.make_url("")))
    await client.connect()
    await client.start({"algorithm": "none", "image_delay": 0})
    seen: set[int] = set()
    while len(seen) < 8:  # one loop through the series: everything is cached now
        message = await client.frame_message(lambda m: m["index"] not in seen)
        seen.add(message["index"])
    assert client.pc is not None
    await client.pc.close()
    async with aiohttp.ClientSession() as http, asyncio.timeout(5):
        async with http.ws_connect(server.make_url("/ws")) as ws:
            await ws.receive_json()  # hello: the event loop is free
            await ws.send_json({"type": "ping", "id": 1})
            assert (await ws.receive_json()) == {"type": "pong", "id": 1}
    await wait_until_no_sessions(server)
    await client.close()
