"""Image segmentation for the stream: pure functions of a 2-D uint8 image, no I/O, no asyncio.

Public face::

    from segmentation import algorithm_names, get_algorithm

    alg = get_algorithm("watershed")
    params = alg.parse_params({"threshold_ratio": "0.4"})  # or alg.default_params()
    result = alg.segment(gray, params, spacing=(0.7, 0.7))
    result.overlay, result.stats, result.contour, result.stage

Algorithms with ``supports_evolution`` (instances of :class:`EvolvingAlgorithm`) also offer
``preview()`` and ``evolve()``. See docs/segmentation.md.
"""

from segmentation.base import Algorithm, EvolvingAlgorithm, SegmentationResult
from segmentation.params import Params
from segmentation.registry import algorithm_names, get_algorithm

__all__ = [
    "Algorithm",
    "EvolvingAlgorithm",
    "Params",
    "SegmentationResult",
    "algorithm_names",
    "get_algorithm",
]
