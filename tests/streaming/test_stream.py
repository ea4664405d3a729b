"""Streaming end to end: a real aiortc peer watches a series and steers it mid-stream."""

from __future__ import annotations

import numpy as np
import pytest
from aiohttp.test_utils import TestServer

from mediastream.client import ReceivedFrame, StreamClient, StreamClientError
from tests.streaming.conftest import SIZE, SLICES, streaming

Message = dict[str, object]


async def decoded(client: StreamClient, message: Message) -> ReceivedFrame:
    """The decoded video frame that `message` (a frame message) describes, matched by pts."""
    pts = message["pts"]
    assert isinstance(pts, int)
    while True:
        frame = await client.next_frame()
        if abs(frame.pts - pts) <= 2:
            return frame
        assert frame.pts < pts, f"frame pts {pts} was never decoded (now at {frame.pts})"


def red_pixels(image: np.ndarray) -> int:
    """Pixels drawn in the overlay colour: clearly redder than they are green or blue."""
    b, g, r = (image[..., i].astype(int) for i in range(3))
    return int(np.count_nonzero((r - g > 50) & (r - b > 50)))


async def test_offer_streams_frames_with_metadata(client: StreamClient, series_uid: str) -> None:
    await client.start({"algorithm": "none", "playing": False, "index": 3})
    message = await client.frame_message(lambda m: True)
    assert message["index"] == 3 and message["count"] == SLICES
    assert message["algorithm"] == "none" and message["stage"] == "final"
    assert message["seq"] is None
    frame = await decoded(client, message)
    assert frame.image.shape == (SIZE, SIZE, 3)
    assert red_pixels(frame.image) == 0


async def test_update_rerenders_the_current_slice_with_its_seq(client: StreamClient) -> None:
    await client.start({"algorithm": "none", "playing": False, "image_delay": 1})
    before = await decoded(client, await client.frame_message(lambda m: True))

    reply = await client.update(algorithm="watershed", params={"threshold_ratio": 0.3})
    seq = reply["seq"]
    assert reply["state"]["algorithm"] == "watershed"
    assert reply["state"]["params"]["threshold_ratio"] == 0.3
    message = await client.frame_message(lambda m: m["seq"] == seq)
    assert message["algorithm"] == "watershed" and message["index"] == 0
    assert message["stats"]["regions"] >= 1
    after = await decoded(client, message)
    assert red_pixels(before.image) == 0
    assert red_pixels(after.image) > 50  # the boundaries are drawn


async def test_invalid_update_is_refused_and_the_stream_goes_on(client: StreamClient) -> None:
    await client.start({"algorithm": "watershed", "playing": False})
    await client.frame_message(lambda m: True)
    with pytest.raises(StreamClientError) as refused:
        await client.update(params={"kernel_size": 4})
    assert refused.value.message["error"] == "invalid_params"
    assert "kernel_size" in refused.value.message["detail"]
    assert isinstance(refused.value.message["seq"], int)

    reply = await client.update(params={"kernel_size": 5})
    assert reply["state"]["params"]["kernel_size"] == 5
    await client.frame_message(lambda m: m["seq"] == reply["seq"])


async def test_snake_update_shows_preview_then_final(client: StreamClient) -> None:
    await client.start({"algorithm": "none", "playing": False})
    await client.frame_message(lambda m: True)
    mark = len(client.messages)
    reply = await client.update(
        algorithm="snakes", params={"x": 64, "y": 88, "radius": 20, "kernel_size": 3}
    )
    seq = reply["seq"]
    final = await client.frame_message(lambda m: m["seq"] == seq and m["stage"] == "final")
    stages = [
        m["stage"] for m in client.messages[mark:] if m["type"] == "frame" and m["seq"] == seq
    ]
    assert stages[0] == "preview"
    assert stages.index("final") > 0
    assert final["stats"]["area_px"] > 0


async def test_play_clock_and_seek(client: StreamClient) -> None:
    await client.start({"algorithm": "none", "image_delay": 0, "playing": True})
    first = await client.frame_message(lambda m: True)
    seen = {first["index"]}
    while len(seen) < SLICES:  # the series loops through every slice
        message = await client.frame_message(lambda m: m["index"] not in seen)
        seen.add(message["index"])

    reply = await client.update(playing=False, index=5)
    held = await client.frame_message(lambda m: m["seq"] == reply["seq"])
    assert held["index"] == 5
    mark = len(client.messages)
    # Paused: the picture is refreshed, but the slice stays.
    for _ in range(3):
        message = await client.frame_message(lambda m: True, start=mark)
        assert message["index"] == 5
        mark = client.messages.index(message) + 1


async def test_update_over_the_websocket_without_data_channel(client: StreamClient) -> None:
    await client.start({"algorithm": "none", "playing": False}, control=False)
    await client.frame_message(lambda m: True)  # frame metadata come over the socket instead
    reply = await client.update(via="ws", window={"center": 300, "width": 1500})
    assert reply["state"]["window"] == {"center": 300, "width": 1500}
    await client.frame_message(lambda m: m["seq"] == reply["seq"])


async def test_trickled_candidates(client: StreamClient) -> None:
    answer = await client.start({"algorithm": "none", "playing": False}, trickle=True)
    assert "a=candidate:" in answer["sdp"]  # the server's answer carries all its candidates
    message = await client.frame_message(lambda m: True)
    await decoded(client, message)


async def test_stop_then_restart_on_the_same_socket(
    client: StreamClient, server: TestServer
) -> None:
    await client.start({"algorithm": "none"})
    await client.frame_message(lambda m: True)
    stopped = await client.stop()
    assert stopped["reason"] == "stopped by the client"
    assert streaming(server).sessions == set()

    mark = len(client.messages)
    await client.start({"algorithm": "watershed", "playing": False})
    message = await client.frame_message(lambda m: True, start=mark)
    assert message["algorithm"] == "watershed"
    assert len(streaming(server).sessions) == 1


async def test_new_offer_replaces_the_stream(client: StreamClient, server: TestServer) -> None:
    await client.start({"algorithm": "none"})
    mark = len(client.messages)
    await client.start({"algorithm": "watershed", "playing": False})
    stopped = await client.wait_for(lambda m: m["type"] == "stopped", start=mark)
    assert stopped["reason"] == "replaced by a new offer"
    assert len(streaming(server).sessions) == 1


async def test_answer_is_followed_by_the_starting_state(client: StreamClient) -> None:
    mark = len(client.messages)
    await client.start({"algorithm": "snakes", "playing": False})
    answer = await client.wait_for(lambda m: m["type"] == "answer", start=mark)
    state = await client.wait_for(lambda m: m["type"] == "state", start=mark)
    assert client.messages.index(state) > client.messages.index(answer)
    assert state["seq"] is None
    params = state["state"]["params"]
    assert (params["x"], params["y"], params["radius"]) == (100, 100, 50)  # the older defaults
    assert state["state"]["count"] == SLICES


async def test_frames_name_the_window_in_effect(client: StreamClient) -> None:
    await client.start({"algorithm": "none", "playing": False})
    message = await client.frame_message(lambda m: True)
    assert message["window"] == {"center": 40.0, "width": 400.0, "name": "SOFT TISSUE"}
    reply = await client.update(window={"center": -600, "width": 1500})
    message = await client.frame_message(lambda m: m["seq"] == reply["seq"])
    assert (message["window"]["center"], message["window"]["width"]) == (-600, 1500)
