"""``"none"``: the plain image, no segmentation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from segmentation.base import Algorithm, SegmentationResult, base_overlay, check_inputs
from segmentation.params import NoParams, Params

__all__ = ["PlainImage"]


class PlainImage(Algorithm):
    """Shows the image as it is; no parameters, no stats."""

    name = "none"
    label = "None"
    description = "The plain image, without segmentation."
    params_type = NoParams

    def segment(
        self,
        gray: NDArray[np.uint8],
        params: Params,
        *,
        spacing: Sequence[float] | None = None,
        background: NDArray[np.uint8] | None = None,
    ) -> SegmentationResult:
        self._own_params(params, NoParams)
        gray, _, background = check_inputs(gray, spacing, background)
        return SegmentationResult(overlay=base_overlay(gray, background), stats={})
