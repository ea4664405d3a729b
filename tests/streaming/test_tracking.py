"""``track``: while playing, each slice's click is seeded from the previous slice's region."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mediastream.client import StreamClient
from mediastream.dicom.library import Library
from mediastream.streaming.render import Renderer, ResultCache
from mediastream.streaming.state import InvalidUpdate, StreamState, apply_update
from tests.blob_series import CENTRE, SIZE, SLICES, blob_series


@pytest.fixture
def library(tmp_path: Path) -> Library:
    library = Library(tmp_path / "uploads", cache_bytes=0)
    library.load()
    for i, ds in enumerate(blob_series()):
        assert library.ingest_dataset(ds, filename=f"{i}.dcm").outcome == "stored"
    return library


def start_state(library: Library, track: bool) -> StreamState:
    uid = library.latest_series_uid()
    assert uid is not None
    state = StreamState(series=uid, frame_count=SLICES, shape=(SIZE, SIZE))
    changes = {"algorithm": "region_grow", "params": {"x": 24, "y": 32}, "index": 8}
    return apply_update(state, {**changes, "track": track}, library)


def play(renderer: Renderer, state: StreamState, steps: int) -> list[dict[str, Any]]:
    stats = []
    for _ in range(steps):
        frame = renderer.final(state)
        stats.append({"index": frame.index, **frame.stats})
        state = renderer.next_state(state, frame)
    return stats


def test_tracking_follows_the_structure_and_stops_where_it_ends(library: Library) -> None:
    renderer = Renderer(library, ResultCache(64 << 20))
    shown = play(renderer, start_state(library, track=True), 10)
    assert [s["index"] for s in shown] == [8, 9, 10, 11, 12, 13, 14, 15, 0, 1]
    first, *rest = shown
    assert first["found"] and first["tracked"] is False and first["track_from"] == 8
    for s in rest[:3]:  # slices 9-11: the blob, followed as it drifts right
        assert s["found"] is True and s["tracked"] is True, s
        assert s["centroid_x"] == pytest.approx(CENTRE[1] + s["index"] - 8, abs=1.0)
    ended = rest[3]  # slice 12: the blob is gone
    assert ended["found"] is False and ended["tracked"] is True
    assert "ends here" in str(ended["reason"])
    for s in rest[4:]:  # nothing is tracked until the play is back on the click's slice
        assert s["found"] is False and "ended" in str(s["reason"])


def test_without_tracking_the_click_stays_fixed(library: Library) -> None:
    from segmentation import get_algorithm

    renderer = Renderer(library, ResultCache(64 << 20))
    state = start_state(library, track=False)
    shown = play(renderer, state, 6)
    assert all("tracked" not in s for s in shown)
    algorithm = get_algorithm("region_grow")
    for s in shown:  # every slice segmented from the same click, as without tracking
        gray = library.frame(state.series, s["index"]).gray
        values = np.asarray(library.frame_values(state.series, s["index"]), np.float32)
        spacing = library.get_series(state.series).pixel_spacing
        alone = algorithm.segment(gray, state.params, spacing=spacing, values=values)
        assert s["area_px"] == alone.stats["area_px"]


def test_back_on_the_clicked_slice_tracking_starts_again(library: Library) -> None:
    renderer = Renderer(library, ResultCache(64 << 20))
    shown = play(renderer, start_state(library, track=True), SLICES + 2)
    assert shown[SLICES]["index"] == 8
    assert shown[SLICES]["found"] is True and shown[SLICES]["tracked"] is False
    assert shown[SLICES + 1]["tracked"] is True and shown[SLICES + 1]["found"] is True


def test_track_is_a_state_field(library: Library) -> None:
    state = start_state(library, track=False)
    assert state.to_json()["track"] is False
    assert apply_update(state, {"track": True}, library).to_json()["track"] is True
    with pytest.raises(InvalidUpdate, match="track must be true or false"):
        apply_update(state, {"track": "yes"}, library)


async def test_tracked_frames_say_so_in_the_stream(tmp_path: Path, aiohttp_server: object) -> None:
    from mediastream.app import create_app
    from mediastream.settings import Settings

    root = tmp_path / "uploads"
    library = Library(root, cache_bytes=0)
    library.load()
    for i, ds in enumerate(blob_series()):
        library.ingest_dataset(ds, filename=f"{i}.dcm")
    settings = Settings(uploads=root, demo=False, ice_hosts=("127.0.0.1",))
    server = await aiohttp_server(create_app(settings))  # type: ignore[operator]
    async with StreamClient(str(server.make_url(""))) as client:
        await client.start(
            {
                "algorithm": "region_grow",
                "params": {"x": 24, "y": 32},
                "index": 8,
                "track": True,
                "image_delay": 0.05,
                "playing": True,
            }
        )
        message = await client.frame_message(lambda m: m["index"] == 10)
        stats = message["stats"]
        assert isinstance(stats, dict)
        assert stats["tracked"] is True and stats["found"] is True
