"""The stream state: what a session shows, and how a client's update changes it.

A `StreamState` is immutable; an update produces a new one or raises `InvalidUpdate` and leaves
the current one in force. Validation that needs the library (does the series exist, how many
slices has it) goes through the small `SeriesLookup` protocol so this module stays pure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

import segmentation
from mediastream.dicom.display import Window
from mediastream.dicom.errors import SeriesNotFound
from mediastream.dicom.ingest import is_safe_uid
from mediastream.dicom.library import SeriesInfo

__all__ = [
    "DEFAULT_ALGORITHM",
    "MAX_IMAGE_DELAY",
    "STATE_FIELDS",
    "InvalidUpdate",
    "SeriesLookup",
    "StreamState",
    "Follow",
    "apply_update",
    "initial_state",
]

DEFAULT_ALGORITHM = "none"
MAX_IMAGE_DELAY = 3600.0
STATE_FIELDS = (
    "series",
    "algorithm",
    "params",
    "image_delay",
    "window",
    "playing",
    "index",
    "track",
    "seg",
)
# Changes that restart tracking from the client's click on the current slice.
_TRACK_RESTARTS = ("series", "algorithm", "params", "index", "track")


class InvalidUpdate(ValueError):
    """An update the server refuses; the current state stays in force."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class SeriesLookup(Protocol):
    def get_series(self, series_uid: str) -> SeriesInfo: ...

    def latest_series_uid(self) -> str | None: ...


@dataclasses.dataclass(frozen=True, eq=False)
class Follow:
    """What a tracked slice is seeded from: the previous slice's region (``track``).

    ``mask`` None means the structure ended on slice ``ended`` and nothing is tracked until
    the play comes back to the click's slice. ``digest`` names the mask in render keys.
    """

    mask: NDArray[np.bool_] | None
    stats: Mapping[str, Any]
    params: Any  # the click's parameters (the first slice's)
    ended: int | None = None
    reference: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the first's stats
    digest: str = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        if self.mask is None:
            object.__setattr__(self, "digest", f"ended:{self.ended}")
        else:
            digest = hashlib.blake2b(np.packbits(self.mask).tobytes(), digest_size=12)
            seeded = (
                self.stats.get("tolerance"),
                self.reference.get("mean"),
                self.reference.get("sd"),
            )
            digest.update(repr(seeded).encode())
            object.__setattr__(self, "digest", digest.hexdigest())


@dataclasses.dataclass(frozen=True)
class StreamState:
    """One stream's state, as clients see it (see docs/protocol.md)."""

    series: str
    frame_count: int
    shape: tuple[int, int]  # (rows, columns) of the series' images
    algorithm: str = DEFAULT_ALGORITHM
    params: Any = None  # the algorithm's frozen params dataclass
    image_delay: float = 1.0
    window: Window | None = None
    playing: bool = True
    index: int = 0
    track: bool = False
    seg: str | None = None  # a stored segmentation of the series to outline instead
    # Tracking (``track``): the slice the click was made on, and what this slice follows
    # (None: segment with ``params`` as clicked). Not client fields: the player sets them.
    anchor: int = 0
    follow: Follow | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.params is None:
            algorithm = segmentation.get_algorithm(self.algorithm)
            object.__setattr__(self, "params", algorithm.default_params(self.shape))
        if not 0 <= self.index < self.frame_count:
            raise ValueError(f"index must be between 0 and {self.frame_count - 1}")

    @property
    def params_json(self) -> dict[str, Any]:
        return dict(self.params.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "algorithm": self.algorithm,
            "params": self.params_json,
            "image_delay": self.image_delay,
            "window": None
            if self.window is None
            else {"center": self.window.center, "width": self.window.width},
            "playing": self.playing,
            "index": self.index,
            "count": self.frame_count,
            "track": self.track,
            "seg": self.seg,
        }

    @property
    def follow_digest(self) -> str | None:
        return None if self.follow is None else self.follow.digest

    def resized(self, frame_count: int) -> StreamState:
        """The state after the series came to have `frame_count` frames (same index if it can)."""
        return dataclasses.replace(
            self, frame_count=frame_count, index=min(self.index, frame_count - 1)
        )

    def advanced(self, follow: Follow | None = None) -> StreamState:
        """The state after the play clock moves to the next slice (looping).

        Tracking, the next slice follows ``follow`` (the region just shown); back on the
        click's slice, or across the loop's seam, it starts from the click again.
        """
        index = (self.index + 1) % self.frame_count
        if not self.track or index == self.anchor:
            return dataclasses.replace(self, index=index, follow=None)
        if index == 0 or follow is None:  # the seam: slice 0 does not neighbour the last one
            follow = Follow(None, {}, self.params, ended=self.index)
        return dataclasses.replace(self, index=index, follow=follow)


def _series(library: SeriesLookup, uid: Any) -> SeriesInfo:
    if not isinstance(uid, str) or not uid:
        raise InvalidUpdate("invalid_update", "series must be a SeriesInstanceUID string.")
    try:
        return library.get_series(uid)
    except SeriesNotFound:
        raise InvalidUpdate(
            "series_not_found", f"There is no series {uid} in the library."
        ) from None


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidUpdate("invalid_update", f"{name} must be a number, got {value!r:.40}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidUpdate("invalid_update", f"{name} must be a finite number, got {value!r}.")
    # Compared before any float(): JSON integers can be too large to convert.
    if not low <= value <= high:
        raise InvalidUpdate(
            "invalid_update", f"{name} must be between {low:g} and {high:g}, got {value!r:.40}."
        )
    return float(value)


def _window(value: Any) -> Window | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"center", "width", "name"}:
        raise InvalidUpdate(
            "invalid_update", 'window must be {"center": number, "width": number} or null.'
        )
    center = _number("window.center", value.get("center"), -1e9, 1e9)
    width = _number("window.width", value.get("width"), 1, 1e9)
    return Window(center=center, width=width)


def _params(algorithm: str, base: Mapping[str, Any], changes: Any) -> Any:
    if not isinstance(changes, Mapping):
        raise InvalidUpdate("invalid_params", "params must be an object of parameter values.")
    try:
        return segmentation.get_algorithm(algorithm).parse_params({**base, **changes})
    except ValueError as exc:
        raise InvalidUpdate("invalid_params", str(exc)) from None


def _fitting(algorithm: str, params: Mapping[str, Any], shape: tuple[int, int]) -> dict[str, Any]:
    """`params` if they fit images of `shape`, else the algorithm's defaults for that shape."""
    implementation = segmentation.get_algorithm(algorithm)
    try:
        implementation.check_image(implementation.parse_params(params), shape)
    except ValueError:
        return dict(implementation.default_params(shape).to_json())
    return dict(params)


def _check_fits(state: StreamState) -> StreamState:
    """Refuse parameters that do not fit the series' images (a centre outside them…)."""
    try:
        segmentation.get_algorithm(state.algorithm).check_image(state.params, state.shape)
    except ValueError as exc:
        raise InvalidUpdate("invalid_params", str(exc)) from None
    return state


def apply_update(
    state: StreamState, changes: Mapping[str, Any], library: SeriesLookup
) -> StreamState:
    """Return `state` with `changes` (any subset of the state's fields) applied.

    ``params`` merge into the current parameters; a new ``algorithm`` starts from that algorithm's
    defaults plus the given ``params``. A new ``series`` starts at slice 0 unless ``index`` is
    given, and keeps the parameters if they fit its images (else that algorithm's defaults for
    them), plus the given ``params``. Raises `InvalidUpdate` naming the offending field; nothing
    is applied then.
    """
    unknown = sorted(set(changes) - set(STATE_FIELDS))
    if unknown:
        raise InvalidUpdate(
            "invalid_update",
            f"Unknown state field(s): {', '.join(unknown)}; allowed: {', '.join(STATE_FIELDS)}.",
        )
    updates: dict[str, Any] = {}

    if "series" in changes and changes["series"] != state.series:
        info = _series(library, changes["series"])
        updates.update(
            series=info.series_uid,
            frame_count=info.frame_count,
            shape=(info.rows, info.columns),
            index=0,
        )

    algorithm = state.algorithm
    if "algorithm" in changes and changes["algorithm"] != state.algorithm:
        algorithm = changes["algorithm"]
        if algorithm not in segmentation.algorithm_names():
            raise InvalidUpdate(
                "invalid_update",
                f"algorithm must be one of {', '.join(segmentation.algorithm_names())}, "
                f"got {algorithm!r}.",
            )
        shape = updates.get("shape", state.shape)
        defaults = segmentation.get_algorithm(algorithm).default_params(shape).to_json()
        updates["algorithm"] = algorithm
        updates["params"] = _params(algorithm, defaults, changes.get("params", {}))
    elif "shape" in updates:
        # Another series: the current parameters go on where they fit its images (a click
        # outside them does not); otherwise the algorithm's defaults for those images, as a
        # change of algorithm would give.
        base = _fitting(algorithm, state.params_json, updates["shape"])
        updates["params"] = _params(algorithm, base, changes.get("params", {}))
    elif "params" in changes:
        updates["params"] = _params(algorithm, state.params_json, changes["params"])

    if "image_delay" in changes:
        updates["image_delay"] = _number("image_delay", changes["image_delay"], 0, MAX_IMAGE_DELAY)
    if "window" in changes:
        updates["window"] = _window(changes["window"])
    if "playing" in changes:
        if not isinstance(changes["playing"], bool):
            raise InvalidUpdate("invalid_update", "playing must be true or false.")
        updates["playing"] = changes["playing"]
    if "index" in changes:
        count = updates.get("frame_count", state.frame_count)
        value = changes["index"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
            raise InvalidUpdate(
                "invalid_update",
                f"index must be a whole number from 0 to {count - 1}, got {value!r}.",
            )
        updates["index"] = value
    if "shape" in updates:
        updates["seg"] = None  # another series: its own segmentations
    if "seg" in changes:
        seg = changes["seg"]
        if seg is not None and not (isinstance(seg, str) and is_safe_uid(seg)):
            raise InvalidUpdate(
                "invalid_update", "seg must be the seg_uid of a stored segmentation, or null."
            )
        updates["seg"] = seg
    if "track" in changes:
        if not isinstance(changes["track"], bool):
            raise InvalidUpdate("invalid_update", "track must be true or false.")
        updates["track"] = changes["track"]
    if any(name in changes for name in _TRACK_RESTARTS):
        # Tracking starts again from the click, on the slice shown now.
        updates["anchor"] = updates.get("index", state.index)
        updates["follow"] = None
    return _check_fits(dataclasses.replace(state, **updates))


def initial_state(library: SeriesLookup, requested: Mapping[str, Any] | None) -> StreamState:
    """The state a new stream starts in: the most recent series, plain image, then `requested`."""
    requested = requested or {}
    uid = requested.get("series") or library.latest_series_uid()
    if uid is None:
        raise InvalidUpdate("no_series", "The library is empty: upload a DICOM series first.")
    info = _series(library, uid)
    state = StreamState(
        series=info.series_uid, frame_count=info.frame_count, shape=(info.rows, info.columns)
    )
    return apply_update(state, {k: v for k, v in requested.items() if k != "series"}, library)
