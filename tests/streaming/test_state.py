"""Stream state updates: merge rules and refusals, without a server."""

from __future__ import annotations

import pytest

import segmentation
from mediastream.dicom.display import Window
from mediastream.dicom.errors import SeriesNotFound
from mediastream.dicom.library import SeriesInfo
from mediastream.streaming.state import InvalidUpdate, StreamState, apply_update, initial_state


def info(uid: str, frames: int, rows: int = 512, columns: int = 512) -> SeriesInfo:
    return SeriesInfo(
        series_uid=uid,
        modality="CT",
        description="",
        frame_count=frames,
        rows=rows,
        columns=columns,
        pixel_spacing=None,
        windows=(),
    )


class Lookup:
    def __init__(self, *series: SeriesInfo) -> None:
        self.series = {s.series_uid: s for s in series}

    def get_series(self, series_uid: str) -> SeriesInfo:
        try:
            return self.series[series_uid]
        except KeyError:
            raise SeriesNotFound(f"no series {series_uid}") from None

    def latest_series_uid(self) -> str | None:
        return list(self.series)[-1] if self.series else None


LIB = Lookup(info("1.1", 10), info("1.2", 3, rows=200, columns=300))


def test_initial_state_is_the_latest_series_plain_and_playing() -> None:
    state = initial_state(LIB, None)
    assert state.to_json() == {
        "series": "1.2",
        "algorithm": "none",
        "params": {},
        "image_delay": 1.0,
        "window": None,
        "playing": True,
        "index": 0,
        "count": 3,
        "track": False,
        "seg": None,
    }
    with pytest.raises(InvalidUpdate) as empty:
        initial_state(Lookup(), None)
    assert empty.value.code == "no_series"


def test_params_merge_and_algorithm_switch_starts_from_defaults() -> None:
    state = initial_state(LIB, {"algorithm": "watershed", "params": {"kernel_size": 5}})
    state = apply_update(state, {"params": {"threshold_ratio": 0.2}}, LIB)
    assert state.params_json["kernel_size"] == 5 and state.params_json["threshold_ratio"] == 0.2
    state = apply_update(state, {"algorithm": "snakes", "params": {"radius": 30}}, LIB)
    snakes_defaults = initial_state(LIB, {"algorithm": "snakes"}).params_json
    assert state.params_json == {**snakes_defaults, "radius": 30}
    back = apply_update(state, {"algorithm": "watershed"}, LIB)
    assert back.params_json == initial_state(LIB, {"algorithm": "watershed"}).params_json


def test_series_switch_resets_the_index_unless_given() -> None:
    state = initial_state(LIB, {"series": "1.1", "index": 7})
    assert state.index == 7
    assert apply_update(state, {"series": "1.2"}, LIB).index == 0
    assert apply_update(state, {"series": "1.2", "index": 2}, LIB).index == 2


def test_window_delay_playing() -> None:
    state = initial_state(LIB, None)
    state = apply_update(
        state, {"window": {"center": 40, "width": 400}, "image_delay": 0, "playing": False}, LIB
    )
    assert state.window == Window(center=40, width=400)
    assert state.image_delay == 0 and state.playing is False
    assert apply_update(state, {"window": None}, LIB).window is None


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        ({"params": {"kernel_size": 4}}, "invalid_params", "kernel_size"),
        ({"series": "1.2", "algorithm": "snakes", "params": {"x": 300}}, "invalid_params", "x"),
        ({"series": "1.2", "algorithm": "snakes", "params": {"y": 250}}, "invalid_params", "y"),
        ({"params": {"bogus": 1}}, "invalid_params", "bogus"),
        ({"params": 5}, "invalid_params", "params"),
        ({"algorithm": "magic"}, "invalid_update", "algorithm"),
        ({"series": "9.9"}, "series_not_found", "9.9"),
        ({"index": 3}, "invalid_update", "index"),
        ({"index": -1}, "invalid_update", "index"),
        ({"index": True}, "invalid_update", "index"),
        ({"image_delay": -0.5}, "invalid_update", "image_delay"),
        ({"image_delay": "1"}, "invalid_update", "image_delay"),
        ({"window": {"center": 40}}, "invalid_update", "window"),
        ({"window": {"center": 40, "width": 0}}, "invalid_update", "window.width"),
        ({"playing": "yes"}, "invalid_update", "playing"),
        ({"colour": "red"}, "invalid_update", "colour"),
    ],
)
def test_refusals_name_the_field_and_keep_the_state(
    changes: dict[str, object], code: str, words: str
) -> None:
    state = initial_state(LIB, {"algorithm": "watershed"})
    with pytest.raises(InvalidUpdate) as refused:
        apply_update(state, changes, LIB)
    assert refused.value.code == code
    assert words in refused.value.detail


def test_snake_centre_must_lie_in_this_series_images() -> None:
    state = initial_state(LIB, {"series": "1.1", "algorithm": "snakes", "params": {"x": 400}})
    assert state.params_json["x"] == 400  # fits 512×512
    with pytest.raises(InvalidUpdate) as refused:
        apply_update(state, {"series": "1.2", "params": {"x": 400}}, LIB)  # 200×300
    assert "x must be between 0 and 299" in refused.value.detail


def test_a_series_switch_adapts_parameters_that_do_not_fit_its_images() -> None:
    state = initial_state(
        LIB, {"series": "1.1", "algorithm": "snakes", "params": {"x": 400, "alpha": 0.05}}
    )
    moved = apply_update(state, {"series": "1.2"}, LIB)  # 200×300: x=400 is outside
    assert moved.params == segmentation.get_algorithm("snakes").default_params((200, 300))
    assert moved.params_json["x"] == 100 and moved.params_json["alpha"] == 0.015
    given = apply_update(state, {"series": "1.2", "params": {"x": 20}}, LIB)
    assert given.params_json["x"] == 20 and given.params_json["y"] == 100
    fitting = initial_state(LIB, {"series": "1.1", "algorithm": "snakes", "params": {"x": 250}})
    kept = apply_update(fitting, {"series": "1.2"}, LIB)  # x=250 fits: nothing changes
    assert kept.params == fitting.params


def test_advancing_loops() -> None:
    state = StreamState(series="1.2", frame_count=3, shape=(200, 300), index=2)
    assert state.advanced().index == 0
