"""The stream segments modality values (HU for CT), not the display bytes: a window change
changes the picture, never what region growing finds."""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from mediastream.client import StreamClient
from mediastream.dicom.phantom import phantom_hu_slice
from tests.streaming.conftest import SIZE, SLICES


def lung_point(index: int) -> tuple[int, int]:
    """A pixel deep inside the phantom's lung on slice `index` (x, y)."""
    hu = phantom_hu_slice(index, SLICES, SIZE)
    depth = ndimage.distance_transform_edt((hu > -900) & (hu < -700))
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(col), int(row)


def has_seq(seq: int, message: dict[str, object]) -> bool:
    return message["seq"] == seq


async def test_region_growing_ignores_the_window(client: StreamClient) -> None:
    x, y = lung_point(3)
    await client.start(
        {"index": 3, "playing": False, "algorithm": "region_grow", "params": {"x": x, "y": y}}
    )
    first = await client.frame_message(lambda m: m["algorithm"] == "region_grow")
    assert first["stats"]["found"] is True, first["stats"]
    windows = [{"center": -600, "width": 1500}, {"center": 300, "width": 100}, None]
    for window in windows:
        reply = await client.update(window=window)
        shown = await client.frame_message(functools.partial(has_seq, reply["seq"]))
        for key in ("area_px", "mean", "sd", "perimeter_px"):
            assert shown["stats"][key] == first["stats"][key], (window, key)
