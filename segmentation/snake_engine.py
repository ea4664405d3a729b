"""How snakes are run fast: scikit-image's ``active_contour`` on a small working frame, in chunks.

``active_contour`` fits a spline to the whole image it is given and, every iteration,
differentiates that spline, so its cost grows with the image; the older service called it on
the full 512×512 slice with 400 points for 2,500 iterations (seconds per slice). Here:

* **Working frame.** Only the region around the contour is used, smoothed with the shared
  preprocessing and resampled so its long side is ``WORK_SIZE`` px (down for large regions, up,
  at most ``MAX_UPSCALE``×, for small ones). Every structure is thus solved at the same working
  size, which makes cost and parameter behaviour independent of the object's size in pixels.
  A light Gaussian (``WORK_SIGMA``) widens the edges' capture range and keeps pixel noise
  from holding single points.
* **Point count.** Points are ``POINT_SPACING`` working px apart. ``alpha`` and ``beta`` are
  rescaled from the actual spacing to ``REFERENCE_SPACING`` so the internal forces do not
  depend on how many points a contour happens to get.
* **Chunks and convergence.** ``active_contour`` runs ``CHUNK`` iterations at a time, restarting
  from where the last chunk stopped. Between chunks the contour is compared with the two
  previous chunk ends, and the run stops when every point lies within ``convergence`` working
  px per 10 iterations of one of them (scikit-image's tolerance, scaled to the chunk). It is a
  shape test: points sliding along a settled contour do not keep it running. scikit-image's
  own test is disabled (``convergence=0``), so iteration counts are exact. Each chunk is one
  ``next()`` of :func:`evolve_contour`, which is what lets the stream show the snake moving.
* **Small steps.** ``max_px_move`` is ``MAX_PX_MOVE`` (half scikit-image's default), so points
  do not jump across the narrow ridge of an edge.
* **Refinement.** When the working frame is coarser than the image, a last stage (at most
  ``FINE_MAX_ITER`` iterations) refines the contour at full resolution on a crop around it
  (blurred by ``FINE_SIGMA`` so the edges reach the few pixels the coarse contour may be
  off), so the result is accurate to the image's pixels, not the working frame's.
* **Warm start.** A previous contour (e.g. the neighbouring slice's) can replace the initial
  ellipse; it starts next to the answer and converges in a few chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from skimage.segmentation import active_contour

from segmentation.contour import (
    clip_to_image,
    distance_to_polygon,
    perimeter,
    remove_loops,
    resample_closed,
)

__all__ = ["SnakeStep", "SolverParams", "evolve_contour", "grow"]

WORK_SIZE = 96
MAX_UPSCALE = 4.0
WORK_SIGMA = 1.0  # working px
# Image px. The refinement starts up to ~1.5 working px (≈ 3-4 image px) off the edge; a 3 px
# blur lets the edge reach it without moving the edge (a symmetric blur keeps the ridge on it).
FINE_SIGMA = 3.0
POINT_SPACING = 3.0
REFERENCE_SPACING = 1.5
# active_contour inverts an n×n matrix per call. OpenBLAS's multithreaded inverse, used above
# about 96 points, was measured at 50-70 ms per call on a loaded 2-core machine (0.4 ms below),
# so contours never get more points than that; 96 points on a 500 px outline are still < 6 px
# apart.
MIN_POINTS, MAX_POINTS = 16, 96
MAX_PX_MOVE = 0.5
CHUNK = 30
FINE_MAX_ITER = 150
WARM_START_GROWTH = 3.0  # px (plus 5 % of the size) a warm start is enlarged before contracting


@dataclass(frozen=True)
class SolverParams:
    """What the solver needs of a snake's parameters (scikit-image ``active_contour``'s names)."""

    alpha: float
    beta: float
    gamma: float
    w_line: float
    w_edge: float
    max_num_iter: int
    convergence: float


@dataclass(frozen=True)
class SnakeStep:
    """The contour after one chunk: full-image (row, col) points and iterations so far."""

    contour: NDArray[np.float64]
    iterations: int
    final: bool


@dataclass(frozen=True)
class _Frame:
    """A preprocessed crop of the image, resampled; maps points to and from image pixels."""

    image: NDArray[np.float32]
    origin: NDArray[np.float64]  # (row, col) of the crop's first pixel in the image
    scale: NDArray[np.float64]  # working pixels per image pixel, (row, col)

    def to_frame(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        return (points - self.origin + 0.5) * self.scale - 0.5

    def to_image(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        return (points + 0.5) / self.scale - 0.5 + self.origin

    @property
    def coarser_than_image(self) -> bool:
        return bool(self.scale.min() < 1.0)


def _frame(
    image: NDArray[np.float32],
    contour: NDArray[np.float64],
    margin: int,
    work_size: int | None,
    fine_sigma: float = FINE_SIGMA,
) -> _Frame:
    h, w = image.shape
    r0 = max(0, int(np.floor(contour[:, 0].min())) - margin)
    r1 = min(h, int(np.ceil(contour[:, 0].max())) + margin + 1)
    c0 = max(0, int(np.floor(contour[:, 1].min())) - margin)
    c1 = min(w, int(np.ceil(contour[:, 1].max())) + margin + 1)
    crop = image[r0:r1, c0:c1]
    if work_size is None:
        resized = crop
    else:
        factor = min(MAX_UPSCALE, work_size / max(crop.shape))
        size = (max(4, round(crop.shape[1] * factor)), max(4, round(crop.shape[0] * factor)))
        method = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(crop, size, interpolation=method)
    sigma = WORK_SIGMA if work_size is not None else fine_sigma
    blurred = cv2.GaussianBlur(resized, (0, 0), sigma)
    scale = np.array([blurred.shape[0] / crop.shape[0], blurred.shape[1] / crop.shape[1]])
    return _Frame(blurred, np.array([r0, c0], dtype=np.float64), scale)


def _run(
    frame: _Frame, start: NDArray[np.float64], p: SolverParams, budget: int
) -> Iterator[tuple[NDArray[np.float64], int, bool]]:
    """Chunks of ``active_contour`` in ``frame``: (image-space contour, iterations, stage done)."""
    snake = frame.to_frame(start)
    n_points = int(np.clip(round(perimeter(snake) / POINT_SPACING), MIN_POINTS, MAX_POINTS))
    snake = resample_closed(snake, n_points)
    spacing = max(perimeter(snake) / n_points, 1e-3)
    alpha = p.alpha * (REFERENCE_SPACING / spacing) ** 2
    beta = p.beta * (REFERENCE_SPACING / spacing) ** 4
    upper = np.array([frame.image.shape[0] - 1, frame.image.shape[1] - 1], dtype=np.float64)
    history = [snake]
    done = 0
    while done < budget:
        chunk = min(CHUNK, budget - done)
        moved = active_contour(
            frame.image,
            snake,
            alpha=alpha,
            beta=beta,
            gamma=p.gamma,
            w_line=p.w_line,
            w_edge=p.w_edge,
            max_px_move=MAX_PX_MOVE,
            max_num_iter=chunk,
            convergence=0.0,  # never stop inside a chunk; convergence is judged below
        )
        snake = np.clip(moved.astype(np.float64), 0.0, upper)
        done += chunk
        # Shape change, not point motion: points sliding along a settled contour do not count.
        # Comparing with two earlier chunk ends also accepts a contour flickering between two.
        tolerance = p.convergence * chunk / 10
        converged = any(distance_to_polygon(snake, old).max() < tolerance for old in history[-2:])
        history = [history[-1], snake]
        yield frame.to_image(snake), done, converged or done >= budget
        if converged:
            return


def evolve_contour(
    image: NDArray[np.float32],
    p: SolverParams,
    start: NDArray[np.float64],
    margin: int,
    reach: NDArray[np.float64] | None = None,
    fine_sigma: float = FINE_SIGMA,
) -> Iterator[SnakeStep]:
    """Evolve ``start`` ((K, 2) image (row, col) points) chunk by chunk; the last step is final.

    ``image`` is the (preprocessed) float image ``active_contour`` follows, with ``p.w_line``
    and ``p.w_edge``; ``margin`` is how many image px around the contour it may use (the
    caller's smoothing kernel plus room to move). ``reach``, (row, col) points, widens the
    working frame to include them: where a growing snake is expected to go. ``image`` and
    ``start`` are not modified. ``fine_sigma`` is the refinement's blur in image px (an
    image whose ridge is already where the contour belongs needs less than edges do). Every
    step's contour lies inside the image.
    """
    covered = start if reach is None else np.vstack([start, reach])
    extent = float(np.ptp(covered, axis=0).max())
    coarse = _frame(image, covered, margin + 4 + int(0.05 * extent), WORK_SIZE)
    contour = start
    iterations = 0
    for contour, iterations, stage_done in _run(coarse, start, p, p.max_num_iter):
        refine = stage_done and coarse.coarser_than_image and iterations < p.max_num_iter
        final = stage_done and not refine
        yield _step(contour, image.shape, iterations, final)
        if refine:
            break
    else:
        return
    contour = remove_loops(contour)
    # The margin keeps the crop's border (where the blur reflects) clear of the contour.
    fine = _frame(image, contour, margin + int(2 * fine_sigma) + 4, None, fine_sigma)
    budget = min(FINE_MAX_ITER, p.max_num_iter - iterations)
    for refined, fine_iterations, stage_done in _run(fine, contour, p, budget):
        yield _step(refined, image.shape, iterations + fine_iterations, stage_done)


def _step(
    contour: NDArray[np.float64], shape: tuple[int, ...], iterations: int, final: bool
) -> SnakeStep:
    if final:  # intermediate steps are shown as they are; the result must not be tangled
        contour = remove_loops(contour)
    return SnakeStep(clip_to_image(contour, shape), iterations, final)


def grow(contour: NDArray[np.float64], shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Enlarge a warm-start contour about its centre, so it can contract onto a grown object."""
    centre = contour.mean(axis=0)
    offsets = contour - centre
    radius = float(np.hypot(offsets[:, 0], offsets[:, 1]).mean())
    if radius < 1e-6:
        return clip_to_image(contour, shape)
    factor = 1.0 + (WARM_START_GROWTH + 0.05 * radius) / radius
    return clip_to_image(centre + offsets * factor, shape)
