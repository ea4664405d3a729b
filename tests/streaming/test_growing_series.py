"""A series that grows while it streams: renders answer for the frame they show, not the index.

Uploading instances that sort before the ones already stored shifts every index; a render
cached under the old index must not answer for the new one, and `count` follows the series.
"""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
import cv2
import numpy as np
from aiohttp.test_utils import TestServer
from pydicom.dataset import Dataset

from mediastream.client import StreamClient
from mediastream.dicom.phantom import phantom_datasets
from tests.streaming.conftest import ServerFactory
from tests.streaming.test_stream import decoded

SIZE = 64


def file_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


async def upload(server: TestServer, datasets: list[Dataset]) -> None:
    form = aiohttp.FormData()
    for i, ds in enumerate(datasets):
        form.add_field("files", file_bytes(ds), filename=f"{i}.dcm")
    async with aiohttp.ClientSession() as http:
        response = await http.post(server.make_url("/images"), data=form)
        outcomes = [f["outcome"] for f in (await response.json())["files"]]
    assert outcomes == ["stored"] * len(datasets)


async def png(server: TestServer, uid: str, index: int) -> np.ndarray:
    async with aiohttp.ClientSession() as http:
        response = await http.get(server.make_url(f"/images/{uid}/frames/{index}.png"))
        data = await response.read()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return np.asarray(image, dtype=np.float64)


def distance(picture: np.ndarray, reference: np.ndarray) -> float:
    gray = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY).astype(np.float64)
    return float(np.abs(gray - reference).mean())


async def test_the_same_index_shows_the_new_slice_after_the_series_grows(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    slices = list(phantom_datasets(n_slices=48, size=SIZE))  # ascending position
    later, earlier = [slices[40], slices[44], slices[47]], [slices[2], slices[6]]
    server = await make_server(uploads=tmp_path)
    await upload(server, later)
    uid = slices[0].SeriesInstanceUID
    old_slice = await png(server, uid, 1)  # slices[44]

    async with StreamClient(str(server.make_url(""))) as client:
        await client.start({"series": uid, "index": 1, "playing": False, "algorithm": "none"})
        first = await client.frame_message(lambda m: m["index"] == 1)
        assert first["count"] == 3
        before = await decoded(client, first)
        assert distance(before.image, old_slice) < 8

        await upload(server, earlier)  # both sort before every stored slice
        new_slice = await png(server, uid, 1)  # now slices[6]
        assert float(np.abs(new_slice - old_slice).mean()) > 20  # the test can tell them apart

        reply = await client.update(index=1)
        assert reply["state"]["count"] == 5
        message = await client.frame_message(lambda m: m["seq"] == reply["seq"])
        assert message["index"] == 1 and message["count"] == 5
        after = await decoded(client, message)
        assert distance(after.image, new_slice) < 8
        assert distance(after.image, new_slice) < distance(after.image, old_slice) / 2

        reply = await client.update(index=4)  # an index that did not exist before
        message = await client.frame_message(lambda m: m["seq"] == reply["seq"])
        assert message["index"] == 4 and message["count"] == 5
