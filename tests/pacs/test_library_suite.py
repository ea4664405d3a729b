"""The library's behaviour, the same on both stores: the folder and Orthanc over DICOMweb.

Every test here runs twice (the `kind` fixture): once on the folder, once on a real Orthanc.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydicom.dataset import Dataset
from scipy.ndimage import distance_transform_edt

from mediastream.app import create_app
from mediastream.client import StreamClient
from mediastream.dicom.backend import ImageStore
from mediastream.dicom.errors import DeleteNotAllowed, SeriesNotFound
from mediastream.dicom.library import Library
from mediastream.dicom.phantom import phantom_datasets, phantom_hu_slice
from mediastream.settings import Settings
from tests.conftest import dataset_bytes
from tests.orthanc import Orthanc
from tests.web.conftest import form

from .conftest import StoreFactory

SLICES, SIZE = 6, 64
Client = TestClient[web.Request, web.Application]


def series_files(n: int = SLICES, size: int = SIZE) -> list[bytes]:
    return [dataset_bytes(ds) for ds in phantom_datasets(n_slices=n, size=size)]


def put_series(store: ImageStore, pacs: Orthanc | None, files: list[bytes]) -> None:
    """Fill a store from outside: a copy into the folder, or STOW-RS straight into Orthanc
    (not through the code under test)."""
    if pacs is None:
        for i, data in enumerate(files):
            temp = store.new_temp_path()
            temp.write_bytes(data)
            assert store.ingest(temp, filename=f"{i}.dcm").outcome == "stored"
    else:
        answer = pacs.stow(files)
        assert len(answer["00081199"]["Value"]) == len(files)


def slice_order(datasets: list[Dataset]) -> list[str]:
    return [ds.SOPInstanceUID for ds in sorted(datasets, key=lambda d: float(d.SliceLocation))]


def settings_for(tmp_path: Path, pacs: Orthanc | None, **overrides: Any) -> Settings:
    extra: dict[str, Any] = {} if pacs is None else {"dicomweb": pacs.dicomweb}
    return Settings(uploads=tmp_path / "server", demo=False, **extra, **overrides)


def test_a_stored_series_is_listed_and_read_in_slice_order(
    kind: str, make_store: StoreFactory, pacs: Orthanc | None
) -> None:
    datasets = list(phantom_datasets(n_slices=SLICES, size=SIZE))
    files = [dataset_bytes(ds) for ds in datasets]
    store = make_store(kind, pacs)
    put_series(store, pacs, random.Random(13).sample(files, len(files)))

    [info] = store.list_series()
    assert (info.series_uid, info.frame_count, info.rows, info.columns, info.modality) == (
        datasets[0].SeriesInstanceUID,
        SLICES,
        SIZE,
        SIZE,
        "CT",
    )
    assert store.counts() == {"series": 1, "instances": SLICES, "frames": SLICES}
    assert store.status()["status"] == "ok"
    keys = [store.frame_key(info.series_uid, i)[0] for i in range(SLICES)]
    assert keys == slice_order(datasets)
    by_sop = {ds.SOPInstanceUID: ds for ds in datasets}
    for i, sop in enumerate(keys):
        ds = by_sop[sop]
        expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(store.frame_values(info.series_uid, i), expected)
    with pytest.raises(SeriesNotFound):
        store.get_series("1.2.3.4")


def test_frames_from_orthanc_are_pixel_identical_to_the_folder(
    make_store: StoreFactory, orthanc: Orthanc
) -> None:
    files = series_files()
    folder, pacs = make_store("folder"), make_store("orthanc", orthanc)
    put_series(folder, None, files)
    put_series(pacs, orthanc, files)
    [a], [b] = folder.list_series(), pacs.list_series()
    assert a == b
    for i in range(a.frame_count):
        assert folder.frame_key(a.series_uid, i)[0] == pacs.frame_key(b.series_uid, i)[0]
        left, right = folder.frame(a.series_uid, i), pacs.frame(b.series_uid, i)
        np.testing.assert_array_equal(left.gray, right.gray)
        np.testing.assert_array_equal(
            folder.frame_values(a.series_uid, i), pacs.frame_values(b.series_uid, i)
        )


async def test_an_upload_through_the_api_lands_in_the_store(
    aiohttp_client: Any, tmp_path: Path, pacs: Orthanc | None
) -> None:
    client: Client = await aiohttp_client(create_app(settings_for(tmp_path, pacs)))
    files = series_files(3)
    upload = [(f"{i}.dcm", data) for i, data in enumerate(files)]
    response = await client.post("/images", data=form([*upload, ("junk.dcm", b"not dicom")]))
    assert response.status == 200
    outcomes = (await response.json())["files"]
    assert [o["outcome"] for o in outcomes] == ["stored"] * 3 + ["rejected"]
    assert outcomes[3]["reason"] == "not a DICOM file"
    series_uid = outcomes[0]["series_uid"]

    again = await client.post("/images", data=form(upload[:1]))
    assert (await again.json())["files"] == [{**outcomes[0], "outcome": "already_stored"}]

    listing = await (await client.get("/images")).json()
    assert [(s["series_uid"], s["frame_count"]) for s in listing["series"]] == [(series_uid, 3)]
    png = await client.get(f"/images/{series_uid}/frames/1.png")
    assert png.status == 200 and png.content_type == "image/png"
    health = await (await client.get("/health")).json()
    assert health["library"]["status"] == "ok" and health["library"]["instances"] == 3
    if pacs is not None:
        sent = {o["sop_instance_uid"]: files[i] for i, o in enumerate(outcomes[:3])}
        assert pacs.series_uids() == [series_uid]
        assert pacs.instance_uids(series_uid) == sorted(sent)
        for sop, data in sent.items():
            assert pacs.instance_file(sop) == data  # byte-identical in the PACS


async def play_every_slice(client: StreamClient, count: int) -> set[int]:
    """Play at image_delay 0 until each slice has been reported shown; the indices seen."""
    mark = len(client.messages)
    await client.start({"algorithm": "none", "playing": True, "image_delay": 0})
    seen: set[int] = set()
    while len(seen) < count:
        message = await client.wait_for(lambda m: m["type"] in ("frame", "error"), start=mark)
        mark = client.messages.index(message) + 1
        assert message["type"] == "frame", message
        assert message["count"] == count
        seen.add(message["index"])
    return seen


async def test_a_series_streams_from_the_store(
    aiohttp_server: Any, tmp_path: Path, pacs: Orthanc | None
) -> None:
    files = series_files(SLICES, 128)
    settings = settings_for(tmp_path, pacs, ice_hosts=("127.0.0.1",))
    if pacs is None:
        folder = Library(settings.uploads, cache_bytes=0)
        folder.load()
        put_series(folder, None, files)
    else:
        pacs.stow(files)
    server = await aiohttp_server(create_app(settings))
    async with StreamClient(str(server.make_url(""))) as client:
        assert await play_every_slice(client, SLICES) == set(range(SLICES))
        picture = await client.next_frame()
        assert picture.image.shape[:2] == (128, 128)


def test_delete_removes_the_series_where_it_is_allowed(
    kind: str, make_store: StoreFactory, pacs: Orthanc | None
) -> None:
    store = make_store(kind, pacs)
    put_series(store, pacs, series_files(2))
    [info] = store.list_series()
    if pacs is not None:  # off by default on a PACS
        with pytest.raises(DeleteNotAllowed):
            store.delete_series(info.series_uid)
        with pytest.raises(DeleteNotAllowed):
            store.delete_all()
        assert pacs.series_uids() == [info.series_uid]
        store = make_store(kind, pacs, allow_delete=True)
        assert store.get_series(info.series_uid) == info
    assert store.delete_series(info.series_uid) == 2
    assert store.list_series() == []
    with pytest.raises(SeriesNotFound):
        store.get_series(info.series_uid)
    if pacs is not None:
        assert pacs.series_uids() == []


async def test_an_exported_segmentation_is_kept_where_the_images_are(
    aiohttp_client: Any, tmp_path: Path, pacs: Orthanc | None
) -> None:
    """A DICOM SEG made by the server: served by it, and in the PACS too (QIDO finds it)."""
    client: Client = await aiohttp_client(create_app(settings_for(tmp_path, pacs)))
    files = series_files(SLICES, 128)
    response = await client.post(
        "/images", data=form([(f"{i}.dcm", d) for i, d in enumerate(files)])
    )
    series_uid = (await response.json())["files"][0]["series_uid"]
    hu = phantom_hu_slice(3, SLICES, 128)
    depth = distance_transform_edt((hu > -900) & (hu < -700))  # the lung
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    body = {
        "algorithm": "region_grow",
        "params": {"x": int(col), "y": int(row)},
        "index": 3,
        "propagate": False,
        "label": "lung",
    }
    created = await client.post(f"/images/{series_uid}/segmentations", json=body)
    assert created.status == 201, await created.text()
    seg = await created.json()
    served = await client.get("/" + seg["url"])
    assert served.status == 200 and served.content_type == "application/dicom"
    data = await served.read()
    listing = await (await client.get("/images")).json()
    assert [s["series_uid"] for s in listing["series"]] == [series_uid]  # a SEG is no series
    if pacs is not None:
        found = pacs.get_json("/dicom-web/series?Modality=SEG")
        assert len(found) == 1
        seg_series = found[0]["0020000E"]["Value"][0]
        assert seg_series != series_uid
        assert pacs.instance_uids(seg_series) == [seg["seg_uid"]]
        assert pacs.instance_file(seg["seg_uid"]) == data  # byte-identical in the PACS
