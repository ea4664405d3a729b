"""Validated, immutable algorithm parameters and their JSON schema.

Each algorithm declares its parameters once, as a frozen dataclass whose fields are made with
:func:`param`. That single declaration gives

* validation in ``__post_init__`` (type, range, oddness), so an invalid ``Params`` cannot exist;
* :meth:`Params.from_mapping`, which also accepts numeric strings (older clients send query
  strings) and rejects unknown names;
* :meth:`Params.to_json` and :meth:`Params.schema`, the plain-JSON views the server and the
  client use to build sliders.

Parameters are replaced whole, never mutated: ``alg.parse_params({**p.to_json(), **changes})``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Self, TypeVar

__all__ = ["NoParams", "ParamSpec", "Params", "param"]

_SPEC_KEY = "segmentation.param_spec"
_Number = TypeVar("_Number", int, float)


@dataclass(frozen=True)
class ParamSpec:
    """How one parameter is typed, bounded and shown.

    Attributes
    ----------
    kind : {"int", "float"}
        JSON type of the value.
    default, minimum, maximum, step : int or float
        Default and the inclusive allowed range; ``step`` is the slider increment.
    label : str
        Short name for a UI control.
    description : str
        One sentence saying what the parameter does.
    odd : bool
        Only odd integers are allowed (kernel sizes).
    unit : str
        The value's unit: ``"px"``, ``"mm"``, ``"modality units"``, ``""`` (a plain number).
    """

    kind: Literal["int", "float"]
    default: int | float
    minimum: int | float
    maximum: int | float
    step: int | float
    label: str
    description: str
    odd: bool = False
    unit: str = ""

    def range_text(self) -> str:
        kind = "an odd integer" if self.odd else ("an integer" if self.kind == "int" else "")
        prefix = f"{kind} " if kind else ""
        return f"{prefix}between {self.minimum} and {self.maximum}"

    def coerce(self, name: str, raw: object) -> int | float:
        """Turn a JSON number or numeric string into a number of this parameter's type."""
        if isinstance(raw, str):
            text = raw.strip()
            try:
                raw = int(text) if self.kind == "int" and _looks_integral(text) else float(text)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {raw!r}") from None
        if isinstance(raw, float) and self.kind == "int" and raw.is_integer():
            raw = int(raw)
        return self.check(name, raw)

    def check(self, name: str, value: object) -> int | float:
        """Return ``value`` as this parameter's type, or raise ``ValueError`` naming ``name``."""
        # bool is an int subclass; True is not a kernel size.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.kind == "int" and not isinstance(value, int):
            raise ValueError(f"{name} must be {self.range_text()}, got {value!r}")
        # Compared before any float(): JSON integers can be too large to convert.
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"{name} must be {self.range_text()}, got {self._shown(value)}")
        number: int | float = int(value) if self.kind == "int" else float(value)
        if self.odd and number % 2 == 0:
            raise ValueError(f"{name} must be {self.range_text()}, got {number!r}")
        return number

    def _shown(self, value: int | float) -> str:
        """The value as this parameter's type would print it (huge integers cut short)."""
        try:
            return repr(float(value) if self.kind == "float" else value)[:40]
        except OverflowError:
            return repr(value)[:40]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "default": self.default,
            "min": self.minimum,
            "max": self.maximum,
            "step": self.step,
            "description": self.description,
            "label": self.label,
            "unit": self.unit,
        }


def _looks_integral(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def param(
    default: _Number,
    *,
    minimum: _Number,
    maximum: _Number,
    step: _Number,
    label: str,
    description: str,
    odd: bool = False,
    unit: str = "",
) -> _Number:
    """Declare a parameter field of a :class:`Params` dataclass (type taken from ``default``)."""
    kind: Literal["int", "float"] = "int" if isinstance(default, int) else "float"
    spec = ParamSpec(kind, default, minimum, maximum, step, label, description, odd, unit)
    spec.check("default", default)
    return field(default=default, metadata={_SPEC_KEY: spec})


@dataclass(frozen=True)
class Params:
    """Base of every algorithm's parameter dataclass; validates all fields on construction."""

    def __post_init__(self) -> None:
        for name, spec in self.specs().items():
            # Normalise ints given for float parameters, so to_json() is type-stable.
            object.__setattr__(self, name, spec.check(name, getattr(self, name)))

    @classmethod
    def specs(cls) -> dict[str, ParamSpec]:
        """The parameter specs in declaration (display) order."""
        return {f.name: f.metadata[_SPEC_KEY] for f in fields(cls) if _SPEC_KEY in f.metadata}

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object]) -> Self:
        """Build from JSON numbers or numeric strings; missing names take their defaults.

        Raises
        ------
        ValueError
            For an unknown name (the message lists the allowed ones) or a value that is not a
            number in range (the message names the parameter and the range).
        """
        if not isinstance(mapping, Mapping):
            raise ValueError(f"parameters must be a mapping of names to numbers, got {mapping!r}")
        specs = cls.specs()
        unknown = sorted(str(k) for k in mapping if k not in specs)
        if unknown:
            allowed = ", ".join(specs) or "none"
            raise ValueError(f"unknown parameter {', '.join(unknown)}; allowed: {allowed}")
        values = {name: specs[name].coerce(name, raw) for name, raw in mapping.items()}
        return cls(**values)

    def to_json(self) -> dict[str, int | float]:
        """Plain JSON numbers, in display order."""
        return {name: getattr(self, name) for name in self.specs()}

    @classmethod
    def schema(cls) -> dict[str, dict[str, Any]]:
        return {name: spec.to_json() for name, spec in cls.specs().items()}


@dataclass(frozen=True)
class NoParams(Params):
    """Parameters of an algorithm that has none."""
