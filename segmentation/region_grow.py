"""``region_grow``: the connected region of similar values around a click.

Pipeline (``segment``), all in millimetres through the pixel spacing, so a 3 mm and a 0.7 mm
series behave alike:

1. **Working frame.** Images finer than ``WORK_MM`` per pixel are reduced (area interpolation)
   to about that pixel size: the region's shape is found there, a few times faster, and the
   statistics see the same physical neighbourhood whatever the scanner's resolution.
2. **Denoise.** A Gaussian of ``SIGMA_MM``.
3. **Click statistics.** Median and robust SD (1.4826 × MAD) of the values in a disc of
   ``SEED_MM`` (at least ``SEED_MIN_PX`` working px, so there are enough samples) around the
   click. The median, not the clicked pixel, is the reference: a click that lands on a vessel
   inside the liver still means the liver. When at least ``SEED_WIDE_SHARE`` of a wider disc
   (``SEED_WIDE_MM``) lies within ``SEED_WIDE_K`` SD of that median (a large homogeneous
   structure), the statistics are taken again over those similar values: more samples, a
   steadier spread. The spread is never below ``SPREAD_FLOOR`` of the image's 1-99 % range
   (noise-free images).
4. **Grow.** Pixels within the tolerance of the reference, opened with a disc of ``smoothing``
   / 2 (cuts bridges thinner than ``smoothing`` mm), and the connected piece nearest the click.
5. **Automatic tolerance** (``tolerance`` 0): the tolerance climbs a ladder of ``LADDER`` ×
   the robust SD and stops before the step where the region *leaks*: where more than
   ``LEAK_FRACTION`` of the region's area appears further than ``LEAK_BAND_MM`` from the region
   of the step before, once the region has filled out (grown less than ``LEAK_ACTIVE``× in
   its last step); and before a step whose region would hold most of the body. Growth inside
   and at the border of a structure stays close to it; a leak through a gap floods a
   neighbour far away. Of the levels before the leak, the one
   whose next step adds the smallest fraction of area is kept: the structure is full and its
   border holds there.
   With a ``bound`` (the ellipse a user drew around the structure), the tolerance instead
   climbs ``BOUNDED_LADDER`` × the robust SD, a wider ladder that starts lower, and the
   largest region with at most ``BOUND_OUTSIDE`` of its area outside the bound is kept: the
   bound says how far the structure reaches, which no statistic around a click can say for a
   heterogeneous structure (an enhancing tumour) beside tissue of similar values.
6. **Close and fill.** A closing with the same disc, then holes filled (vessels inside an
   organ). When the working frame was coarser than the image, the border band (about one
   working pixel wide) is then re-decided at the image's own pixels, by nearest side (see
   :func:`_refine`), so the border is as sharp as the image.

Everything is scikit-image / SciPy / OpenCV building blocks; there is no per-pixel Python.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from segmentation.base import Algorithm, Inputs, SegmentationResult
from segmentation.masks import (
    BODY_MIN_FRACTION,
    MAX_BODY_FRACTION,
    draw_mask,
    fill_holes,
    mask_contour,
    mask_stats,
    not_found_reason,
)
from segmentation.params import Params, param

__all__ = ["RegionGrow", "RegionGrowParams", "grow_region"]

_COORDINATE_MAX = 4095
WORK_MM = 1.5
SIGMA_MM = 1.0
SEED_MM = 4.0
SEED_MIN_PX = 3.0
SEED_WIDE_MM = 9.0
SEED_WIDE_K = 2.0
SEED_WIDE_SHARE = 0.85
LADDER = (1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 4.5, 5.0)
LEAK_BAND_MM = 10.0
LEAK_FRACTION = 0.1
SPREAD_FLOOR = 0.01
LEAK_ACTIVE = 2.0
BOUNDED_LADDER = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0, 4.5, 5.0)
BOUND_OUTSIDE = 0.02


@dataclass(frozen=True)
class RegionGrowParams(Params):
    x: int = param(
        255,
        minimum=0,
        maximum=_COORDINATE_MAX,
        step=1,
        unit="px",
        label="Click x",
        description="Column of the click inside the structure, in image pixels.",
    )
    y: int = param(
        255,
        minimum=0,
        maximum=_COORDINATE_MAX,
        step=1,
        unit="px",
        label="Click y",
        description="Row of the click inside the structure, in image pixels.",
    )
    tolerance: float = param(
        0.0,
        minimum=0.0,
        maximum=10000.0,
        step=1.0,
        unit="modality units",
        label="Tolerance",
        description=(
            "Largest difference from the values around the click that still belongs to the "
            "region, in modality units (HU for CT); 0 = automatic from the statistics around "
            "the click."
        ),
    )
    smoothing: float = param(
        5.0,
        minimum=0.0,
        maximum=50.0,
        step=0.5,
        unit="mm",
        label="Smoothing",
        description=(
            "Diameter in millimetres (pixels when the spacing is unknown) of the disc that "
            "opens and closes the region: cuts bridges thinner than this and closes holes."
        ),
    )


class RegionGrow(Algorithm):
    """Grows the structure under a click and outlines it in red."""

    name = "region_grow"
    label = "Region growing"
    description = (
        "Outlines the connected region of similar values around a click; the tolerance "
        "adapts to the values around the click and stops before the region leaks."
    )
    params_type = RegionGrowParams

    def default_params(self, shape: tuple[int, ...] | None = None) -> RegionGrowParams:
        """A click at the image's centre (when the shape is known)."""
        defaults = RegionGrowParams()
        if shape is None:
            return defaults
        h, w = shape[:2]
        return replace(defaults, x=(w - 1) // 2, y=(h - 1) // 2)

    def check_image(self, params: Params, shape: tuple[int, ...]) -> None:
        p = self._own_params(params, RegionGrowParams)
        check_click_inside(p.x, p.y, shape)

    def _segment(self, inputs: Inputs, params: Any) -> SegmentationResult:
        """Grow from the click.

        Returns
        -------
        SegmentationResult
            ``mask`` (bool, the image's shape), ``contour`` (its largest outer boundary, or
            None when nothing was found), ``overlay`` with the region's outline in red, and
            ``stats``: ``found``, ``reason``, ``area_px``, ``area_mm2``, ``perimeter_px``,
            ``perimeter_mm``, ``mean``, ``sd``, ``centroid_x``, ``centroid_y``, and
            ``tolerance`` (the tolerance used, in modality units).
        """
        p: RegionGrowParams = params
        values = inputs.values
        mask, tolerance = grow_region(
            values,
            (p.y, p.x),
            inputs.spacing,
            tolerance=p.tolerance,
            smoothing=p.smoothing,
            body=inputs.body,
        )
        reason = not_found_reason(mask, inputs.gray, lambda: inputs.body)
        overlay = inputs.overlay()
        if reason is None:
            draw_mask(overlay, mask)
        stats = mask_stats(mask, values, inputs.spacing, reason)
        stats["tolerance"] = tolerance
        contour = mask_contour(mask) if reason is None else None
        return SegmentationResult(overlay, stats, contour, "final", mask)


def check_click_inside(x: int, y: int, shape: tuple[int, ...]) -> None:
    """A click must land on the image; say which coordinate does not."""
    h, w = shape[:2]
    size = f"for this {h}×{w} image"
    if x > w - 1:
        raise ValueError(f"x must be between 0 and {w - 1} {size}, got {x}")
    if y > h - 1:
        raise ValueError(f"y must be between 0 and {h - 1} {size}, got {y}")


def grow_region(
    values: NDArray[np.float32],
    seed: tuple[int, int],
    spacing: tuple[float, float] | None,
    *,
    tolerance: float = 0.0,
    smoothing: float = 5.0,
    body: NDArray[np.bool_] | None = None,
    bound: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.bool_], float | None]:
    """The region around ``seed`` (row, col) and the tolerance used (None: nothing grew).

    ``values`` is not modified. ``tolerance`` 0 chooses it automatically; ``smoothing`` is a
    diameter in mm (px without ``spacing``). ``body`` (the image's shape), when given, is the
    patient: an automatic tolerance stops before a step whose region would hold most of it
    (see :func:`segmentation.masks.not_found_reason`). ``bound`` (the image's shape), when
    given with an automatic tolerance, is where the structure lies: the tolerance is the one
    whose region is the largest that stays inside it. See the module docstring for the steps.
    """
    pixel_mm = 1.0 if spacing is None else float(np.sqrt(spacing[0] * spacing[1]))
    h, w = values.shape
    factor = min(1.0, pixel_mm / WORK_MM)
    if factor < 0.95:
        size = (max(3, round(w * factor)), max(3, round(h * factor)))
        work = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
        scale = (work.shape[0] / h, work.shape[1] / w)
    else:
        work, scale = values, (1.0, 1.0)
    work_mm = pixel_mm / float(np.sqrt(scale[0] * scale[1]))
    sigma = SIGMA_MM / work_mm
    if sigma >= 0.3:
        work = cv2.GaussianBlur(work, (0, 0), sigma)
    row = min(work.shape[0] - 1, int((seed[0] + 0.5) * scale[0]))
    col = min(work.shape[1] - 1, int((seed[1] + 0.5) * scale[1]))
    rows, cols = np.ogrid[-row : work.shape[0] - row, -col : work.shape[1] - col]
    distance2 = (rows * rows + cols * cols).astype(np.float32)
    seed_radius = max(SEED_MIN_PX, SEED_MM / work_mm)
    seed_disc = distance2 <= seed_radius * seed_radius
    reference, spread = _robust_centre(work[seed_disc])
    # A click inside a large homogeneous structure: the wider disc's similar values give a
    # steadier estimate (more samples). Heterogeneous or small structures keep the small disc.
    wide_radius = max(seed_radius, SEED_WIDE_MM / work_mm)
    wide = work[distance2 <= wide_radius * wide_radius]
    similar = wide[np.abs(wide - reference) <= SEED_WIDE_K * spread]
    if similar.size >= SEED_WIDE_SHARE * wide.size:
        reference, spread = _robust_centre(similar)
    # Noise-free images (phantoms, masks) have no spread to scale by: use a small fraction of
    # the image's contrast instead.
    low, high = np.percentile(work, (1, 99))
    spread = max(spread, SPREAD_FLOOR * float(high - low))
    kernel = _disc(smoothing / work_mm / 2)
    band = _disc(max(2.0, LEAK_BAND_MM / work_mm))

    if bound is not None and tolerance <= 0:
        region, chosen = _largest_within(
            work,
            reference,
            [k * spread for k in BOUNDED_LADDER],
            kernel,
            seed_disc,
            distance2,
            _mask_in_frame(bound, work.shape),
        )
    else:
        region, chosen = _stable_before_leak(
            work,
            reference,
            [tolerance] if tolerance > 0 else [k * spread for k in LADDER],
            kernel,
            seed_disc,
            distance2,
            band,
            _body_in_frame(body, work.shape),
        )
    if region is None:
        return np.zeros(values.shape, bool), None
    if kernel.shape[0] > 1:
        region = cv2.morphologyEx(region.view(np.uint8), cv2.MORPH_CLOSE, kernel).view(bool)
    region = fill_holes(region)
    if scale != (1.0, 1.0):
        region = _refine(values, region, pixel_mm, scale)
    return np.ascontiguousarray(region, dtype=bool), chosen


def _stable_before_leak(
    work: NDArray[np.float32],
    reference: float,
    ladder: list[float],
    kernel: NDArray[np.uint8],
    seed_disc: NDArray[np.bool_],
    distance2: NDArray[np.float32],
    band: NDArray[np.uint8],
    body_work: NDArray[np.bool_] | None,
) -> tuple[NDArray[np.bool_] | None, float | None]:
    """The region of the most stable ladder level before the first leak, and its tolerance
    (None, None: nothing grew); one level is simply that level's region."""
    region: NDArray[np.bool_] | None = None
    chosen: float | None = None
    steps: list[tuple[float, NDArray[np.bool_]]] = []
    for level in ladder:
        candidate = _piece(work, reference, level, kernel, seed_disc, distance2)
        if candidate is None:
            continue
        candidate = fill_holes(candidate)
        if region is not None and len(ladder) > 1 and _fills_body(candidate, body_work):
            break  # a leak into everything: keep the step before
        # The leak test starts once the region has filled out (grew less than LEAK_ACTIVE×
        # in its last step): while it is still filling, growth far from it is no leak.
        settled = len(steps) >= 2 and (
            np.count_nonzero(steps[-1][1]) < LEAK_ACTIVE * np.count_nonzero(steps[-2][1])
        )
        if settled and region is not None and region.sum() >= np.count_nonzero(seed_disc):
            near = cv2.dilate(region.view(np.uint8), band).view(bool)
            if np.count_nonzero(candidate & ~near) > LEAK_FRACTION * np.count_nonzero(region):
                break  # this step leaked; keep the one before
        region, chosen = candidate, float(level)
        steps.append((chosen, region))
    if len(steps) > 2:
        # Of the levels that did not leak, the most stable one: where one more step of
        # tolerance adds the smallest fraction of area (the structure is full, its border holds).
        areas = np.array([np.count_nonzero(r) for _, r in steps], dtype=np.float64)
        growth = areas[1:] / np.maximum(areas[:-1], 1.0)
        chosen, region = steps[int(np.argmin(growth))]
    return region, chosen


def _largest_within(
    work: NDArray[np.float32],
    reference: float,
    ladder: list[float],
    kernel: NDArray[np.uint8],
    seed_disc: NDArray[np.bool_],
    distance2: NDArray[np.float32],
    bound: NDArray[np.bool_],
) -> tuple[NDArray[np.bool_] | None, float | None]:
    """The largest region of the ladder with at most ``BOUND_OUTSIDE`` of it outside
    ``bound``, and its tolerance (None, None: none stays inside)."""
    best: NDArray[np.bool_] | None = None
    best_area, chosen = 0, None
    bound_area = np.count_nonzero(bound)
    # A working pixel's worth of slack: at the working frame's coarser pixels a structure
    # that touches its bound from inside straddles the bound's edge pixels.
    bound = cv2.dilate(bound.view(np.uint8), _disc(1)).view(bool)
    for level in ladder:
        candidate = _piece(work, reference, level, kernel, seed_disc, distance2)
        if candidate is None:
            continue
        candidate = fill_holes(candidate)
        area = int(np.count_nonzero(candidate))
        if np.count_nonzero(candidate & ~bound) <= BOUND_OUTSIDE * area and area > best_area:
            best, best_area, chosen = candidate, area, float(level)
        if area > 4 * bound_area:
            break  # far beyond the bound: higher tolerances only grow further out
    return best, chosen


def _mask_in_frame(mask: NDArray[np.bool_], shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """``mask`` at the working frame's pixels (nearest)."""
    if mask.shape == shape:
        return mask
    size = (shape[1], shape[0])
    return cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_NEAREST).view(bool)


def _body_in_frame(
    body: NDArray[np.bool_] | None, shape: tuple[int, ...]
) -> NDArray[np.bool_] | None:
    """The body at the working frame's pixels, or None when it is too small to be a patient."""
    if body is None or np.count_nonzero(body) <= BODY_MIN_FRACTION * body.size:
        return None
    return _mask_in_frame(body, shape)


def _fills_body(region: NDArray[np.bool_], body: NDArray[np.bool_] | None) -> bool:
    """Whether ``region`` holds most of the body or half the image (a leak, not a structure)."""
    if np.count_nonzero(region) > 0.5 * region.size:
        return True
    if body is None:
        return False
    return bool(np.count_nonzero(region & body) > MAX_BODY_FRACTION * np.count_nonzero(body))


def _refine(
    values: NDArray[np.float32],
    coarse: NDArray[np.bool_],
    pixel_mm: float,
    scale: tuple[float, float],
) -> NDArray[np.bool_]:
    """The region at the image's pixels, its border re-decided there by nearest side.

    A tolerance test puts the border where a blurred edge has fallen by the tolerance, about
    1.5 blur widths inside a high-contrast structure. Instead, each pixel within about a
    working pixel of the border joins the side whose local mean (of the pixels clearly inside,
    and of those clearly outside, nearby) its denoised value is closer to: the border lands
    at the edge's half-contrast point, as sharp as the image. Holes are filled afterwards.
    """
    h, w = values.shape
    if scale != (1.0, 1.0):
        up = cv2.resize(
            coarse.view(np.uint8) * np.float32(1), (w, h), interpolation=cv2.INTER_LINEAR
        )
        whole = (up >= 0.5).view(np.uint8)
    else:
        whole = coarse.view(np.uint8)
    reach = max(1, int(np.ceil(1.0 / min(scale))))
    # Only the region's bounding box (plus what the filters see) needs the work.
    sigma = SIGMA_MM / pixel_mm
    margin = 4 * reach + int(3 * sigma) + 3
    x, y, bw, bh = cv2.boundingRect(whole)
    if bw == 0:
        return whole.view(bool).copy()
    r0, r1 = max(0, y - margin), min(h, y + bh + margin)
    c0, c1 = max(0, x - margin), min(w, x + bw + margin)
    region = np.ascontiguousarray(whole[r0:r1, c0:c1])
    crop = np.ascontiguousarray(values[r0:r1, c0:c1])
    kernel = _disc(reach)
    inner = cv2.erode(region, kernel)
    outer = 1 - cv2.dilate(region, kernel)
    band = (1 - inner) & (1 - outer)
    smoothed = cv2.GaussianBlur(crop, (0, 0), sigma) if sigma >= 0.3 else crop
    window = (4 * reach + 1, 4 * reach + 1)
    inside_mean = _local_mean(smoothed, inner, window)
    outside_mean = _local_mean(smoothed, outer, window)
    closer_inside = np.abs(smoothed - inside_mean) <= np.abs(smoothed - outside_mean)
    refined = inner | (band & closer_inside.view(np.uint8))
    # Keep what connects to the interior: a border pixel on its own is noise.
    _, pieces = cv2.connectedComponents(refined, connectivity=4, ltype=cv2.CV_32S)
    kept = np.unique(pieces[inner.view(bool)])
    kept = kept[kept > 0]
    result = np.zeros((h, w), bool)
    if kept.size == 0:
        result[r0:r1, c0:c1] = region.view(bool)
        return result
    keep = np.zeros(int(pieces.max()) + 1, bool)
    keep[kept] = True
    result[r0:r1, c0:c1] = fill_holes(keep[pieces])
    return result


def _local_mean(
    values: NDArray[np.float32], where: NDArray[np.uint8], window: tuple[int, int]
) -> NDArray[np.float32]:
    """Mean of ``values`` over the ``where`` pixels in a window around each pixel (NaN: none)."""
    weights = where.astype(np.float32)
    total = cv2.boxFilter(values * weights, -1, window, normalize=False)
    count = cv2.boxFilter(weights, -1, window, normalize=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0.5, total / np.maximum(count, 1e-6), np.nan).astype(np.float32)


def _piece(
    work: NDArray[np.float32],
    reference: float,
    tolerance: float,
    kernel: NDArray[np.uint8],
    seed_disc: NDArray[np.bool_],
    distance2: NDArray[np.float32],
) -> NDArray[np.bool_] | None:
    """The opened in-tolerance piece nearest the click, or None when none touches its disc."""
    inside = (np.abs(work - reference) <= tolerance).view(np.uint8)
    opened = cv2.morphologyEx(inside, cv2.MORPH_OPEN, kernel) if kernel.shape[0] > 1 else inside
    if not np.any(opened.view(bool) & seed_disc):
        opened = inside  # the structure is thinner than the opening: keep it unopened
    _, pieces = cv2.connectedComponents(opened, connectivity=4, ltype=cv2.CV_32S)
    touching = np.flatnonzero((pieces.ravel() > 0) & seed_disc.ravel())
    if touching.size == 0:
        return None
    nearest = touching[np.argmin(distance2.ravel()[touching])]
    return np.asarray(pieces == pieces.ravel()[nearest])


def _robust_centre(samples: NDArray[np.float32]) -> tuple[float, float]:
    """Median and robust SD (1.4826 × MAD; never 0) of ``samples``."""
    median = float(np.median(samples))
    spread = 1.4826 * float(np.median(np.abs(samples - median)))
    return median, max(spread, 1e-3)


def _disc(radius: float) -> NDArray[np.uint8]:
    r = max(0, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
