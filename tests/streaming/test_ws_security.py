"""The signalling socket's guards: token, origin, message size, update rate."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from mediastream.client import StreamClient
from tests.streaming.conftest import ServerFactory

TOKEN = "s3cret-token-for-tests"


async def test_token_in_the_query_string(make_server: ServerFactory) -> None:
    server = await make_server(token=TOKEN)
    async with aiohttp.ClientSession() as http:
        response = await http.get(server.make_url("/ws?token=wrong-token-of-good-length"))
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized"
    async with StreamClient(str(server.make_url("")), token=TOKEN) as client:
        await client.start({"playing": False})
        await client.frame_message(lambda m: True)


async def test_token_in_a_first_auth_message(make_server: ServerFactory) -> None:
    server = await make_server(token=TOKEN)
    async with aiohttp.ClientSession() as http, http.ws_connect(server.make_url("/ws")) as ws:
        assert (await ws.receive_json())["type"] == "hello"
        await ws.send_json({"type": "offer", "sdp": "v=0"})
        error = await ws.receive_json()
        assert error["error"] == "unauthorized", error
        await ws.send_json({"type": "auth", "token": TOKEN})
        assert (await ws.receive_json())["type"] == "authenticated"
        await ws.send_json({"type": "offer", "sdp": "v=0 nonsense"})
        assert (await ws.receive_json())["error"] == "invalid_offer"  # past the guard now


async def test_wrong_auth_message_closes_the_socket(make_server: ServerFactory) -> None:
    server = await make_server(token=TOKEN)
    async with aiohttp.ClientSession() as http, http.ws_connect(server.make_url("/ws")) as ws:
        await ws.receive_json()  # hello
        await ws.send_json({"type": "auth", "token": "wrong-token-of-good-length"})
        assert (await ws.receive_json())["error"] == "unauthorized"
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


@pytest.mark.parametrize("first", ["message", "query"])
async def test_a_wrong_token_after_a_good_one_is_refused_too(
    make_server: ServerFactory, first: str
) -> None:
    server = await make_server(token=TOKEN)
    url = server.make_url("/ws" + (f"?token={TOKEN}" if first == "query" else ""))
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        assert (await ws.receive_json())["type"] == "hello"
        await ws.send_json({"type": "auth", "token": TOKEN})
        assert (await ws.receive_json())["type"] == "authenticated"
        await ws.send_json({"type": "auth", "token": "wrong-token-of-good-length"})
        assert (await ws.receive_json())["error"] == "unauthorized"
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("SELF", True),
        ("https://viewer.example", True),  # --cors-origin
        ("https://evil.example", False),
        ("null", False),
    ],
)
async def test_websocket_origin(
    make_server: ServerFactory, origin: str | None, allowed: bool
) -> None:
    server = await make_server(cors_origins=("https://viewer.example",))
    headers = {}
    if origin is not None:
        headers["Origin"] = f"http://{server.host}:{server.port}" if origin == "SELF" else origin
    async with aiohttp.ClientSession() as http:
        if allowed:
            async with http.ws_connect(server.make_url("/ws"), headers=headers) as ws:
                assert (await ws.receive_json())["type"] == "hello"
        else:
            response = await http.get(server.make_url("/ws"), headers=headers)
            assert response.status == 403
            assert (await response.json())["error"] == "forbidden_origin"


async def test_oversized_messages_are_refused_and_the_socket_stays(
    make_server: ServerFactory,
) -> None:
    server = await make_server(max_message_kb=8)
    async with StreamClient(str(server.make_url(""))) as client:
        assert client._ws is not None
        mark = len(client.messages)
        await client._ws.send_str(json.dumps({"type": "ping", "pad": "x" * 9000}))
        error = await client.wait_for(lambda m: m["type"] == "error", start=mark)
        assert error["error"] == "message_too_large"
        await client.start({"playing": False})  # the socket still works
        assert client.control is not None
        await client.control_open()
        mark = len(client.messages)
        client.control.send(json.dumps({"type": "update", "seq": 1, "pad": "x" * 9000}))
        error = await client.wait_for(lambda m: m["type"] == "error", start=mark)
        assert error["error"] == "message_too_large"


async def test_updates_past_the_rate_are_merged_latest_wins(make_server: ServerFactory) -> None:
    server = await make_server(max_updates_per_second=2)
    async with StreamClient(str(server.make_url(""))) as client:
        await client.start({"algorithm": "watershed", "playing": False})
        await client.control_open()
        assert client.control is not None
        mark = len(client.messages)
        updates: list[dict[str, Any]] = [
            {"params": {"kernel_size": 5}},
            {"params": {"threshold_ratio": 0.3}},
            {"params": {"kernel_size": 7}},
            {"params": {"kernel_size": 4}},  # invalid: refused at once, not merged
            {"params": {"threshold_ratio": 0.4}},
            {"index": 2},
        ]
        for seq, changes in enumerate(updates, start=1):
            client.control.send(json.dumps({"type": "update", "seq": seq, **changes}))
        error = await client.wait_for(lambda m: m.get("seq") == 4, start=mark)
        assert error["type"] == "error" and error["error"] == "invalid_params"
        last = await client.wait_for(lambda m: m.get("seq") == 6, start=mark)
        assert last["type"] == "state"
        assert last["state"]["params"]["kernel_size"] == 7
        assert last["state"]["params"]["threshold_ratio"] == 0.4
        assert last["state"]["index"] == 2
        replied = {m["seq"] for m in client.messages[mark:] if m["type"] in ("state", "error")}
        assert replied == {1, 2, 4, 6}  # 3 and 5 were merged into 6
