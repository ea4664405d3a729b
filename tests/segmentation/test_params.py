"""Parameter parsing and validation (segmentation/params.py), through every algorithm's specs."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import segmentation
from segmentation.params import NoParams, ParamSpec
from segmentation.snakes import SnakeParams
from segmentation.watershed import WatershedParams

ALL_SPECS = [
    (name, pname, spec)
    for name in segmentation.algorithm_names()
    for pname, spec in segmentation.get_algorithm(name).params_type.specs().items()
]
SPEC_IDS = [f"{name}.{pname}" for name, pname, _ in ALL_SPECS]


def test_numeric_strings_are_accepted() -> None:
    watershed = segmentation.get_algorithm("watershed")
    params = watershed.parse_params({"kernel_size": "3", "threshold_ratio": "0.5"})
    assert params == WatershedParams(kernel_size=3, threshold_ratio=0.5)
    snakes = segmentation.get_algorithm("snakes")
    params = snakes.parse_params({"x": " 120 ", "alpha": "1e-2", "radius": "40.0", "gamma": 0.002})
    assert isinstance(params, SnakeParams)
    assert (params.x, params.alpha, params.radius, params.gamma) == (120, 0.01, 40, 0.002)


def test_float_params_are_floats_and_int_params_ints() -> None:
    params = segmentation.get_algorithm("snakes").parse_params({"beta": 3, "x": 7.0})
    as_json = params.to_json()
    assert type(as_json["beta"]) is float and as_json["beta"] == 3.0
    assert type(as_json["x"]) is int and as_json["x"] == 7


def test_unknown_names_are_rejected_with_the_allowed_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown parameter colour, size; allowed: threshold_ratio"
    ):
        segmentation.get_algorithm("watershed").parse_params({"size": 3, "colour": 1})
    with pytest.raises(ValueError, match="unknown parameter radius; allowed: none"):
        segmentation.get_algorithm("none").parse_params({"radius": 3})


@pytest.mark.parametrize(
    ("algorithm", "changes", "message"),
    [
        (
            "watershed",
            {"threshold_ratio": "1.5"},
            "threshold_ratio must be between 0.0 and 1.0, got 1.5",
        ),
        (
            "watershed",
            {"kernel_size": 4},
            "kernel_size must be an odd integer between 1 and 31, got 4",
        ),
        (
            "watershed",
            {"kernel_size": "33"},
            "kernel_size must be an odd integer between 1 and 31, got 33",
        ),
        (
            "watershed",
            {"edge_threshold": -5},
            "edge_threshold must be an integer between 0 and 500",
        ),
        ("snakes", {"radius": 0}, "radius must be an integer between 1 and 1024, got 0"),
        ("snakes", {"radius": "2.5"}, "radius must be an integer between 1 and 1024, got 2.5"),
        ("snakes", {"gamma": 0}, "gamma must be between 0.0001 and 0.1, got 0.0"),
        (
            "snakes",
            {"max_num_iter": 0},
            "max_num_iter must be an integer between 1 and 5000, got 0",
        ),
        ("snakes", {"alpha": "abc"}, "alpha must be a number, got 'abc'"),
        ("snakes", {"alpha": None}, "alpha must be a number, got None"),
        ("snakes", {"x": True}, "x must be a number, got True"),
        ("snakes", {"beta": float("nan")}, "beta must be a finite number, got nan"),
        ("snakes", {"beta": "inf"}, "beta must be a finite number, got inf"),
    ],
)
def test_bad_values_are_rejected_naming_parameter_and_range(
    algorithm: str, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        segmentation.get_algorithm(algorithm).parse_params(changes)
    assert message in str(info.value)


def test_a_mapping_is_required() -> None:
    with pytest.raises(ValueError, match="parameters must be a mapping"):
        segmentation.get_algorithm("snakes").parse_params(["x", 3])  # type: ignore[arg-type]


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ValueError, match="kernel_size must be an odd integer between 1 and 31"):
        WatershedParams(kernel_size=8)
    with pytest.raises(ValueError, match="radius_y must be an integer between 0 and 1024"):
        SnakeParams(radius_y=-1)


def test_params_are_frozen_and_hashable() -> None:
    params = SnakeParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.x = 5  # type: ignore[misc]
    assert hash(params) == hash(SnakeParams())
    assert {params: 1}[SnakeParams()] == 1


@pytest.mark.parametrize("name", segmentation.algorithm_names())
def test_to_json_round_trips_and_merging_replaces_only_the_changes(name: str) -> None:
    algorithm = segmentation.get_algorithm(name)
    defaults = algorithm.default_params()
    assert algorithm.parse_params(json.loads(json.dumps(defaults.to_json()))) == defaults
    assert algorithm.parse_params({}) == defaults
    if not defaults.to_json():
        return
    first = next(iter(defaults.specs()))
    spec = defaults.specs()[first]
    changed = algorithm.parse_params({**defaults.to_json(), first: str(spec.maximum)})
    assert getattr(changed, first) == spec.maximum
    rest = {k: v for k, v in changed.to_json().items() if k != first}
    assert rest == {k: v for k, v in defaults.to_json().items() if k != first}


@pytest.mark.parametrize(("algorithm", "pname", "spec"), ALL_SPECS, ids=SPEC_IDS)
def test_every_spec_is_slider_ready(algorithm: str, pname: str, spec: ParamSpec) -> None:
    assert spec.minimum <= spec.default <= spec.maximum
    assert 0 < spec.step <= spec.maximum - spec.minimum
    assert spec.label and spec.description.endswith(".")
    if spec.kind == "int":
        assert all(
            isinstance(v, int) for v in (spec.default, spec.minimum, spec.maximum, spec.step)
        )
    if spec.odd:  # a slider from an odd minimum in steps of 2 only offers odd values
        assert spec.minimum % 2 == 1 and spec.step == 2


@pytest.mark.parametrize(("algorithm", "pname", "spec"), ALL_SPECS, ids=SPEC_IDS)
def test_limits_are_inclusive_and_just_beyond_is_rejected(
    algorithm: str, pname: str, spec: ParamSpec
) -> None:
    alg = segmentation.get_algorithm(algorithm)
    for inside in (spec.minimum, spec.maximum):
        assert getattr(alg.parse_params({pname: str(inside)}), pname) == inside
    for outside in (spec.minimum - spec.step, spec.maximum + spec.step):
        with pytest.raises(ValueError) as info:
            alg.parse_params({pname: outside})
        assert str(info.value).startswith(f"{pname} must be")
        assert f"between {spec.minimum} and {spec.maximum}" in str(info.value)


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(value=st.integers(min_value=-10_000, max_value=10_000))
def test_integer_strings_parse_exactly_when_in_range(value: int) -> None:
    spec = SnakeParams.specs()["radius"]
    try:
        parsed = SnakeParams.from_mapping({"radius": str(value)})
    except ValueError as exc:
        assert not spec.minimum <= value <= spec.maximum
        assert "radius must be an integer between 1 and 1024" in str(exc)
    else:
        assert spec.minimum <= value <= spec.maximum and parsed.radius == value


def test_no_params_has_an_empty_schema() -> None:
    assert NoParams.schema() == {} and NoParams().to_json() == {}
