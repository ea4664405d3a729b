"""The smoothing every algorithm applies before it segments."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from segmentation.params import param

__all__ = ["kernel_size_param", "smooth"]


def kernel_size_param() -> int:
    """The shared ``kernel_size`` field (odd, 1-31, default 3)."""
    return param(
        3,
        minimum=1,
        maximum=31,
        step=2,
        odd=True,
        unit="px",
        label="Kernel size",
        description=(
            "Side in pixels of the Gaussian blur and of the square opening/closing kernel "
            "applied before segmenting (odd; 1 = no smoothing)."
        ),
    )


def smooth(gray: NDArray[np.uint8], kernel_size: int) -> NDArray[np.uint8]:
    """Gaussian blur, then morphological opening and closing, all ``kernel_size`` square.

    Blurring suppresses noise; the opening removes bright specks and the closing fills dark
    pinholes smaller than the kernel, so thresholds and edges see object shapes, not noise.
    Returns a new array; ``gray`` is not modified. ``kernel_size`` 1 returns a copy.
    """
    if kernel_size == 1:
        return gray.copy()
    blurred = cv2.GaussianBlur(gray, (kernel_size, kernel_size), 0)
    kernel = np.ones((kernel_size, kernel_size), np.uint8)
    # Opening then closing is erode, dilate, dilate, erode; the two dilations by a k×k square
    # are one by a (2k-1)×(2k-1) square. Same result, three passes instead of four, and about
    # a third of the time of two cv2.morphologyEx calls.
    double = np.ones((2 * kernel_size - 1, 2 * kernel_size - 1), np.uint8)
    return cv2.erode(cv2.dilate(cv2.erode(blurred, kernel), double), kernel)
