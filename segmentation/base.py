"""The contract every segmentation algorithm fulfils, and the input checks they share.

An algorithm is a stateless object (safe to share between threads) with a ``name``, a JSON
``schema()``, ``parse_params()`` and ``segment()``. Algorithms that can show their result forming
(active contours) subclass :class:`EvolvingAlgorithm` and add ``preview()`` and ``evolve()``;
callers find out with ``algorithm.supports_evolution`` (or ``isinstance(alg,
EvolvingAlgorithm)``, which also narrows the type for mypy).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal, TypeVar

import cv2
import numpy as np
from numpy.typing import NDArray

from segmentation.params import Params

__all__ = [
    "Algorithm",
    "EvolvingAlgorithm",
    "Inputs",
    "SegmentationResult",
    "Spacing",
    "Stage",
    "StatValue",
    "base_overlay",
    "check_inputs",
    "check_kernel_fits",
]

Stage = Literal["final", "evolving", "preview"]
StatValue = bool | int | float | str | list[float] | None
Spacing = tuple[float, float]
_P = TypeVar("_P", bound=Params)


@dataclass(frozen=True)
class SegmentationResult:
    """What ``segment``/``preview``/``evolve`` return.

    Attributes
    ----------
    overlay : ndarray of shape (M, N, 3), uint8
        BGR image with the segmentation drawn on it; a new array the caller owns.
    stats : dict
        JSON-serialisable measurements (see each algorithm); millimetre values are ``None``
        when the pixel spacing is unknown.
    contour : ndarray of shape (K, 2), float64, or None
        The closed contour as (row, col) points in image pixels (click algorithms: snakes,
        region growing; None when nothing was found).
    stage : {"final", "evolving", "preview"}
        ``"final"`` for a finished result, ``"evolving"`` for an intermediate contour and
        ``"preview"`` for the instant initial-contour drawing.
    mask : ndarray of shape (M, N), bool, or None
        The segmented region (None for ``none``); contours, stats and the overlay derive from
        it, and so will a DICOM SEG export. All False when nothing was found.
    labels : ndarray of shape (M, N), int32, or None
        Watershed only: one label (1, 2, ...) per region, 0 elsewhere.
    """

    overlay: NDArray[np.uint8]
    stats: dict[str, StatValue]
    contour: NDArray[np.float64] | None = None
    stage: Stage = "final"
    mask: NDArray[np.bool_] | None = None
    labels: NDArray[np.int32] | None = None


@dataclass(frozen=True)
class Inputs:
    """The validated arguments of one ``segment``/``preview``/``evolve`` call.

    ``gray`` is what is drawn on (unless ``background``) and ``values`` what intensity-based
    algorithms measure: the modality values when the caller gave them, else ``gray``.
    """

    gray: NDArray[np.uint8]
    spacing: Spacing | None
    background: NDArray[np.uint8] | None
    given_values: NDArray[np.float32] | None

    @property
    def values(self) -> NDArray[np.float32]:
        if self.given_values is not None:
            return self.given_values
        return self.gray.astype(np.float32)

    @cached_property
    def body(self) -> NDArray[np.bool_]:
        """The body in ``gray`` (see :func:`segmentation.masks.body_of`), computed once."""
        from segmentation.masks import body_of  # masks builds on this module

        return body_of(self.gray)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.gray.shape[0]), int(self.gray.shape[1]))

    def overlay(self) -> NDArray[np.uint8]:
        return base_overlay(self.gray, self.background)


class Algorithm(ABC):
    """Base of every algorithm: metadata, parameter handling and ``segment``."""

    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]
    params_type: ClassVar[type[Params]]
    #: True for algorithms that also offer ``preview`` and ``evolve`` (see EvolvingAlgorithm).
    supports_evolution: ClassVar[bool] = False

    def schema(self) -> dict[str, Any]:
        """JSON-serialisable description: label, description and every parameter's spec."""
        return {
            "label": self.label,
            "description": self.description,
            "params": self.params_type.schema(),
        }

    def default_params(self, shape: tuple[int, ...] | None = None) -> Params:
        """The defaults; given an image `shape`, defaults that would not fit it are adapted."""
        return self.params_type()

    def parse_params(self, mapping: Mapping[str, object]) -> Params:
        """Validate JSON numbers or numeric strings into this algorithm's parameters.

        Raises
        ------
        ValueError
            Unknown parameter names, non-numbers and out-of-range values, naming the
            parameter and its allowed range.
        """
        return self.params_type.from_mapping(mapping)

    def check_image(self, params: Params, shape: tuple[int, ...]) -> None:
        """Check `params` against an image of `shape` without segmenting anything.

        Raises the same ``ValueError`` that ``segment`` would for parameters that do not fit
        the image (a centre outside it, a kernel larger than it), so callers can refuse such
        parameters before any work starts. The base algorithm has none.
        """
        return None

    def segment(
        self,
        gray: NDArray[np.uint8],
        params: Params,
        *,
        spacing: Sequence[float] | None = None,
        background: NDArray[np.uint8] | None = None,
        values: NDArray[np.floating[Any]] | None = None,
    ) -> SegmentationResult:
        """Segment the image (never modified) and draw the result on a copy of it.

        Parameters
        ----------
        gray : ndarray of shape (M, N), uint8
            The display image: what is drawn on, and what is segmented without ``values``.
        params : Params
            This algorithm's parameters (from ``parse_params`` or ``default_params``).
        spacing : (float, float), optional
            (row, col) millimetres per pixel, for the ``*_mm`` / ``*_mm2`` stats and for
            parameters given in millimetres.
        background : ndarray of shape (M, N, 3), uint8, optional
            BGR image to draw on instead of ``gray`` (colour sources).
        values : ndarray of shape (M, N), float, optional
            The same frame in modality units (CT: Hounsfield units). Intensity-based
            algorithms work on it when given, so their tolerances are in those units.

        Raises
        ------
        ValueError
            Naming the argument or parameter that is wrong for this image.
        """
        p, inputs = self._prepare(gray, params, spacing, background, values)
        return self._segment(inputs, p)

    @abstractmethod
    def _segment(self, inputs: Inputs, params: Any) -> SegmentationResult:
        """The algorithm proper, on validated inputs and this algorithm's own ``params``."""

    def _prepare(
        self,
        gray: object,
        params: Params,
        spacing: Sequence[float] | None,
        background: object,
        values: object,
    ) -> tuple[Any, Inputs]:
        """The one validation prologue: parameter type, inputs, parameters against the image."""
        p = self._own_params(params, self.params_type)
        inputs = check_inputs(gray, spacing, background, values)
        self.check_image(p, inputs.shape)
        return p, inputs

    def _own_params(self, params: Params, expected: type[_P]) -> _P:
        if not isinstance(params, expected):
            raise TypeError(
                f"{self.name} expects {expected.__name__}, got {type(params).__name__}; "
                f"use get_algorithm({self.name!r}).parse_params(...)"
            )
        return params


class EvolvingAlgorithm(Algorithm):
    """An algorithm whose result forms over time and can be previewed and streamed."""

    supports_evolution: ClassVar[bool] = True

    def preview(
        self,
        gray: NDArray[np.uint8],
        params: Params,
        *,
        spacing: Sequence[float] | None = None,
        background: NDArray[np.uint8] | None = None,
        values: NDArray[np.floating[Any]] | None = None,
    ) -> SegmentationResult:
        """Draw only the starting state, cheaply (stage ``"preview"``)."""
        p, inputs = self._prepare(gray, params, spacing, background, values)
        return self._preview(inputs, p)

    def evolve(
        self,
        gray: NDArray[np.uint8],
        params: Params,
        *,
        spacing: Sequence[float] | None = None,
        background: NDArray[np.uint8] | None = None,
        values: NDArray[np.floating[Any]] | None = None,
        init: NDArray[np.floating[Any]] | None = None,
    ) -> Generator[SegmentationResult, None, None]:
        """Yield ``"evolving"`` results in short steps, then one ``"final"`` result.

        Arguments are checked when ``evolve`` is called (it returns a generator but is not
        one), so a bad argument raises at the call. Each ``next()`` does a bounded amount of
        work (tens of milliseconds); the generator holds no resources, so abandoning it midway
        is safe. ``init`` warm-starts from an earlier contour ((K, 2) (row, col) points), e.g.
        the previous slice's result.
        """
        p, inputs = self._prepare(gray, params, spacing, background, values)
        return self._evolve(inputs, p, init)

    def segment(
        self,
        gray: NDArray[np.uint8],
        params: Params,
        *,
        spacing: Sequence[float] | None = None,
        background: NDArray[np.uint8] | None = None,
        values: NDArray[np.floating[Any]] | None = None,
        init: NDArray[np.floating[Any]] | None = None,
    ) -> SegmentationResult:
        """``evolve`` run to its end: the same final result, with the same optional ``init``."""
        p, inputs = self._prepare(gray, params, spacing, background, values)
        (last,) = deque(self._evolve(inputs, p, init), maxlen=1)
        return last

    def _segment(self, inputs: Inputs, params: Any) -> SegmentationResult:
        (last,) = deque(self._evolve(inputs, params, None), maxlen=1)
        return last

    @abstractmethod
    def _preview(self, inputs: Inputs, params: Any) -> SegmentationResult:
        """The starting state on validated inputs."""

    @abstractmethod
    def _evolve(
        self, inputs: Inputs, params: Any, init: NDArray[np.floating[Any]] | None
    ) -> Generator[SegmentationResult, None, None]:
        """The evolution on validated inputs (``init`` not yet checked)."""


def check_inputs(
    gray: object,
    spacing: Sequence[float] | None,
    background: object,
    values: object = None,
) -> Inputs:
    """Validate the arguments every ``segment`` takes; return contiguous arrays and spacing.

    Raises
    ------
    ValueError
        Naming ``gray``, ``spacing``, ``background`` or ``values`` and what was expected.
    """
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"gray must be a 2-D uint8 array, got {_describe(gray)}")
    if min(gray.shape) < 3:
        raise ValueError(f"gray must be at least 3×3 pixels, got {gray.shape[0]}×{gray.shape[1]}")
    checked_spacing: Spacing | None = None
    if spacing is not None:
        try:
            row_mm, col_mm = (float(v) for v in spacing)
        except (TypeError, ValueError):
            raise ValueError(
                f"spacing must be (row, col) millimetres per pixel, got {spacing!r}"
            ) from None
        if not all(math.isfinite(v) and v > 0 for v in (row_mm, col_mm)):
            raise ValueError(f"spacing must be two positive finite numbers, got {spacing!r}")
        checked_spacing = (row_mm, col_mm)
    checked_background: NDArray[np.uint8] | None = None
    if background is not None:
        expected = (*gray.shape, 3)
        if (
            not isinstance(background, np.ndarray)
            or background.dtype != np.uint8
            or background.shape != expected
        ):
            raise ValueError(
                f"background must be a uint8 array of shape {expected} (BGR, same size as "
                f"gray), got {_describe(background)}"
            )
        checked_background = np.ascontiguousarray(background)
    checked_values: NDArray[np.float32] | None = None
    if values is not None:
        if (
            not isinstance(values, np.ndarray)
            or values.shape != gray.shape
            or values.dtype.kind not in "uif"
        ):
            raise ValueError(
                f"values must be a numeric array of shape {gray.shape} (modality units, same "
                f"size as gray), got {_describe(values)}"
            )
        # A new float32 array (or a contiguous float32 input as is: it is only read).
        checked_values = np.ascontiguousarray(values, dtype=np.float32)
        if not np.isfinite(checked_values).all():
            raise ValueError("values must be finite (no NaN or infinity)")
    return Inputs(np.ascontiguousarray(gray), checked_spacing, checked_background, checked_values)


def check_kernel_fits(kernel_size: int, shape: tuple[int, ...]) -> None:
    """A smoothing kernel larger than the image is a mistake, not something to pad around."""
    limit = min(shape[:2])
    if kernel_size > limit:
        largest = limit if limit % 2 else limit - 1
        raise ValueError(
            f"kernel_size must be at most {largest} for this {shape[0]}×{shape[1]} image, "
            f"got {kernel_size}"
        )


def base_overlay(
    gray: NDArray[np.uint8], background: NDArray[np.uint8] | None
) -> NDArray[np.uint8]:
    """A new BGR image to draw on: a copy of ``background``, or ``gray`` as BGR."""
    if background is not None:
        return background.copy()
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__
