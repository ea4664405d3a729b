"""Fuzzed protocol messages on the WebSocket and on a live stream's data channel.

Whatever a client sends - random JSON, random text or bytes, or messages of the right type with
garbage fields - the server answers with at most one reply per message: an ``error`` with a
documented code (never ``internal_error``, which the protocol reserves for server bugs), or the
valid reply of a valid message. The socket stays open (a ``ping`` is answered after every
message), and a running stream survives: the same session keeps sending frames and still obeys
an update afterwards.

WebRTC runs on loopback only (see tests/streaming/conftest.py); `make pytest` provides the
network namespace.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import event, given
from hypothesis import strategies as st

from mediastream.client import StreamClient
from mediastream.streaming.session import Session
from tests.safety.conftest import fuzz_settings
from tests.safety.message_strategies import (
    SDP_HEAD,
    Message,
    channel_frames,
    websocket_frames_with_a_stream,
    websocket_frames_without_a_stream,
)
from tests.streaming.conftest import ServerFactory, streaming

# docs/protocol.md, "server → client error"; internal_error is there too, but it means a bug.
DOCUMENTED_ERRORS = {
    "unauthorized",
    "message_too_large",
    "invalid_json",
    "invalid_message",
    "unknown_type",
    "invalid_offer",
    "invalid_candidate",
    "no_stream",
    "no_series",
    "series_not_found",
    "invalid_params",
    "invalid_update",
    "too_many_sessions",
    "decode_failed",
}
REPLY_TIMEOUT = 3.0  # replies on loopback take milliseconds

# -- checks ----------------------------------------------------------------------------------

_ping_ids = itertools.count(1)


def kind_of(frame: str | bytes) -> str | None:
    """The message type a frame carries, if it is a JSON object with a string type."""
    try:
        message = json.loads(frame)
    except ValueError:
        return None
    kind = message.get("type") if isinstance(message, dict) else None
    return kind if isinstance(kind, str) else None


def check_reply(frame: str | bytes, reply: Message) -> None:
    kind = kind_of(frame)
    event(f"{kind}: {reply.get('error', reply['type'])}")  # --hypothesis-show-statistics
    if reply["type"] == "error":
        assert reply["error"] in DOCUMENTED_ERRORS, (frame, reply)
        assert isinstance(reply["detail"], str) and reply["detail"], reply
        return
    allowed = {"ping": "pong", "auth": "authenticated", "update": "state"}
    assert kind in allowed and reply["type"] == allowed[kind], (frame, reply)


class Viewer:
    """A client of `server` on its WebSocket, optionally watching a stream.

    `ensure` gives each Hypothesis example a working socket (and stream) to start from, whatever
    an earlier example broke - so every failure is the failure of one example, which Hypothesis
    can then shrink.
    """

    def __init__(self, server: TestServer, *, stream: bool) -> None:
        self.server = server
        self.stream = stream
        self.client: StreamClient | None = None
        self.session: Session | None = None
        self.mark = 0  # messages before the current example

    @property
    def sessions(self) -> set[Session]:
        return streaming(self.server).sessions

    async def ensure(self) -> StreamClient:
        client = self.client
        if client is None or client._ws is None or client._ws.closed:
            if client is not None:
                await client.close()
            client = self.client = StreamClient(
                str(self.server.make_url("")), timeout=REPLY_TIMEOUT
            )
            await client.connect()
            self.session = None
        if self.stream and (self.session is None or self.session.closed):
            async with asyncio.timeout(REPLY_TIMEOUT):  # an earlier stream may still be closing
                while self.sessions:
                    await asyncio.sleep(0.01)
            await client.start({"playing": True, "image_delay": 0.1})
            await client.control_open()
            await client.next_frame()
            [self.session] = self.sessions
        self.mark = len(client.messages)
        return client

    async def reply(self, mark: int, what: str | bytes, predicate: Any) -> Message:
        """The first message since `mark` that matches; an assertion naming `what` if none."""
        assert self.client is not None
        try:
            return await self.client.wait_for(predicate, timeout=REPLY_TIMEOUT, start=mark)
        except TimeoutError:
            since = [m for m in self.client.messages[mark:] if m["type"] != "frame"]
            raise AssertionError(
                f"no reply to {what!r} within {REPLY_TIMEOUT} s; since then: {since}; "
                f"stream sessions on the server: {len(self.sessions)}"
            ) from None

    def answers_since(self, mark: int) -> list[Message]:
        """What the server answered since `mark`: everything but frame descriptions."""
        assert self.client is not None
        return [m for m in self.client.messages[mark:] if m["type"] != "frame"]

    async def send_on_socket(self, frame: str | bytes) -> None:
        """Send one frame on the WebSocket and check its answer; the socket must then answer a
        ping. A valid candidate has no reply by design; an update merged by the rate limit is
        answered a little later, after the ping's pong."""
        client = self.client
        assert client is not None and client._ws is not None
        mark = len(client.messages)
        if isinstance(frame, bytes):
            await client._ws.send_bytes(frame)
        else:
            await client._ws.send_str(frame)
        tag = f"after-{next(_ping_ids)}"
        await client.send({"type": "ping", "id": tag})
        pong = await self.reply(mark, frame, lambda m: m["type"] == "pong" and m.get("id") == tag)
        answers = [m for m in self.answers_since(mark) if m is not pong]
        if not answers and kind_of(frame) != "candidate":
            await self.reply(mark, frame, lambda m: m["type"] in ("state", "error"))
            answers = [m for m in self.answers_since(mark) if m is not pong]
        assert len(answers) <= 1, (frame, answers)
        for answer in answers:
            check_reply(frame, answer)

    async def send_on_channel(self, frame: str | bytes) -> None:
        """Send one frame on the control channel; it must get exactly one reply there."""
        client = self.client
        assert client is not None and client.control is not None
        assert client.control.readyState == "open", "the control channel closed"
        mark = len(client.messages)
        client.control.send(frame)
        check_reply(frame, await self.reply(mark, frame, lambda m: m["type"] != "frame"))

    async def assert_alive(self) -> None:
        """The socket answers; the stream (if any) is the same session, still obeying updates."""
        client = self.client
        assert client is not None and client._ws is not None and not client._ws.closed
        stopped = [m for m in client.messages[self.mark :] if m["type"] == "stopped"]
        assert stopped == [], f"the stream was stopped: {stopped}"
        if not self.stream:
            assert not self.sessions
            return
        assert self.session is not None and not self.session.closed, "the session closed"
        assert self.sessions == {self.session}
        mark = len(client.messages)
        reset = await client.update(
            algorithm="none", index=0, playing=True, image_delay=0.1, window=None
        )
        await self.reply(mark, "reset", lambda m: m["type"] == "frame" and m["seq"] == reset["seq"])
        while not client.frames.empty():  # frames decoded before the reset
            client.frames.get_nowait()
        await client.next_frame()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


@pytest.fixture
async def viewer(loopback_only: None, make_server: ServerFactory) -> AsyncIterator[Viewer]:
    """A server with an eight-slice series and a client watching it, frames flowing."""
    viewer = Viewer(await make_server(), stream=True)
    yield viewer
    await viewer.close()


@pytest.fixture
async def idle(loopback_only: None, make_server: ServerFactory) -> AsyncIterator[Viewer]:
    """A server and a client connected to its socket, with no stream."""
    viewer = Viewer(await make_server(), stream=False)
    yield viewer
    await viewer.close()


# -- tests -----------------------------------------------------------------------------------


@fuzz_settings(max_examples=300)
@given(frames=st.lists(websocket_frames_without_a_stream, min_size=1, max_size=5))
async def test_fuzzed_socket_messages_get_error_replies_and_the_socket_stays(
    idle: Viewer, frames: list[str | bytes]
) -> None:
    await idle.ensure()
    for frame in frames:
        await idle.send_on_socket(frame)
    await idle.assert_alive()


@fuzz_settings(max_examples=80)
@given(frames=st.lists(websocket_frames_with_a_stream, min_size=1, max_size=5))
async def test_fuzzed_socket_messages_leave_the_running_stream_alone(
    viewer: Viewer, frames: list[str | bytes]
) -> None:
    await viewer.ensure()
    for frame in frames:
        await viewer.send_on_socket(frame)
    await viewer.assert_alive()


@fuzz_settings(max_examples=150)
@given(frames=st.lists(channel_frames, min_size=1, max_size=5))
async def test_fuzzed_channel_messages_get_error_replies_and_the_stream_goes_on(
    viewer: Viewer, frames: list[str | bytes]
) -> None:
    await viewer.ensure()
    for frame in frames:
        await viewer.send_on_channel(frame)
    await viewer.assert_alive()


# The smallest examples of what the fuzz tests above found, kept as plain tests so a failure
# names the problem at once.


@pytest.mark.parametrize(
    "sdp", ["v=0", "nonsense", SDP_HEAD], ids=["v=0", "nonsense", "no media section"]
)
async def test_a_malformed_offer_does_not_stop_the_running_stream(viewer: Viewer, sdp: str) -> None:
    client = await viewer.ensure()
    mark = len(client.messages)
    await client.send({"type": "offer", "sdp": sdp})
    error = await viewer.reply(mark, sdp, lambda m: m["type"] == "error")
    assert error["error"] == "invalid_offer"
    await viewer.assert_alive()


@pytest.mark.parametrize(
    "changes",
    [
        {"image_delay": 10**400},
        {"window": {"center": 10**400, "width": 400}},
        {"algorithm": "watershed", "params": {"threshold_ratio": 10**400}},
    ],
    ids=["image_delay", "window", "float param"],
)
@pytest.mark.parametrize("via", ["channel", "socket"])
async def test_an_integer_too_large_for_a_float_is_an_invalid_update(
    viewer: Viewer, changes: Message, via: str
) -> None:
    client = await viewer.ensure()
    frame = json.dumps({"type": "update", "seq": 99, **changes})
    mark = len(client.messages)
    if via == "channel":
        assert client.control is not None
        client.control.send(frame)
    else:
        assert client._ws is not None
        await client._ws.send_str(frame)
    reply = await viewer.reply(mark, frame, lambda m: m["type"] in ("state", "error"))
    assert reply["type"] == "error" and reply.get("seq") == 99, reply
    assert reply["error"] in ("invalid_update", "invalid_params"), reply
    await viewer.assert_alive()


async def test_the_channel_survives_a_burst_of_garbage(viewer: Viewer) -> None:
    """Garbage faster than the update rate: every message is answered, the stream goes on."""
    client = await viewer.ensure()
    assert client.control is not None
    garbage: list[str | bytes] = ["", "{", "[]", "null", b"\x00\xff", '{"type": 1}']
    garbage += [json.dumps({"type": "update", "seq": i, "index": i % 20}) for i in range(200)]
    mark = len(client.messages)
    for frame in garbage:
        client.control.send(frame)
    await viewer.reply(
        mark, "the last update", lambda m: m["type"] != "frame" and m.get("seq") == 199
    )
    answers = viewer.answers_since(mark)
    # One error per non-update frame; updates past the rate are merged into a later reply.
    assert len([m for m in answers if "seq" not in m]) == 6, answers
    for answer in answers:
        assert answer["type"] in ("state", "error"), answer
        if answer["type"] == "error":
            assert answer["error"] in DOCUMENTED_ERRORS, answer
    await viewer.assert_alive()
