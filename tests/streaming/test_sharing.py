"""Shared viewing: a presenter steers, viewers watch the same pictures and cannot steer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from mediastream.client import StreamClient, StreamClientError
from mediastream.keys import STREAMING
from tests.streaming.conftest import ServerFactory, streaming

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
async def clients(server: TestServer) -> AsyncIterator[list[StreamClient]]:
    """Open clients on `server`, closed after the test."""
    opened: list[StreamClient] = []
    yield opened
    for client in opened:
        await client.close()


async def connect(server: TestServer, opened: list[StreamClient], **kwargs: Any) -> StreamClient:
    client = StreamClient(str(server.make_url("")), **kwargs)
    opened.append(client)
    await client.connect()
    return client


async def presenting(server: TestServer, opened: list[StreamClient]) -> tuple[StreamClient, str]:
    presenter = await connect(server, opened)
    await presenter.start({"playing": False, "algorithm": "watershed"})
    await presenter.frame_message(lambda m: True)
    shared = await presenter.share()
    return presenter, shared["view_token"]


async def watching(server: TestServer, opened: list[StreamClient], token: str) -> StreamClient:
    viewer = await connect(server, opened)
    await viewer.join(token)
    await viewer.start()
    await viewer.frame_message(lambda m: True)
    await viewer.next_frame()
    return viewer


async def test_a_viewer_sees_the_presenters_frames_with_the_same_metadata(
    server: TestServer, clients: list[StreamClient]
) -> None:
    presenter, token = await presenting(server, clients)
    viewer = await watching(server, clients, token)
    reply = await presenter.update(params={"threshold_ratio": 0.3})
    seq = reply["seq"]
    mine = await presenter.frame_message(lambda m: m["seq"] == seq)
    theirs = await viewer.frame_message(lambda m: m["seq"] == seq)
    for key in ("index", "count", "algorithm", "stage", "stats", "window"):
        assert theirs[key] == mine[key], key
    # The viewer's controls follow: it is told the presenter's new state too.
    state = await viewer.wait_for(lambda m: m["type"] == "state" and m["seq"] == seq)
    assert state["state"]["params"]["threshold_ratio"] == 0.3
    frame = await viewer.next_frame()
    assert frame.image.shape == (128, 128, 3)


async def test_the_share_reply_and_the_viewer_count(
    server: TestServer, clients: list[StreamClient]
) -> None:
    presenter, token = await presenting(server, clients)
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)  # 24 random bytes: 192 bits
    again = await presenter.share()
    assert again["view_token"] == token and again["url"] == f"?view={token}"
    mark = len(presenter.messages)
    await watching(server, clients, token)
    counted = await presenter.wait_for(lambda m: m["type"] == "viewers", start=mark)
    assert counted["count"] == 1
    assert streaming(server).shares.viewer_count() == 1


async def test_a_viewer_cannot_steer(server: TestServer, clients: list[StreamClient]) -> None:
    presenter, token = await presenting(server, clients)
    viewer = await watching(server, clients, token)
    for via in ("channel", "socket"):
        with pytest.raises(StreamClientError) as refused:
            await viewer.update(via=via, playing=True, params={"threshold_ratio": 0.9})
        assert refused.value.message["error"] == "read_only"
    for request in (viewer.share, viewer.unshare):
        with pytest.raises(StreamClientError) as refused:
            await request()
        assert refused.value.message["error"] == "read_only"
    [session] = [s for s in streaming(server).sessions if s.follows is None]
    assert session.state.params_json["threshold_ratio"] == 0.5 and not session.state.playing


async def test_a_wrong_token_is_refused_and_the_socket_stays(
    server: TestServer, clients: list[StreamClient]
) -> None:
    _, token = await presenting(server, clients)
    stranger = await connect(server, clients)
    for guess in [token[:-1] + ("A" if token[-1] != "A" else "B"), "", 12, None]:
        with pytest.raises(StreamClientError) as refused:
            await stranger.join(guess)  # type: ignore[arg-type]
        assert refused.value.message["error"] == "unknown_view"
    await stranger.send({"type": "ping", "id": 1})
    await stranger.wait_for(lambda m: m["type"] == "pong")


async def test_unshare_stops_the_viewers_and_the_token_is_dead(
    server: TestServer, clients: list[StreamClient]
) -> None:
    presenter, token = await presenting(server, clients)
    viewers = [await watching(server, clients, token) for _ in range(2)]
    await presenter.unshare()
    for viewer in viewers:
        stopped = await viewer.wait_for(lambda m: m["type"] == "stopped")
        assert stopped["reason"] == "sharing ended"
        with pytest.raises(StreamClientError) as refused:
            await viewer.join(token)
        assert refused.value.message["error"] == "unknown_view"
    fresh = await presenter.share()
    assert fresh["view_token"] != token
    await presenter.frame_message(lambda m: True)  # the presenter's stream goes on


async def test_the_viewers_stop_when_the_presenter_leaves(
    server: TestServer, clients: list[StreamClient]
) -> None:
    presenter, token = await presenting(server, clients)
    viewer = await watching(server, clients, token)
    await presenter.stop()
    stopped = await viewer.wait_for(lambda m: m["type"] == "stopped")
    assert stopped["reason"] == "presenter left"
    with pytest.raises(StreamClientError):
        await viewer.join(token)
    assert streaming(server).sessions == set()


async def test_a_viewer_renders_nothing(server: TestServer, clients: list[StreamClient]) -> None:
    renderer = server.app[STREAMING].renderer
    calls: list[int] = []
    final = renderer.final

    def counting(state: Any) -> Any:
        calls.append(state.index)
        return final(state)

    renderer.final = counting  # type: ignore[method-assign]
    presenter, token = await presenting(server, clients)
    for _ in range(3):
        await watching(server, clients, token)
    before = len(calls)
    reply = await presenter.update(index=2)
    for client in clients:
        await client.frame_message(lambda m: m["seq"] == reply["seq"])
    assert len(calls) - before == 1  # one render for four viewers


async def test_viewers_are_limited_per_share(make_server: ServerFactory) -> None:
    server = await make_server(max_viewers=2, max_sessions=1)
    opened: list[StreamClient] = []
    try:
        _, token = await presenting(server, opened)
        for _ in range(2):  # viewers do not count against --max-sessions
            await watching(server, opened, token)
        late = await connect(server, opened)
        await late.join(token)
        with pytest.raises(StreamClientError) as refused:
            await late.start()
        assert refused.value.message["error"] == "too_many_viewers"
    finally:
        for client in opened:
            await client.close()


async def test_a_server_token_is_still_required_to_join(make_server: ServerFactory) -> None:
    server = await make_server(token=TOKEN)
    opened: list[StreamClient] = []
    try:
        presenter = await connect(server, opened, token=TOKEN)
        await presenter.start({"playing": False})
        token = (await presenter.share())["view_token"]
        outsider = await connect(server, opened)  # the view token, but not the server's
        with pytest.raises(StreamClientError) as refused:
            await outsider.join(token)
        assert refused.value.message["error"] == "unauthorized"
        insider = await connect(server, opened, token=TOKEN)
        await insider.join(token)
        await insider.start()
        await insider.next_frame()
    finally:
        for client in opened:
            await client.close()
