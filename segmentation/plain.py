"""``"none"``: the plain image, no segmentation."""

from __future__ import annotations

from typing import Any

from segmentation.base import Algorithm, Inputs, SegmentationResult
from segmentation.params import NoParams

__all__ = ["PlainImage"]


class PlainImage(Algorithm):
    """Shows the image as it is; no parameters, no stats."""

    name = "none"
    label = "None"
    description = "The plain image, without segmentation."
    params_type = NoParams

    def _segment(self, inputs: Inputs, params: Any) -> SegmentationResult:
        return SegmentationResult(overlay=inputs.overlay(), stats={})
