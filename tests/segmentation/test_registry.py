"""The public face (segmentation/__init__.py, registry.py, base.py) shared by all algorithms."""

from __future__ import annotations

import ast
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segmentation
from segmentation import EvolvingAlgorithm, SegmentationResult
from segmentation.snakes import SnakeParams
from segmentation.watershed import WatershedParams

from .conftest import disc_mask, noisy

PACKAGE = Path(segmentation.__file__).parent


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return noisy(60.0 + 120.0 * disc_mask((96, 128), (48, 60), 25), 6.0, seed=3)


def params_for(name: str) -> Any:
    algorithm = segmentation.get_algorithm(name)
    if name == "snakes":
        return algorithm.parse_params({"x": 60, "y": 48, "radius": 36})
    if name == "region_grow":
        return algorithm.parse_params({"x": 60, "y": 48})
    return algorithm.default_params()


def test_names_in_display_order() -> None:
    assert segmentation.algorithm_names() == ["none", "region_grow", "watershed", "snakes"]
    for name in segmentation.algorithm_names():
        assert segmentation.get_algorithm(name).name == name


def test_unknown_algorithm_names_the_allowed_ones() -> None:
    with pytest.raises(
        ValueError,
        match="unknown algorithm 'graphcut'; allowed: 'none', 'region_grow', 'watershed'",
    ):
        segmentation.get_algorithm("graphcut")


@pytest.mark.parametrize("name", segmentation.algorithm_names())
def test_schema_round_trips_through_json(name: str) -> None:
    schema = segmentation.get_algorithm(name).schema()
    assert json.loads(json.dumps(schema, allow_nan=False)) == schema
    assert set(schema) == {"label", "description", "params"}
    for spec in schema["params"].values():
        assert set(spec) == {
            "type",
            "default",
            "min",
            "max",
            "step",
            "description",
            "label",
            "unit",
        }
        assert isinstance(spec["unit"], str)
        assert spec["type"] in ("int", "float")


def test_schemas_list_params_in_display_order() -> None:
    assert list(segmentation.get_algorithm("watershed").schema()["params"]) == [
        "threshold_ratio",
        "kernel_size",
        "edge_threshold",
    ]
    assert list(segmentation.get_algorithm("snakes").schema()["params"]) == [
        "x", "y", "radius", "radius_y", "alpha", "beta", "gamma",
        "w_line", "w_edge", "max_num_iter", "convergence", "kernel_size",
    ]  # fmt: skip
    assert segmentation.get_algorithm("none").schema()["params"] == {}


def test_evolution_support_is_declared() -> None:
    flags = {
        n: segmentation.get_algorithm(n).supports_evolution for n in segmentation.algorithm_names()
    }
    assert flags == {"none": False, "region_grow": False, "watershed": False, "snakes": True}
    for name, evolves in flags.items():
        assert isinstance(segmentation.get_algorithm(name), EvolvingAlgorithm) == evolves


@pytest.mark.parametrize("name", segmentation.algorithm_names())
def test_segment_contract(name: str, image: np.ndarray) -> None:
    algorithm = segmentation.get_algorithm(name)
    before = image.copy()
    image.setflags(write=False)  # any attempt to write into the input would raise
    try:
        result = algorithm.segment(image, params_for(name), spacing=(0.5, 0.8))
    finally:
        image.setflags(write=True)
    assert np.array_equal(image, before)
    assert isinstance(result, SegmentationResult) and result.stage == "final"
    assert result.overlay.shape == (*image.shape, 3) and result.overlay.dtype == np.uint8
    assert not np.shares_memory(result.overlay, image)
    json.dumps(result.stats, allow_nan=False)
    if name in ("snakes", "region_grow"):
        assert result.contour is not None and result.contour.shape[1] == 2
    else:
        assert result.contour is None
    if name == "none":
        assert result.mask is None
    else:
        assert result.mask is not None
        assert result.mask.shape == image.shape and result.mask.dtype == bool


def test_none_returns_the_plain_image(image: np.ndarray) -> None:
    plain = segmentation.get_algorithm("none")
    result = plain.segment(image, plain.default_params())
    assert np.array_equal(result.overlay, np.repeat(image[:, :, None], 3, axis=2))
    assert result.stats == {}
    colour = np.zeros((*image.shape, 3), np.uint8)
    colour[..., 1] = 200
    drawn = plain.segment(image, plain.default_params(), background=colour)
    assert np.array_equal(drawn.overlay, colour) and not np.shares_memory(drawn.overlay, colour)


@pytest.mark.parametrize("name", segmentation.algorithm_names())
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gray": np.zeros((8, 8), np.float32)}, "gray must be a 2-D uint8 array"),
        ({"gray": np.zeros((8, 8, 3), np.uint8)}, "gray must be a 2-D uint8 array"),
        ({"gray": [[1, 2], [3, 4]]}, "gray must be a 2-D uint8 array, got list"),
        ({"gray": np.zeros((2, 9), np.uint8)}, "gray must be at least 3×3 pixels, got 2×9"),
        ({"spacing": (0.7,)}, r"spacing must be \(row, col\) millimetres per pixel"),
        ({"spacing": (0.7, -1.0)}, "spacing must be two positive finite numbers"),
        ({"spacing": (0.7, float("nan"))}, "spacing must be two positive finite numbers"),
        (
            {"background": np.zeros((96, 128), np.uint8)},
            r"background must be a uint8 array of shape \(96, 128, 3\)",
        ),
        ({"background": np.zeros((96, 128, 3), np.float64)}, "background must be a uint8 array"),
    ],
)  # fmt: skip
def test_bad_inputs_are_named(
    name: str, kwargs: dict[str, Any], message: str, image: np.ndarray
) -> None:
    call: dict[str, Any] = {"gray": image, **kwargs}
    with pytest.raises(ValueError, match=message):
        segmentation.get_algorithm(name).segment(call.pop("gray"), params_for(name), **call)


def test_another_algorithms_params_are_a_type_error(image: np.ndarray) -> None:
    with pytest.raises(TypeError, match="watershed expects WatershedParams, got SnakeParams"):
        segmentation.get_algorithm("watershed").segment(image, SnakeParams())
    with pytest.raises(TypeError, match="snakes expects SnakeParams, got WatershedParams"):
        segmentation.get_algorithm("snakes").segment(image, WatershedParams())


def test_concurrent_calls_give_the_sequential_results(image: np.ndarray) -> None:
    images = [np.roll(image, shift, axis=1) for shift in (0, 5, 11, 17)]
    jobs = [(name, img) for name in ("watershed", "snakes") for img in images]

    def run(job: tuple[str, np.ndarray]) -> SegmentationResult:
        name, img = job
        return segmentation.get_algorithm(name).segment(img, params_for(name))

    sequential = [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(run, jobs))
    for one, other in zip(sequential, concurrent, strict=True):
        assert np.array_equal(one.overlay, other.overlay)
        assert one.stats == other.stats


def test_docs_describe_every_algorithm_parameter_and_stat(image: np.ndarray) -> None:
    docs = (PACKAGE.parent / "docs" / "segmentation.md").read_text()
    for name in segmentation.algorithm_names():
        algorithm = segmentation.get_algorithm(name)
        assert f"## `{name}`" in docs
        for pname in algorithm.schema()["params"]:
            assert f"`{pname}`" in docs, pname
        for key in algorithm.segment(image, params_for(name)).stats:
            assert f"`{key}`" in docs, key


def test_package_has_no_web_or_async_imports() -> None:
    forbidden = {"aiohttp", "aiortc", "asyncio", "av", "mediastream", "server"}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & forbidden, f"{path.name} imports {roots & forbidden}"
