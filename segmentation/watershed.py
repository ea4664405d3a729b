"""Marker-based watershed: Otsu foreground, distance-transform markers, Canny-guided flooding.

Pipeline (``segment``):

1. :func:`~segmentation.preprocess.smooth` with ``kernel_size``.
2. Otsu threshold -> foreground mask; sure background = outside the mask dilated 3 times.
3. Canny edges (``edge_threshold``, low threshold half of it) are cut out of the mask, so two
   touching objects of different brightness become separate pieces.
4. Distance transform of the cut mask; sure foreground = pixels whose distance is at least
   ``threshold_ratio`` times the largest distance *of their piece*. Each piece (4-connected)
   thus gets at least one marker, and a low ratio keeps necked blobs whole while a high ratio
   splits them. Pieces thinner than about 3 px get no marker of their own.
5. Connected components of the sure foreground are the markers; the band between sure
   foreground and sure background is flooded by ``cv2.watershed`` on the smoothed image with the
   Canny edges painted white, so region borders settle on the detected edges.

Everything after step 2 runs on the bounding box of the sure-background band (plus a margin),
which is exact (outside it everything is background) and, on a CT slice, skips the air around
the patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from segmentation.base import (
    Algorithm,
    Inputs,
    SegmentationResult,
    Spacing,
    StatValue,
    check_kernel_fits,
)
from segmentation.params import Params, param
from segmentation.preprocess import kernel_size_param, smooth

__all__ = ["Watershed", "WatershedParams"]

BOUNDARY_BGR = (0, 0, 255)
_BACKGROUND_DILATIONS = 3
_MIN_PIECE_DISTANCE = 2.0  # a piece needs a pixel >= 2 px from its border to get a marker
_CROP_MARGIN = 4  # >= 2 keeps cv2.watershed's forced border ring on background pixels
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


@dataclass(frozen=True)
class WatershedParams(Params):
    threshold_ratio: float = param(
        0.5,
        minimum=0.0,
        maximum=1.0,
        step=0.01,
        unit="",
        label="Marker threshold",
        description=(
            "Sure foreground is where the distance to the object border is at least this "
            "fraction of the piece's largest distance; higher values split touching objects."
        ),
    )
    kernel_size: int = kernel_size_param()
    edge_threshold: int = param(
        100,
        minimum=0,
        maximum=500,
        step=5,
        unit="grey levels",
        label="Edge threshold",
        description=(
            "Canny high threshold (the low one is half of it); detected edges separate "
            "touching objects and guide the region borders. 0 turns edge guidance off."
        ),
    )


class Watershed(Algorithm):
    """Splits the bright structures of the image into regions and outlines them in red."""

    name = "watershed"
    label = "Watershed"
    description = (
        "Splits bright structures into regions from distance-transform markers, with borders "
        "guided by Canny edges."
    )
    params_type = WatershedParams

    def check_image(self, params: Params, shape: tuple[int, ...]) -> None:
        check_kernel_fits(self._own_params(params, WatershedParams).kernel_size, shape)

    def _segment(self, inputs: Inputs, params: Any) -> SegmentationResult:
        """Segment ``gray`` into regions.

        Returns
        -------
        SegmentationResult
            ``overlay`` has the region borders in red; ``labels`` (int32) numbers the regions
            1, 2, ... (0 is background and the borders between regions); ``mask`` is their
            union; ``stats`` holds ``regions`` (int), ``largest_area_px`` (int) and
            ``largest_area_mm2`` (float, or None without ``spacing``); ``contour`` is None.
        """
        p: WatershedParams = params
        gray = inputs.gray
        overlay = inputs.overlay()
        smoothed = smooth(gray, p.kernel_size)
        labels, box = _watershed_labels(smoothed, p)
        image_labels = np.zeros(gray.shape, np.int32)
        if labels is None:
            stats = _stats(np.zeros(0, np.int64), inputs.spacing)
            return SegmentationResult(overlay, stats, mask=image_labels > 0, labels=image_labels)
        r0, r1, c0, c1 = box
        # cv2.watershed marks the outermost ring of its input as border; that ring is background.
        borders = cv2.compare(labels[1:-1, 1:-1], -1, cv2.CMP_EQ)
        inside = overlay[r0 + 1 : r1 - 1, c0 + 1 : c1 - 1]  # a view: drawn in place
        cv2.bitwise_and(inside, 0, dst=inside, mask=borders)
        cv2.bitwise_or(inside, (*BOUNDARY_BGR, 0), dst=inside, mask=borders)
        region_sizes = _region_sizes(labels)
        # Watershed labels: -1 borders, 1 background, >= 2 regions -> regions 1, 2, ...
        image_labels[r0:r1, c0:c1] = np.maximum(labels - 1, 0)
        stats = _stats(region_sizes[region_sizes > 0], inputs.spacing)
        return SegmentationResult(overlay, stats, mask=image_labels > 0, labels=image_labels)


def _watershed_labels(
    smoothed: NDArray[np.uint8], p: WatershedParams
) -> tuple[NDArray[np.int32] | None, tuple[int, int, int, int]]:
    """Watershed labels of the cropped area (-1 borders, 1 background, >= 2 regions)."""
    if int(smoothed.min()) == int(smoothed.max()):
        return None, (0, 0, 0, 0)  # no contrast, nothing to separate
    _, mask = cv2.threshold(smoothed, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    # Three 3x3 dilations, done as one 7x7 (the same set, computed in one pass).
    side = 2 * _BACKGROUND_DILATIONS + 1
    band = cv2.dilate(mask, np.ones((side, side), np.uint8))
    r0, r1, c0, c1 = box = _bounding_box(band, _CROP_MARGIN)
    smoothed, mask, band = smoothed[r0:r1, c0:c1], mask[r0:r1, c0:c1], band[r0:r1, c0:c1]

    relief = smoothed
    if p.edge_threshold > 0:
        edges = cv2.Canny(smoothed, p.edge_threshold // 2, p.edge_threshold)
        # Cut 3 px wide, so Canny's small gaps at junctions do not leave pieces joined.
        cut = cv2.dilate(edges, np.ones((3, 3), np.uint8))
        mask = cv2.bitwise_and(mask, cv2.bitwise_not(cut))
        relief = cv2.max(smoothed, edges)

    sure_fg = _sure_foreground(mask, p.threshold_ratio)
    _, markers = cv2.connectedComponents(sure_fg, connectivity=8, ltype=cv2.CV_32S)
    markers += 1  # 1 = sure background, >= 2 = one label per marker
    unknown = cv2.subtract(band, sure_fg)  # the band to flood
    np.copyto(markers, 0, where=unknown.view(bool))
    cv2.watershed(cv2.cvtColor(relief, cv2.COLOR_GRAY2BGR), markers)
    return markers, box


def _sure_foreground(mask: NDArray[np.uint8], ratio: float) -> NDArray[np.uint8]:
    """255 where a pixel is >= ``ratio`` x its piece's largest distance from the piece border."""
    n_pieces, pieces = cv2.connectedComponents(mask, connectivity=4, ltype=cv2.CV_32S)
    # A 3x3 mask is a close enough L2 approximation for a relative threshold, and faster.
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    # A piece's maximum is a local maximum over 4-neighbours, and 4-neighbours inside the mask
    # belong to the same (4-connected) piece: so only those few pixels need visiting.
    peak = cv2.dilate(distance, _CROSS)
    candidates = np.flatnonzero((distance >= peak) & (distance >= _MIN_PIECE_DISTANCE))
    piece_max = np.zeros(n_pieces, np.float32)
    np.maximum.at(piece_max, pieces.ravel()[candidates], distance.ravel()[candidates])
    piece_threshold = (ratio * piece_max).astype(np.float32)
    piece_threshold[piece_max < _MIN_PIECE_DISTANCE] = np.inf  # too thin for a marker
    piece_threshold[0] = np.inf  # label 0 is outside the mask
    if n_pieces <= 256:  # a lookup table is several times faster than fancy indexing
        table = np.full(256, np.inf, np.float32)
        table[:n_pieces] = piece_threshold
        threshold = cv2.LUT(pieces.astype(np.uint8), table)
    else:
        threshold = np.take(piece_threshold, pieces, mode="clip")
    return cv2.compare(distance, threshold, cv2.CMP_GE)


def _region_sizes(labels: NDArray[np.int32]) -> NDArray[np.int64]:
    """Pixel count of every region label (2, 3, ...) in watershed output."""
    top = int(labels.max())
    if top < 2:
        return np.zeros(0, np.int64)
    if top < np.iinfo(np.uint16).max:
        # A 16-bit histogram is ~3x faster than np.bincount here; borders (-1) wrap to 65535,
        # outside the range, and float32 counts are exact below 2**24 pixels.
        as16 = labels.astype(np.uint16)
        counts = cv2.calcHist([as16], [0], None, [top - 1], [2, top + 1]).ravel()
        return np.rint(counts).astype(np.int64)
    return np.bincount(labels[labels >= 2].ravel() - 2).astype(np.int64)


def _bounding_box(mask: NDArray[np.uint8], margin: int) -> tuple[int, int, int, int]:
    h, w = mask.shape
    x, y, bw, bh = cv2.boundingRect(mask)
    if bw == 0:
        return 0, h, 0, w
    return max(0, y - margin), min(h, y + bh + margin), max(0, x - margin), min(w, x + bw + margin)


def _stats(region_sizes: NDArray[np.int64], spacing: Spacing | None) -> dict[str, StatValue]:
    largest = int(region_sizes.max()) if region_sizes.size else 0
    return {
        "regions": int(region_sizes.size),
        "largest_area_px": largest,
        "largest_area_mm2": None if spacing is None else largest * spacing[0] * spacing[1],
    }
