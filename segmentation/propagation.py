"""Following a structure through a series: one click on one slice, every slice it spans.

:func:`propagate` segments the clicked slice with any click algorithm (one whose parameters
have ``x`` and ``y``), then walks to each neighbour in both directions. Each neighbour is
seeded from the slice before it (:func:`reseed`):

* the click moves to the previous region's *deepest* point (the maximum of its distance
  transform): the point furthest from its border, so the most likely to lie inside the same
  structure on the next slice, even as the structure shifts and shrinks;
* an automatic tolerance (0) is replaced by the one the seed slice chose, so every slice is
  grown with the same statistics and the border means the same thing throughout;
* algorithms that can warm-start (snakes) get the previous contour as ``init``.

A neighbour's region is then kept within ``max_step_mm`` of the previous one (organs change
shape slowly from slice to slice; what appears further away is a neighbour the region leaked
into); when the grown region was much larger than that (``LEAKED_RATIO``: it ran on into a
neighbour), within ``CREEP_MM`` only, or it would creep a step further into the neighbour on
every slice. The walk stops where the structure ends (:func:`continues`): no values like the
structure's left under the previous region, nothing found, too little of the new region over
the previous one, or an area that collapses or explodes.

Pure: the slices come from a callable, and work may go to a caller's executor. The two
directions are independent, so with an executor they run at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from segmentation.base import Algorithm, EvolvingAlgorithm, SegmentationResult, StatValue
from segmentation.params import Params

__all__ = [
    "MIN_OVERLAP",
    "NothingFound",
    "Propagation",
    "SliceResult",
    "SliceSource",
    "continues",
    "deepest_point",
    "follow_slice",
    "reach_px",
    "reference_of",
    "is_click_algorithm",
    "propagate",
    "reseed",
    "seed_point",
    "similar_share",
]

#: At least this fraction of the new region (or of the previous one, whichever is smaller)
#: must lie over the previous slice's region: otherwise it is another structure.
MIN_OVERLAP = 0.5
#: A slice whose area is below this fraction of the previous one's ends the structure ...
MIN_AREA_RATIO = 0.1
#: ... and one above this multiple of it has leaked into a neighbour.
MAX_AREA_RATIO = 3.0
#: How far (mm) a region's border may move from one slice to the next.
MAX_STEP_MM = 6.0
KEEP_TOLERANCE = True
#: A region this many times larger than its part near the previous slice's has leaked into
#: a neighbour: then it may reach only ``CREEP_MM`` beyond the previous region.
LEAKED_RATIO = 1.2
CREEP_MM = 1.0
#: Seed on pixels within this many SD of the structure's mean ...
SEED_K = 1.0
#: ... when at least this share of the previous region qualifies.
SEED_MIN_SHARE = 0.05

#: (gray, values) of a slice: the display image and its modality values (None: use gray).
SliceSource = Callable[[int], tuple[NDArray[np.uint8], NDArray[Any] | None]]


class NothingFound(ValueError):
    """The click found no structure on its slice (the message says where)."""


@dataclass(frozen=True)
class SliceResult:
    """One slice of a propagation: its index, region, the parameters used and the stats."""

    index: int
    mask: NDArray[np.bool_]
    params: Params
    stats: dict[str, StatValue]

    @property
    def area_px(self) -> int:
        return int(np.count_nonzero(self.mask))


@dataclass(frozen=True)
class Propagation:
    """The slices a structure spans, ascending by index, and why each direction stopped.

    ``slices`` holds only slices where the structure was found (contiguous indices around
    ``start``). ``stopped`` maps ``"down"`` (towards index 0) and ``"up"`` to a sentence.
    """

    start: int
    slice_count: int
    shape: tuple[int, int]
    slices: tuple[SliceResult, ...]
    stopped: dict[str, str]

    def volume_mask(self) -> NDArray[np.bool_]:
        """The regions as one (slice_count, M, N) bool array; False on slices not covered."""
        out = np.zeros((self.slice_count, *self.shape), bool)
        for s in self.slices:
            out[s.index] = s.mask
        return out

    @property
    def indices(self) -> list[int]:
        return [s.index for s in self.slices]


def is_click_algorithm(algorithm: Algorithm) -> bool:
    """Whether the algorithm starts from a click: its parameters have ``x`` and ``y``."""
    names = {f.name for f in dataclasses.fields(algorithm.params_type)}
    return {"x", "y"} <= names


def deepest_point(mask: NDArray[np.bool_]) -> tuple[int, int]:
    """(row, col) of the pixel of ``mask`` furthest from its border (``mask`` not empty)."""
    padded = np.pad(mask.view(np.uint8), 1)
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return int(row), int(col)


def _similar(
    previous: NDArray[np.bool_], values: NDArray[Any], reference: tuple[float, float]
) -> NDArray[np.bool_]:
    mean, sd = reference
    smooth = cv2.GaussianBlur(np.asarray(values, dtype=np.float32), (3, 3), 0)
    return np.asarray(previous & (np.abs(smooth - mean) <= SEED_K * max(sd, 1e-3)))


def similar_share(
    previous: NDArray[np.bool_], values: NDArray[Any] | None, reference: tuple[float, float] | None
) -> float | None:
    """The share of ``previous`` whose values here lie within ``SEED_K`` SD of ``reference``.

    Below ``SEED_MIN_SHARE`` the structure is no longer under the previous region (None:
    unknown, without values or a reference).
    """
    if values is None or reference is None or not previous.any():
        return None
    return np.count_nonzero(_similar(previous, values, reference)) / np.count_nonzero(previous)


def seed_point(
    previous: NDArray[np.bool_],
    values: NDArray[Any] | None,
    reference: tuple[float, float] | None,
) -> tuple[int, int]:
    """Where to click on the next slice: inside ``previous``, on values like the structure's.

    The deepest point of the pixels of ``previous`` whose (lightly smoothed) ``values`` lie
    within ``SEED_K`` SD of the structure's ``reference`` (mean, SD): a structure with an
    inner part of other values (a kidney's sinus, a vessel in the liver) is not clicked there.
    Without values, or when too few pixels qualify, the deepest point of ``previous``.
    """
    if values is not None and reference is not None:
        similar = _similar(previous, values, reference)
        if np.count_nonzero(similar) >= SEED_MIN_SHARE * np.count_nonzero(previous):
            return deepest_point(similar)
    return deepest_point(previous)


def reseed(
    algorithm: Algorithm,
    params: Params,
    previous: SliceResult,
    *,
    values: NDArray[Any] | None = None,
    reference: tuple[float, float] | None = None,
    keep_tolerance: bool = True,
) -> Params:
    """The parameters for the next slice: ``params`` clicked inside ``previous``.

    The click is :func:`seed_point` (``values`` are the next slice's, ``reference`` the
    structure's mean and SD). With ``keep_tolerance``, an automatic ``tolerance`` (0) becomes
    the one ``previous`` used (its ``stats["tolerance"]``), so every slice is grown alike.
    """
    row, col = seed_point(previous.mask, values, reference)
    changes: dict[str, object] = {"x": col, "y": row}
    chosen = previous.stats.get("tolerance")
    if (
        keep_tolerance
        and getattr(params, "tolerance", None) == 0
        and isinstance(chosen, int | float)
        and not isinstance(chosen, bool)
        and chosen > 0
    ):
        changes["tolerance"] = float(chosen)
    return algorithm.parse_params({**params.to_json(), **changes})


def continues(mask: NDArray[np.bool_], previous: NDArray[np.bool_]) -> str | None:
    """Why ``mask`` does not continue ``previous`` (a sentence), or None when it does."""
    area, before = int(np.count_nonzero(mask)), int(np.count_nonzero(previous))
    if area == 0:
        return "nothing found"
    if area < MIN_AREA_RATIO * before:
        return f"the area collapsed ({area} px after {before} px)"
    if area > MAX_AREA_RATIO * before:
        return f"the area exploded ({area} px after {before} px)"
    overlap = int(np.count_nonzero(mask & previous))
    if overlap < MIN_OVERLAP * min(area, before):
        return f"too little overlap with the previous slice ({overlap} of {area} px)"
    return None


def propagate(
    source: SliceSource,
    slice_count: int,
    start: int,
    algorithm: Algorithm,
    params: Params,
    *,
    spacing: Sequence[float] | None = None,
    through: bool = True,
    max_step_mm: float = MAX_STEP_MM,
    executor: Executor | None = None,
    on_slice: Callable[[SliceResult], None] | None = None,
) -> Propagation:
    """Segment slice ``start`` from ``params``, then (``through``) each neighbour in turn.

    Parameters
    ----------
    source : callable
        ``source(index) -> (gray, values)``: slice ``index``'s display image (uint8, (M, N))
        and its modality values (or None). Called once per slice visited, possibly from two
        threads at once when ``executor`` is given.
    slice_count : int
        Number of slices; indices are ``0 .. slice_count - 1`` in display order.
    start : int
        The slice the click is on.
    algorithm, params
        A click algorithm (see :func:`is_click_algorithm`) and its parameters for ``start``.
    spacing : (float, float), optional
        (row, col) mm per pixel, passed to the algorithm and used for ``max_step_mm``.
    through : bool
        False segments ``start`` only.
    max_step_mm : float
        How far a region may reach beyond the previous slice's (pixels without ``spacing``).
    executor : Executor, optional
        Runs the two directions (at once, given two workers); without it they run in the
        calling thread. It must not be the executor running this call (it waits for them).
    on_slice : callable, optional
        Called with each slice's result as it is found (progress), from the working thread.

    Returns
    -------
    Propagation

    Raises
    ------
    ValueError
        Not a click algorithm, ``start`` out of range, parameters that do not fit the image,
        or (:class:`NothingFound`) nothing found on ``start`` (the message says where).
    """
    if not is_click_algorithm(algorithm):
        raise ValueError(
            f"algorithm must be a click algorithm (with x and y), got {algorithm.name!r}"
        )
    if slice_count < 1:
        raise ValueError(f"slice_count must be at least 1, got {slice_count}")
    if not 0 <= start < slice_count:
        raise ValueError(f"start must be between 0 and {slice_count - 1}, got {start}")
    if not max_step_mm > 0:
        raise ValueError(f"max_step_mm must be positive, got {max_step_mm}")
    gray, values = source(start)
    result = _segment(algorithm, params, gray, values, spacing, None)
    if result.mask is None or not result.stats.get("found", False):
        x, y = getattr(params, "x"), getattr(params, "y")  # noqa: B009 - checked above
        raise NothingFound(f"nothing found at ({x}, {y}) on slice {start}")
    first = SliceResult(start, result.mask, params, result.stats)
    if on_slice is not None:
        on_slice(first)
    shape = (int(gray.shape[0]), int(gray.shape[1]))
    stopped: dict[str, str] = {}
    if not through:
        stopped = {"down": "one slice only", "up": "one slice only"}
        return Propagation(start, slice_count, shape, (first,), stopped)
    reach = reach_px(spacing, max_step_mm)

    def walk(step: int) -> tuple[list[SliceResult], str]:
        return _walk(source, slice_count, first, step, algorithm, spacing, reach, on_slice)

    if executor is None:
        down, down_reason = walk(-1)
        up, up_reason = walk(+1)
    else:
        down_future, up_future = executor.submit(walk, -1), executor.submit(walk, +1)
        down, down_reason = down_future.result()
        up, up_reason = up_future.result()
    stopped = {"down": down_reason, "up": up_reason}
    ordered = (*reversed(down), first, *up)
    return Propagation(start, slice_count, shape, ordered, stopped)


def reach_px(spacing: Sequence[float] | None, max_step_mm: float = MAX_STEP_MM) -> int:
    """``max_step_mm`` in pixels of this spacing (pixels themselves without spacing)."""
    pixel_mm = 1.0 if spacing is None else float(np.sqrt(float(spacing[0]) * float(spacing[1])))
    return max(1, round(max_step_mm / pixel_mm))


def reference_of(stats: Mapping[str, StatValue]) -> tuple[float, float] | None:
    """The structure's (mean, SD) from a click algorithm's stats, if it has them."""
    mean, sd = stats.get("mean"), stats.get("sd")
    if isinstance(mean, float) and isinstance(sd, float):
        return float(mean), float(sd)
    return None


def follow_slice(
    algorithm: Algorithm,
    clicked: Params,
    previous: SliceResult,
    index: int,
    gray: NDArray[np.uint8],
    values: NDArray[Any] | None,
    *,
    spacing: Sequence[float] | None,
    reference: tuple[float, float] | None,
    reach: int,
) -> tuple[SliceResult | None, str | None, SegmentationResult | None]:
    """Segment slice ``index`` seeded from its neighbour ``previous``.

    Returns (the slice's result, None) when the structure continues there, or (None, why
    not); and the algorithm's own result (for its overlay and stats; None when the values
    under ``previous`` already show the structure has ended, and nothing was segmented).
    ``clicked`` are the parameters of the first slice, ``reference`` its (mean, SD),
    ``reach`` how far (px) the region may reach beyond ``previous``.
    """
    share = similar_share(previous.mask, values, reference)
    if share is not None and share < SEED_MIN_SHARE:
        return None, "no values like the structure's under the previous region", None
    params = reseed(
        algorithm,
        clicked,
        previous,
        values=values,
        reference=reference,
        keep_tolerance=KEEP_TOLERANCE,
    )
    init = _contour_xy(previous) if isinstance(algorithm, EvolvingAlgorithm) else None
    result = _segment(algorithm, params, gray, values, spacing, init)
    if result.mask is None or not result.stats.get("found", False):
        return None, "nothing found", result
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    near = cv2.dilate(previous.mask.view(np.uint8), kernel).view(bool)
    mask = result.mask & near
    if LEAKED_RATIO > 0 and np.count_nonzero(result.mask) > LEAKED_RATIO * np.count_nonzero(mask):
        # The region ran on into a neighbour: keep it close to the previous slice's, or it
        # creeps a step further into that neighbour on every slice.
        close = max(1, round(reach * CREEP_MM / MAX_STEP_MM))
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * close + 1, 2 * close + 1))
        mask = mask & cv2.dilate(previous.mask.view(np.uint8), disc).view(bool)
    reason = continues(mask, previous.mask)
    if reason is not None:
        return None, reason, result
    return SliceResult(index, mask, params, result.stats), None, result


def _walk(
    source: SliceSource,
    slice_count: int,
    first: SliceResult,
    step: int,
    algorithm: Algorithm,
    spacing: Sequence[float] | None,
    reach: int,
    on_slice: Callable[[SliceResult], None] | None,
) -> tuple[list[SliceResult], str]:
    """Slices from ``first`` in direction ``step`` until the structure ends; and why it did."""
    found: list[SliceResult] = []
    previous = first
    reference = reference_of(first.stats)
    index = first.index + step
    while 0 <= index < slice_count:
        gray, values = source(index)
        current, reason, _ = follow_slice(
            algorithm,
            first.params,
            previous,
            index,
            gray,
            values,
            spacing=spacing,
            reference=reference,
            reach=reach,
        )
        if current is None:
            return found, f"{reason} on slice {index}"
        found.append(current)
        if on_slice is not None:
            on_slice(current)
        previous = current
        index += step
    return found, "the series ends"


def _segment(
    algorithm: Algorithm,
    params: Params,
    gray: NDArray[np.uint8],
    values: NDArray[Any] | None,
    spacing: Sequence[float] | None,
    init: NDArray[np.float64] | None,
) -> SegmentationResult:
    if isinstance(algorithm, EvolvingAlgorithm):
        return algorithm.segment(gray, params, spacing=spacing, values=values, init=init)
    return algorithm.segment(gray, params, spacing=spacing, values=values)


def _contour_xy(previous: SliceResult) -> NDArray[np.float64] | None:
    """The previous region's largest outer boundary as (row, col) points, or None."""
    from segmentation.masks import mask_contour

    return mask_contour(previous.mask)
