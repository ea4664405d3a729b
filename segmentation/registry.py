"""The algorithms the service offers, in display order.

Adding an algorithm: write a module with an :class:`~segmentation.base.Algorithm` subclass and
its ``Params`` dataclass, then add one line below. The server sends every ``schema()`` to the
client, which builds its controls from it; nothing else needs to change.
"""

from __future__ import annotations

from segmentation.base import Algorithm
from segmentation.plain import PlainImage
from segmentation.region_grow import RegionGrow
from segmentation.snakes import Snakes
from segmentation.watershed import Watershed

__all__ = ["ALGORITHMS", "algorithm_names", "get_algorithm"]

# Algorithm instances are stateless, so one shared instance each is safe across threads.
ALGORITHMS: tuple[Algorithm, ...] = (
    PlainImage(),
    RegionGrow(),
    Watershed(),
    Snakes(),
)


def algorithm_names() -> list[str]:
    """Names of the available algorithms, in display order ("none" first)."""
    return [algorithm.name for algorithm in ALGORITHMS]


def get_algorithm(name: str) -> Algorithm:
    """The algorithm called ``name``.

    Raises
    ------
    ValueError
        If there is no such algorithm; the message lists the allowed names.
    """
    for algorithm in ALGORITHMS:
        if algorithm.name == name:
            return algorithm
    allowed = ", ".join(repr(n) for n in algorithm_names())
    raise ValueError(f"unknown algorithm {name!r}; allowed: {allowed}")
