"""Active contours ("snakes"): an ellipse that contracts onto the edges of a structure.

scikit-image's :func:`skimage.segmentation.active_contour` is the engine; how it is called so it
runs in tens of milliseconds is in :mod:`segmentation.snake_engine`. ``preview`` draws the
initial ellipse only (instant feedback while a slider moves); ``evolve`` yields the contour
every ``CHUNK`` iterations so a stream can show it converging; ``segment`` is ``evolve`` run to
the end.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segmentation.base import (
    EvolvingAlgorithm,
    SegmentationResult,
    Spacing,
    Stage,
    base_overlay,
    check_inputs,
    check_kernel_fits,
)
from segmentation.contour import (
    check_contour,
    clip_to_image,
    contour_stats,
    draw_closed,
    ellipse,
)
from segmentation.params import Params, param
from segmentation.preprocess import kernel_size_param
from segmentation.snake_engine import evolve_contour, grow

__all__ = ["SnakeParams", "Snakes"]

_COORDINATE_MAX = 4095
_RADIUS_MAX = 1024


@dataclass(frozen=True)
class SnakeParams(Params):
    x: int = param(
        100,
        minimum=0,
        maximum=_COORDINATE_MAX,
        step=1,
        label="Centre x",
        description="Column of the initial ellipse's centre, in image pixels.",
    )
    y: int = param(
        100,
        minimum=0,
        maximum=_COORDINATE_MAX,
        step=1,
        label="Centre y",
        description="Row of the initial ellipse's centre, in image pixels.",
    )
    radius: int = param(
        50,
        minimum=1,
        maximum=_RADIUS_MAX,
        step=1,
        label="Radius",
        description="Horizontal radius of the initial ellipse in pixels; start outside the object.",
    )
    radius_y: int = param(
        0,
        minimum=0,
        maximum=_RADIUS_MAX,
        step=1,
        label="Radius y",
        description="Vertical radius of the initial ellipse in pixels; 0 = same as radius.",
    )
    alpha: float = param(
        0.015,
        minimum=0.0,
        maximum=1.0,
        step=0.001,
        label="Alpha (length)",
        description="Length (tension) weight: higher values make the snake contract harder.",
    )
    beta: float = param(
        10.0,
        minimum=0.0,
        maximum=100.0,
        step=0.5,
        label="Beta (smoothness)",
        description="Bending weight: higher values keep the contour smoother and rounder.",
    )
    gamma: float = param(
        0.001,
        minimum=0.0001,
        maximum=0.1,
        step=0.0001,
        label="Gamma (step)",
        description="Explicit time-step parameter; smaller values take larger steps.",
    )
    w_line: float = param(
        0.0,
        minimum=-5.0,
        maximum=5.0,
        step=0.1,
        label="Line weight",
        description="Attraction to brightness; negative values attract to dark regions.",
    )
    w_edge: float = param(
        1.0,
        minimum=-5.0,
        maximum=5.0,
        step=0.1,
        label="Edge weight",
        description="Attraction to edges; negative values repel the snake from edges.",
    )
    max_num_iter: int = param(
        2500,
        minimum=1,
        maximum=5000,
        step=1,
        label="Max iterations",
        description="Upper bound on iterations, counted over all chunks and stages.",
    )
    convergence: float = param(
        0.1,
        minimum=0.0,
        maximum=10.0,
        step=0.01,
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


class Snakes(EvolvingAlgorithm):
    """Fits a closed contour to the edges around an initial ellipse and outlines it in red."""

    name = "snakes"
    label = "Active contour (snake)"
    description = (
        "Contracts an initial ellipse onto the edges of the structure it surrounds "
        "(scikit-image active_contour)."
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

    def preview(
        self,
        gray: NDArray[np.uint8],
        params: Params,
        *,
        spacing: Sequence[float] | None = None,
        background: NDArray[np.uint8] | None = None,
    ) -> SegmentationResult:
        """The initial ellipse, clipped to the image, drawn on the image (stage "preview").

        Costs well under a millisecond on a 512×512 slice: no smoothing, no fitting.
        """
        p = self._own_params(params, SnakeParams)
        gray, checked_spacing, background = check_inputs(gray, spacing, background)
        _check_against_image(p, gray.shape)
        start = _start(p, gray.shape, None)
        return _result(gray, background, start, checked_spacing, 0, "preview")

    def evolve(
        self,
        gray: NDArray[np.uint8],
        params: Params,
        *,
        spacing: Sequence[float] | None = None,
        background: NDArray[np.uint8] | None = None,
        init: NDArray[np.floating[Any]] | None = None,
    ) -> Generator[SegmentationResult, None, None]:
        """Yield the contour every few dozen iterations ("evolving"), then a "final" result.

        Arguments are checked when ``evolve`` is called (it returns a generator but is not
        one), so a bad parameter raises at the call; the work then runs one chunk per
        ``next()``.

        Parameters
        ----------
        init : ndarray of shape (K, 2), optional
            Warm start: a previous contour in (row, col) image pixels, used (slightly
            enlarged) instead of the ellipse given by ``x``, ``y``, ``radius``.
        """
        p = self._own_params(params, SnakeParams)
        gray, checked_spacing, background = check_inputs(gray, spacing, background)
        _check_against_image(p, gray.shape)
        start = _start(p, gray.shape, init)
        return _evolve(gray, p, start, checked_spacing, background)

    def segment(
        self,
        gray: NDArray[np.uint8],
        params: Params,
        *,
        spacing: Sequence[float] | None = None,
        background: NDArray[np.uint8] | None = None,
        init: NDArray[np.floating[Any]] | None = None,
    ) -> SegmentationResult:
        """Run the snake to convergence (or ``max_num_iter``) and return the final result.

        The same computation as running :meth:`evolve` to its end; ``init`` is the same
        optional warm start.

        Returns
        -------
        SegmentationResult
            ``overlay`` with the contour as a closed red polyline, ``contour`` (K, 2) (row,
            col) points, and ``stats``: ``area_px``, ``area_mm2``, ``perimeter_px``,
            ``perimeter_mm``, ``centroid_x``, ``centroid_y``, ``iterations``.
        """
        p = self._own_params(params, SnakeParams)
        gray, checked_spacing, background = check_inputs(gray, spacing, background)
        _check_against_image(p, gray.shape)
        (last,) = deque(evolve_contour(gray, p, _start(p, gray.shape, init)), maxlen=1)
        assert last.final  # evolve_contour always ends with a final step
        return _result(gray, background, last.contour, checked_spacing, last.iterations, "final")


def _start(
    p: SnakeParams, shape: tuple[int, ...], init: NDArray[np.floating[Any]] | None
) -> NDArray[np.float64]:
    """The initial contour: the parameters' ellipse clipped to the image, or a warm start."""
    if init is None:
        return clip_to_image(ellipse((p.y, p.x), p.radii), shape)
    return grow(check_contour(init), shape)


def _evolve(
    gray: NDArray[np.uint8],
    p: SnakeParams,
    start: NDArray[np.float64],
    spacing: Spacing | None,
    background: NDArray[np.uint8] | None,
) -> Generator[SegmentationResult, None, None]:
    for step in evolve_contour(gray, p, start):
        stage: Stage = "final" if step.final else "evolving"
        yield _result(gray, background, step.contour, spacing, step.iterations, stage)


def _result(
    gray: NDArray[np.uint8],
    background: NDArray[np.uint8] | None,
    contour: NDArray[np.float64],
    spacing: Spacing | None,
    iterations: int,
    stage: Stage,
) -> SegmentationResult:
    overlay = base_overlay(gray, background)
    draw_closed(overlay, contour)
    return SegmentationResult(overlay, contour_stats(contour, spacing, iterations), contour, stage)


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
