"""Active contours ("snakes"): a contour that grows or contracts onto a structure's border.

A click (``x``, ``y``) with an ellipse (``radius``, ``radius_y``) starts it. The structure under
the click is first found by region growing (:func:`segmentation.region_grow.grow_region`, on
the modality ``values`` when given); the snake then moves under a *pressure* toward that
region's border: outward where it is inside the region, inward where it is outside. A small
circle inside an organ therefore grows out to the organ's border, and an ellipse drawn around
it contracts onto the border instead of stopping on the first weak edge. The usual internal
forces (``alpha`` length, ``beta`` bending) keep it smooth. When region growing finds nothing
plausible, the snake falls back to the classic edge-following snake of the older service
(``w_line``, ``w_edge`` on the smoothed image).

scikit-image's :func:`skimage.segmentation.active_contour` is the engine; how it is called so it
runs in tens of milliseconds is in :mod:`segmentation.snake_engine`. ``preview`` draws the
initial ellipse only (instant feedback while a slider moves); ``evolve`` yields the contour
every ``CHUNK`` iterations so a stream can show it converging; ``segment`` is ``evolve`` run to
the end.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.base import (
    EvolvingAlgorithm,
    Inputs,
    SegmentationResult,
    Stage,
    check_kernel_fits,
)
from segmentation.contour import (
    check_contour,
    clip_to_image,
    contour_stats,
    draw_closed,
    ellipse,
)
from segmentation.masks import (
    MIN_AREA_PX,
    mask_contour,
    mask_stats,
    not_found_reason,
    polygon_mask,
)
from segmentation.params import Params, param
from segmentation.preprocess import kernel_size_param, smooth
from segmentation.region_grow import grow_region
from segmentation.snake_engine import SolverParams, evolve_contour, grow

__all__ = ["SnakeParams", "Snakes"]

_COORDINATE_MAX = 4095
_RADIUS_MAX = 1024
#: Slope of the pressure well per image pixel of distance from the structure's border, far
#: from it; near it the well is rounded over ``WELL_PX`` px so the pull fades to 0 there.
PRESSURE_SLOPE = 1.0
WELL_PX = 2.0
#: The refinement's blur (image px) of the pressure well, whose bottom is on the border.
PRESSURE_FINE_SIGMA = 1.0
#: Iterations of the settling pass after the pressure run (points spread evenly again).
SETTLE_ITER = 30
#: Smoothing (in outline points, about pixels) of the region's outline the snake starts from.
OUTLINE_SIGMA = 2.0
#: A start whose smaller radius is at least this many mm is an ellipse drawn around a
#: structure (a 12 mm tumour's, with the usual margin, is about 8 mm); smaller ones are a
#: click inside it.
AROUND_MM = 7.0
#: From an ellipse, the structure is a grown region at least this fraction inside it.
AROUND_INSIDE = 0.8
#: ... and the largest such region wins; one filling this fraction of the ellipse stops the
#: search (the structure an ellipse is drawn around fills a good part of it).
AROUND_FILL = 0.3
#: Where seeds are tried inside an ellipse drawn around a structure, as fractions of its
#: radii: the centre first, then eight points at a third of the way out.
_SEED_OFFSETS = ((0.0, 0.0),) + tuple(
    (0.33 * float(np.sin(a)), 0.33 * float(np.cos(a)))
    for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)
)


@dataclass(frozen=True)
class SnakeParams(Params):
    x: int = param(
        100,
        minimum=0,
        maximum=_COORDINATE_MAX,
        step=1,
        unit="px",
        label="Centre x",
        description="Column of the initial ellipse's centre, in image pixels.",
    )
    y: int = param(
        100,
        minimum=0,
        maximum=_COORDINATE_MAX,
        step=1,
        unit="px",
        label="Centre y",
        description="Row of the initial ellipse's centre, in image pixels.",
    )
    radius: int = param(
        50,
        minimum=1,
        maximum=_RADIUS_MAX,
        step=1,
        unit="px",
        label="Radius",
        description="Horizontal radius of the initial ellipse in pixels; start outside the object.",
    )
    radius_y: int = param(
        0,
        minimum=0,
        maximum=_RADIUS_MAX,
        step=1,
        unit="px",
        label="Radius y",
        description="Vertical radius of the initial ellipse in pixels; 0 = same as radius.",
    )
    alpha: float = param(
        0.015,
        minimum=0.0,
        maximum=1.0,
        step=0.001,
        unit="",
        label="Alpha (length)",
        description="Length (tension) weight: higher values make the snake contract harder.",
    )
    beta: float = param(
        10.0,
        minimum=0.0,
        maximum=100.0,
        step=0.5,
        unit="",
        label="Beta (smoothness)",
        description="Bending weight: higher values keep the contour smoother and rounder.",
    )
    gamma: float = param(
        0.001,
        minimum=0.0001,
        maximum=0.1,
        step=0.0001,
        unit="",
        label="Gamma (step)",
        description="Explicit time-step parameter; smaller values take larger steps.",
    )
    w_line: float = param(
        0.0,
        minimum=-5.0,
        maximum=5.0,
        step=0.1,
        unit="",
        label="Line weight",
        description="Attraction to brightness; negative values attract to dark regions.",
    )
    w_edge: float = param(
        1.0,
        minimum=-5.0,
        maximum=5.0,
        step=0.1,
        unit="",
        label="Edge weight",
        description="Attraction to edges; negative values repel the snake from edges.",
    )
    max_num_iter: int = param(
        2500,
        minimum=1,
        maximum=5000,
        step=1,
        unit="",
        label="Max iterations",
        description="Upper bound on iterations, counted over all chunks and stages.",
    )
    convergence: float = param(
        0.1,
        minimum=0.0,
        maximum=10.0,
        step=0.01,
        unit="px",
        label="Convergence",
        description=(
            "Stop once the contour's shape changes by less than this many working-frame "
            "pixels per 10 iterations; 0 always runs max_num_iter."
        ),
    )
    kernel_size: int = kernel_size_param()

    @property
    def radii(self) -> tuple[int, int]:
        """(row, col) radii of the initial ellipse."""
        return (self.radius_y or self.radius, self.radius)

    def solver(self, *, w_line: float | None = None, w_edge: float | None = None) -> SolverParams:
        return SolverParams(
            alpha=self.alpha,
            beta=self.beta,
            gamma=self.gamma,
            w_line=self.w_line if w_line is None else w_line,
            w_edge=self.w_edge if w_edge is None else w_edge,
            max_num_iter=self.max_num_iter,
            convergence=self.convergence,
        )


class Snakes(EvolvingAlgorithm):
    """Fits a closed contour to the structure under the click and outlines it in red."""

    name = "snakes"
    label = "Active contour (snake)"
    description = (
        "Grows or contracts an initial ellipse onto the border of the structure under its "
        "centre (scikit-image active_contour with a region pressure)."
    )
    params_type = SnakeParams

    def default_params(self, shape: tuple[int, ...] | None = None) -> SnakeParams:
        """The older service's defaults (x=100, y=100, radius=50) where they fit the image;
        on a smaller image, a circle around its centre instead."""
        defaults = SnakeParams()
        if shape is None:
            return defaults
        try:
            _check_against_image(defaults, shape)
        except ValueError:
            h, w = shape[:2]
            return replace(defaults, x=(w - 1) // 2, y=(h - 1) // 2, radius=max(1, min(h, w) // 4))
        return defaults

    def check_image(self, params: Params, shape: tuple[int, ...]) -> None:
        _check_against_image(self._own_params(params, SnakeParams), shape)

    def _preview(self, inputs: Inputs, params: Any) -> SegmentationResult:
        """The initial ellipse, clipped to the image, drawn on the image (stage "preview").

        Costs about a millisecond on a 512×512 slice: no smoothing, no fitting.
        """
        p: SnakeParams = params
        start = _start(p, inputs.shape, None)
        return _result(inputs, start, 0, "preview")

    def _evolve(
        self, inputs: Inputs, params: Any, init: NDArray[np.floating[Any]] | None
    ) -> Generator[SegmentationResult, None, None]:
        """Yield the contour every few dozen iterations ("evolving"), then a "final" result.

        ``init`` (K, 2), optional: warm start from a previous contour in (row, col) image
        pixels, used (slightly enlarged) instead of the ellipse; the region is then grown
        from its centre.

        The final result has ``contour`` (K, 2) (row, col) points, ``mask`` (the pixels
        inside it), the contour in red on ``overlay``, and ``stats``: ``found``, ``reason``,
        ``area_px``, ``area_mm2``, ``perimeter_px``, ``perimeter_mm``, ``mean``, ``sd``
        (of ``values`` inside), ``centroid_x``, ``centroid_y``, ``iterations``.
        """
        p: SnakeParams = params
        start = _start(p, inputs.shape, init)  # checks init now, at the call
        return _evolution(inputs, p, start, init is not None)


def _evolution(
    inputs: Inputs, p: SnakeParams, start: NDArray[np.float64], warm: bool
) -> Generator[SegmentationResult, None, None]:
    """The work of ``evolve``, done as it is consumed: the first ``next()`` finds the
    structure (region growing) and runs the first chunk."""
    region = _structure(inputs, p, start, warm)
    image, solver, reach = _potential(region, inputs, p)
    if region is not None:
        start = _from_region(start, region)
    yield from _run(inputs, p, image, solver, start, reach)


def _structure(
    inputs: Inputs, p: SnakeParams, start: NDArray[np.float64], warm: bool
) -> NDArray[np.bool_] | None:
    """The structure the snake is after (region growing), or None when none is plausible.

    From a click (a start smaller than ``AROUND_MM``) or a warm start, it is the region
    grown under the centre. From an ellipse drawn around a structure, it is the grown region
    that lies mostly inside the ellipse, grown *bounded* by it (the largest region of its
    tolerance ladder that stays inside: the user drew how far the structure reaches), the
    largest of those grown from the centre and from points around it (the centre of a
    kidney or of a curved liver may fall in fat, gas or a vessel beside it). The search runs
    on a crop around the ellipse, which is all that matters then.
    """
    h, w = inputs.shape
    centre = start.mean(axis=0) if warm else np.array([p.y, p.x], dtype=np.float64)
    row, col = (int(np.clip(round(v), 0, n - 1)) for v, n in zip(centre, (h, w), strict=True))
    pixel_mm = 1.0 if inputs.spacing is None else min(inputs.spacing)
    radii = np.ptp(start, axis=0) / 2
    if warm or float(radii.min()) * pixel_mm < AROUND_MM:
        region, _ = grow_region(inputs.values, (row, col), inputs.spacing, body=inputs.body)
        return (
            region if not_found_reason(region, inputs.gray, lambda: inputs.body) is None else None
        )
    bound = polygon_mask(start, inputs.shape)
    margin = (radii * 0.5).astype(int) + 2
    r0, c0 = (max(0, int(v)) for v in start.min(axis=0) - margin)
    r1 = min(h, int(start[:, 0].max() + margin[0]) + 1)
    c1 = min(w, int(start[:, 1].max() + margin[1]) + 1)
    crop_values, crop_bound = inputs.values[r0:r1, c0:c1], bound[r0:r1, c0:c1]
    best: NDArray[np.bool_] | None = None
    best_area = 0
    ellipse_area = int(np.count_nonzero(crop_bound))
    for dr, dc in _SEED_OFFSETS:
        seed = (
            int(np.clip(row + dr * radii[0], r0, r1 - 1)) - r0,
            int(np.clip(col + dc * radii[1], c0, c1 - 1)) - c0,
        )
        if not crop_bound[seed]:
            continue
        region, _ = grow_region(crop_values, seed, inputs.spacing, bound=crop_bound)
        area = int(np.count_nonzero(region))
        inside = int(np.count_nonzero(region & crop_bound))
        if area >= MIN_AREA_PX and inside >= AROUND_INSIDE * area and inside > best_area:
            best, best_area = region & crop_bound, inside
            if inside >= AROUND_FILL * ellipse_area:
                break  # a structure that fills the ellipse as drawn around it: that one
    if best is None:
        return None
    region = np.zeros(inputs.shape, bool)
    region[r0:r1, c0:c1] = best
    return region if not_found_reason(region, inputs.gray, lambda: inputs.body) is None else None


def _potential(
    region: NDArray[np.bool_] | None, inputs: Inputs, p: SnakeParams
) -> tuple[NDArray[np.float32], SolverParams, NDArray[np.float64] | None]:
    """The image the snake follows, how, and where it may go.

    With a structure: a pressure potential, minus ``PRESSURE_SLOPE`` × the distance to the
    structure's border, followed as a bright line (``w_line`` 1), so the snake moves toward
    the border from inside and from outside; the working frame must reach the structure's
    bounding box. Without one: the older service's snake, ``w_line`` and ``w_edge`` on the
    smoothed image.
    """
    if region is None:
        gray = smooth(inputs.gray, p.kernel_size).astype(np.float32) / 255.0
        return gray, p.solver(), None
    h, w = inputs.shape
    x, y, bw, bh = cv2.boundingRect(region.view(np.uint8))
    reach = np.array([[y, x], [y + bh - 1, x + bw - 1]], dtype=np.float64)
    # Computed on the structure's box plus what the snake's frames can see of it (they start
    # a few px and 5 % outside it and add the smoothing kernel); flat, never reached, beyond.
    margin = 2 * p.kernel_size + 16 + int(0.15 * max(bw, bh))
    r0, r1, c0, c1 = (
        max(0, y - margin),
        min(h, y + bh + margin),
        max(0, x - margin),
        min(w, x + bw + margin),
    )
    inside = np.ascontiguousarray(region[r0:r1, c0:c1]).view(np.uint8)
    to_border = cv2.distanceTransform(
        inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE
    ) + cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # A smooth well (hyperbolic): the pull fades to 0 at the border instead of flipping sign
    # there, so points settle on it instead of rattling across it.
    border = np.maximum(to_border - 1.0, 0.0)  # 0 on both sides' border pixels
    well = (-PRESSURE_SLOPE * np.sqrt(border * border + WELL_PX * WELL_PX)).astype(np.float32)
    if p.w_line or p.w_edge:
        # The image's own pull, as active_contour would apply it, on top of the pressure:
        # near the border, points settle on the image's edge there.
        crop = np.ascontiguousarray(inputs.gray[r0:r1, c0:c1])
        kernel = min(p.kernel_size, _largest_odd(min(crop.shape)))
        gray = smooth(crop, kernel).astype(np.float32) / 255.0
        gray = cv2.GaussianBlur(gray, (0, 0), 1.0)
        edge = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
        well += p.w_line * gray + p.w_edge * edge
    potential = np.full(inputs.shape, float(well.min()), np.float32)
    potential[r0:r1, c0:c1] = well
    return potential, p.solver(w_line=1.0, w_edge=0.0), reach


def _largest_odd(n: int) -> int:
    return n if n % 2 else n - 1


def _from_region(start: NDArray[np.float64], region: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The snake starts from the outline of the structure found, enlarged a little.

    A snake's bending force grows as its radius shrinks, so a circle of a few pixels cannot
    inflate against it; and a large ellipse pulled toward a structure off its centre folds
    over itself on the far side. Starting from the region-growing outline (enlarged by
    :func:`~segmentation.snake_engine.grow`) and contracting from there reaches the border
    from a click and from an ellipse alike.
    """
    outline = mask_contour(region)
    if outline is None or len(outline) < 3:
        return start
    # The pixel outline is a staircase; smoothed along its length (wrapping round), it is a
    # curve the snake can refine rather than a ragged start it would half keep.
    smoothed = ndimage.gaussian_filter1d(outline, OUTLINE_SIGMA, axis=0, mode="wrap")
    return grow(smoothed, region.shape)


def _start(
    p: SnakeParams, shape: tuple[int, ...], init: NDArray[np.floating[Any]] | None
) -> NDArray[np.float64]:
    """The initial contour: the parameters' ellipse clipped to the image, or a warm start."""
    if init is None:
        return clip_to_image(ellipse((p.y, p.x), p.radii), shape)
    return grow(check_contour(init), shape)


def _run(
    inputs: Inputs,
    p: SnakeParams,
    image: NDArray[np.float32],
    solver: SolverParams,
    start: NDArray[np.float64],
    reach: NDArray[np.float64] | None,
) -> Generator[SegmentationResult, None, None]:
    """The snake's chunks: under pressure toward the structure when there is one, then (or
    else) on the image's own edges with ``w_line`` and ``w_edge``."""
    contour, done = start, 0
    if reach is not None:
        for step in evolve_contour(image, solver, start, p.kernel_size, reach, PRESSURE_FINE_SIGMA):
            contour, done = step.contour, step.iterations
            final = step.final and (SETTLE_ITER == 0 or done >= p.max_num_iter)
            yield _result(inputs, contour, done, "final" if final else "evolving")
            if final:
                return
        # Settle: the same pull again from where it stopped, with points spread evenly along
        # the contour and the internal forces scaled to their new spacing (a contour that
        # grew or shrank a lot has points bunched or stretched, which leaves it ragged).
        solver = replace(solver, max_num_iter=min(SETTLE_ITER, p.max_num_iter - done))
        settle = evolve_contour(image, solver, contour, p.kernel_size, None, PRESSURE_FINE_SIGMA)
        for step in settle:
            stage: Stage = "final" if step.final else "evolving"
            yield _result(inputs, step.contour, done + step.iterations, stage)
        return
    for step in evolve_contour(image, solver, contour, p.kernel_size):
        stage = "final" if step.final else "evolving"
        yield _result(inputs, step.contour, done + step.iterations, stage)


def _result(
    inputs: Inputs, contour: NDArray[np.float64], iterations: int, stage: Stage
) -> SegmentationResult:
    overlay = inputs.overlay()
    draw_closed(overlay, contour)
    mask = polygon_mask(contour, inputs.shape)
    stats = contour_stats(contour, inputs.spacing, iterations)
    reason = not_found_reason(mask, inputs.gray, lambda: inputs.body)
    region = mask_stats(mask, inputs.values, inputs.spacing, reason)
    stats.update({k: region[k] for k in ("found", "reason", "mean", "sd")})
    return SegmentationResult(overlay, stats, contour, stage, mask)


def _check_against_image(p: SnakeParams, shape: tuple[int, ...]) -> None:
    """Parameters that depend on the image: centre inside it, radii no larger than it."""
    h, w = shape[:2]
    size = f"for this {h}×{w} image"
    if p.x > w - 1:
        raise ValueError(f"x must be between 0 and {w - 1} {size}, got {p.x}")
    if p.y > h - 1:
        raise ValueError(f"y must be between 0 and {h - 1} {size}, got {p.y}")
    largest = max(h, w)
    if p.radius > largest:
        raise ValueError(f"radius must be between 1 and {largest} {size}, got {p.radius}")
    if p.radius_y > largest:
        raise ValueError(f"radius_y must be between 0 and {largest} {size}, got {p.radius_y}")
    check_kernel_fits(p.kernel_size, shape)
