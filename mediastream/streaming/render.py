"""Rendering slices for the stream: display pipeline → segmentation → video-ready I420 picture.

Everything here is blocking and runs in worker threads. Final results are kept in a `ResultCache`
shared by all sessions and keyed by everything that determines the picture — the frame shown (its
instance, when it was stored, its frame number; not its index, which names another frame once the
series grows), the window, the algorithm and its parameters — so looping a series, or a second
viewer of the same series, costs only the video encoding.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

import segmentation
from mediastream.dicom.backend import ImageStore
from mediastream.dicom.display import DisplayFrame, Window
from mediastream.dicom.segexport import read_seg_masks
from mediastream.dicom.segstore import SegStore, StoredSegmentation
from mediastream.streaming.state import Follow, StreamState
from segmentation import EvolvingAlgorithm, SegmentationResult
from segmentation.base import base_overlay
from segmentation.masks import draw_mask, mask_contour, mask_stats
from segmentation.propagation import (
    SliceResult,
    follow_slice,
    is_click_algorithm,
    reach_px,
    reference_of,
)

__all__ = ["RenderedFrame", "ResultCache", "Renderer"]

RenderKey = tuple[Hashable, ...]
SAVED_MASKS_KEPT = 4  # saved segmentations whose masks stay in memory while shown


@dataclasses.dataclass(frozen=True)
class RenderedFrame:
    """A picture ready for the encoder, and what the client is told about it."""

    i420: NDArray[np.uint8]  # planar YUV 4:2:0, shape (height * 3 // 2, width), even sizes
    index: int
    count: int
    algorithm: str
    stage: str  # "preview" | "evolving" | "final"
    stats: dict[str, Any]
    timing_ms: dict[str, float]
    window: Window | None = None  # the window actually applied (the series default resolved)
    cached: bool = False
    # Click algorithms: the region shown (what the next slice follows when tracking).
    mask: NDArray[np.bool_] | None = None

    @property
    def width(self) -> int:
        return int(self.i420.shape[1])

    @property
    def height(self) -> int:
        return int(self.i420.shape[0] * 2 // 3)

    @property
    def nbytes(self) -> int:
        return int(self.i420.nbytes) + (0 if self.mask is None else int(self.mask.nbytes))


class ResultCache:
    """A thread-safe LRU of final `RenderedFrame`s bounded by their size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[RenderKey, RenderedFrame] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: RenderKey) -> RenderedFrame | None:
        with self._lock:
            frame = self._items.get(key)
            if frame is not None:
                self._items.move_to_end(key)
            return frame

    def put(self, key: RenderKey, frame: RenderedFrame) -> None:
        if frame.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = frame
            self._bytes += frame.nbytes
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def discard_series(self, series_uid: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == series_uid]:
                self._bytes -= self._items.pop(key).nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes


def _to_i420(bgr: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """BGR → planar YUV 4:2:0 (BT.601, video range, as decoders expect); pads odd sizes."""
    rows, cols = bgr.shape[:2]
    if rows % 2 or cols % 2:
        bgr = cv2.copyMakeBorder(bgr, 0, rows % 2, 0, cols % 2, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420))


def _background(display: DisplayFrame) -> NDArray[np.uint8] | None:
    if display.rgb is None:
        return None
    return np.ascontiguousarray(cv2.cvtColor(display.rgb, cv2.COLOR_RGB2BGR))


def _modality_values(pixels: NDArray[np.generic]) -> NDArray[np.float32] | None:
    """Grayscale modality values as float32; None for colour (the display image is used)."""
    if pixels.ndim != 2:
        return None
    return np.asarray(pixels, dtype=np.float32)


def _evolving(name: str) -> EvolvingAlgorithm:
    algorithm = segmentation.get_algorithm(name)
    if not isinstance(algorithm, EvolvingAlgorithm):
        raise ValueError(f"algorithm {name!r} does not evolve")
    return algorithm


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


class Renderer:
    """Renders stream states to pictures, through the library and the shared result cache."""

    def __init__(
        self, library: ImageStore, cache: ResultCache, segmentations: SegStore | None = None
    ) -> None:
        self.library = library
        self.cache = cache
        self.segmentations = segmentations
        # Saved segmentations being shown, read once: (seg_uid, stored_ns) -> masks by SOP UID.
        self._saved_masks: OrderedDict[tuple[str, int], dict[str, NDArray[np.bool_]]] = (
            OrderedDict()
        )
        self._saved_lock = threading.Lock()

    def key(self, state: StreamState) -> RenderKey:
        """What determines the picture of `state`; raises SeriesNotFound or FrameNotFound."""
        window = None if state.window is None else (state.window.center, state.window.width)
        params = tuple(sorted(state.params_json.items()))
        frame = self.library.frame_key(state.series, state.index)
        return (
            state.series,
            frame,
            window,
            state.algorithm,
            params,
            state.track,
            state.follow_digest,
            state.seg,
        )

    def frame_count(self, series_uid: str) -> int:
        """How many frames the series has now (it grows while instances arrive)."""
        return self.library.get_series(series_uid).frame_count

    def _load(self, state: StreamState) -> tuple[DisplayFrame, dict[str, Any], float]:
        """The display frame, and what the algorithms take besides it: the pixel spacing, a
        colour background, and the modality values (HU for CT) intensity-based algorithms
        measure, so their tolerances do not change with the window."""
        start = time.perf_counter()
        display = self.library.frame(state.series, state.index, state.window)
        spacing = self.library.get_series(state.series).pixel_spacing
        kwargs: dict[str, Any] = {
            "spacing": spacing,
            "background": _background(display),
            "values": _modality_values(self.library.frame_values(state.series, state.index)),
        }
        return display, kwargs, _ms(start)

    def _frame(
        self,
        state: StreamState,
        display: DisplayFrame,
        result: Any,
        timing: dict[str, float],
        start: float,
    ) -> RenderedFrame:
        convert = time.perf_counter()
        i420 = _to_i420(result.overlay)
        timing["convert"] = _ms(convert)
        timing["total"] = _ms(start)
        return RenderedFrame(
            i420=i420,
            index=state.index,
            count=self.frame_count(state.series),
            algorithm=state.algorithm,
            stage=result.stage,
            stats=dict(result.stats),
            timing_ms=timing,
            window=display.window,
            mask=result.mask if result.stats.get("found") else None,
        )

    def cached(self, state: StreamState) -> RenderedFrame | None:
        frame = self.cache.get(self.key(state))
        if frame is None:
            return None
        return dataclasses.replace(frame, cached=True, count=self.frame_count(state.series))

    def final(self, state: StreamState) -> RenderedFrame:
        """The finished picture for `state` (from the cache when it is there)."""
        hit = self.cached(state)
        if hit is not None:
            return hit
        start = time.perf_counter()
        display, kwargs, decode_ms = self._load(state)
        algorithm = segmentation.get_algorithm(state.algorithm)
        segment = time.perf_counter()
        if state.seg is not None:
            result = self._saved(state, state.seg, display, kwargs)
        elif state.follow is not None and is_click_algorithm(algorithm):
            result = self._tracked(state, state.follow, display, kwargs)
        else:
            result = algorithm.segment(display.gray, state.params, **kwargs)
            if state.track and is_click_algorithm(algorithm):
                result = dataclasses.replace(
                    result, stats={**result.stats, "tracked": False, "track_from": state.index}
                )
        timing = {"decode": decode_ms, "segment": _ms(segment)}
        frame = self._frame(state, display, result, timing, start)
        self.cache.put(self.key(state), frame)
        return frame

    def _tracked(
        self, state: StreamState, follow: Follow, display: DisplayFrame, kwargs: dict[str, Any]
    ) -> SegmentationResult:
        """``track``: this slice seeded from the previous one's region (see propagation)."""
        overlay = base_overlay(display.gray, kwargs["background"])
        tracked: dict[str, Any] = {"tracked": True, "track_from": state.anchor}
        if follow.mask is None:
            reason = f"The tracked structure ended on slice {follow.ended}."
            return SegmentationResult(overlay, {"found": False, "reason": reason, **tracked})
        algorithm = segmentation.get_algorithm(state.algorithm)
        # The same units as the clicked slice's tolerance and statistics: modality values
        # (HU for CT), as every slice is segmented; the display image for colour sources.
        values = kwargs["values"]
        modality = values if values is not None else display.gray.astype(np.float32)
        spacing = kwargs["spacing"]
        previous = SliceResult(state.index - 1, follow.mask, follow.params, dict(follow.stats))
        current, why, result = follow_slice(
            algorithm,
            state.params,
            previous,
            state.index,
            display.gray,
            modality,
            spacing=spacing,
            reference=reference_of(follow.reference),
            reach=reach_px(spacing),
        )
        if current is None:
            reason = f"The tracked structure ends here: {why}."
            if result is None:
                return SegmentationResult(overlay, {"found": False, "reason": reason, **tracked})
            return SegmentationResult(
                overlay, {**result.stats, **tracked, "found": False, "reason": reason}, mask=None
            )
        draw_mask(overlay, current.mask)
        stats = mask_stats(current.mask, modality, spacing, None)
        stats.update(tracked)
        stats["seed_x"], stats["seed_y"] = (
            current.params.to_json()["x"],
            current.params.to_json()["y"],
        )
        if result is not None and "tolerance" in result.stats:
            stats["tolerance"] = result.stats["tolerance"]
        return SegmentationResult(overlay, stats, mask_contour(current.mask), "final", current.mask)

    def _saved(
        self, state: StreamState, seg_uid: str, display: DisplayFrame, kwargs: dict[str, Any]
    ) -> SegmentationResult:
        """``seg``: this slice's outline from a saved 3-D segmentation (its SEG file)."""
        if self.segmentations is None:
            raise ValueError("this server keeps no segmentations")
        record = self.segmentations.get(state.series, seg_uid)
        sop = self.library.frame_key(state.series, state.index)[0]
        mask = self._masks(record).get(sop)
        overlay = base_overlay(display.gray, kwargs["background"])
        saved = {"seg": seg_uid, "label": record.label}
        if mask is None or mask.shape != display.gray.shape:
            reason = f"{record.label} does not reach this slice."
            return SegmentationResult(overlay, {"found": False, "reason": reason, **saved})
        draw_mask(overlay, mask)
        values = self.library.frame_values(state.series, state.index)
        measured = values if values.ndim == 2 else display.gray
        stats = mask_stats(mask, measured.astype(np.float32), kwargs["spacing"], None)
        return SegmentationResult(overlay, {**stats, **saved}, mask_contour(mask), "final", mask)

    def _masks(self, record: StoredSegmentation) -> dict[str, NDArray[np.bool_]]:
        key = (record.seg_uid, record.stored_ns)
        with self._saved_lock:
            masks = self._saved_masks.get(key)
            if masks is not None:
                self._saved_masks.move_to_end(key)
                return masks
        assert self.segmentations is not None
        masks = read_seg_masks(self.segmentations.file(record))
        with self._saved_lock:
            self._saved_masks[key] = masks
            while len(self._saved_masks) > SAVED_MASKS_KEPT:
                self._saved_masks.popitem(last=False)
        return masks

    def next_state(self, state: StreamState, shown: RenderedFrame | None) -> StreamState:
        """The state after the play clock moves on; tracking, it follows the region shown."""
        if not state.track or shown is None or shown.index != state.index:
            return state.advanced()
        if shown.mask is None or not shown.stats.get("found"):
            ended = state.follow.ended if state.follow is not None else None
            lost = Follow(None, {}, state.params, ended=state.index if ended is None else ended)
            return state.advanced(lost)
        anchor_stats = shown.stats if state.follow is None else state.follow.reference
        follow = Follow(shown.mask, shown.stats, state.params, reference=dict(anchor_stats))
        return state.advanced(follow)

    def evolves(self, state: StreamState) -> bool:
        """Whether `state` has an evolution worth showing (not cached yet, evolving algorithm)."""
        algorithm = segmentation.get_algorithm(state.algorithm)
        if state.follow is not None or state.seg is not None:
            return False  # tracked slices, saved outlines: shown at once
        return isinstance(algorithm, EvolvingAlgorithm) and self.cache.get(self.key(state)) is None

    def preview(self, state: StreamState) -> RenderedFrame:
        """The instant picture of an evolving algorithm's starting point."""
        start = time.perf_counter()
        display, kwargs, decode_ms = self._load(state)
        algorithm = _evolving(state.algorithm)
        segment = time.perf_counter()
        result = algorithm.preview(display.gray, state.params, **kwargs)
        timing = {"decode": decode_ms, "segment": _ms(segment)}
        return self._frame(state, display, result, timing, start)

    def evolution(self, state: StreamState) -> Iterator[RenderedFrame]:
        """Pictures of the contour as it converges; the last one is final and gets cached.

        Each `next()` does one short chunk of work, so a caller that moves on to a newer state
        simply stops iterating.
        """
        display, kwargs, decode_ms = self._load(state)
        algorithm = _evolving(state.algorithm)
        chunks = algorithm.evolve(display.gray, state.params, **kwargs)
        while True:
            start = time.perf_counter()
            result = next(chunks, None)
            if result is None:
                return
            timing = {"decode": decode_ms, "segment": _ms(start)}
            frame = self._frame(state, display, result, timing, start)
            if frame.stage == "final":
                self.cache.put(self.key(state), frame)
            yield frame
