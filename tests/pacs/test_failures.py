"""A PACS that is down, goes down mid-stream, hangs, or refuses: the server copes, and says so."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydicom.uid import generate_uid

from mediastream.app import create_app
from mediastream.client import StreamClient
from mediastream.dicom.phantom import phantom_datasets
from mediastream.settings import Settings
from tests.conftest import dataset_bytes
from tests.orthanc import Orthanc
from tests.web.conftest import form

Client = TestClient[web.Request, web.Application]
WAIT = 20.0  # the longest any condition below may take to come true


def pacs_settings(tmp_path: Path, orthanc: Orthanc, **overrides: Any) -> Settings:
    return Settings(
        uploads=tmp_path / "server",
        demo=False,
        dicomweb=orthanc.dicomweb,
        ice_hosts=("127.0.0.1",),
        **overrides,
    )


async def health_library(client: Client) -> dict[str, Any]:
    response = await client.get("/health")
    assert response.status == 200
    library: dict[str, Any] = (await response.json())["library"]
    return library


async def until_library_status(client: Client, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        library = await health_library(client)
        if library["status"] == status:
            return library
        assert time.monotonic() < deadline, f"library still {library} after {WAIT} s"
        await asyncio.sleep(0.1)  # polling /health, bounded by the deadline


async def test_a_pacs_down_at_start_is_reported_and_retried(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    orthanc = Orthanc(tmp_path / "orthanc")  # configured, not started yet
    try:
        client: Client = await aiohttp_client(create_app(pacs_settings(tmp_path, orthanc)))
        library = await health_library(client)
        assert library["status"] == "unavailable"
        assert "connection failed" in library["detail"]

        listing = await client.get("/images")
        assert listing.status == 503
        body = await listing.json()
        assert body["error"] == "library_unavailable" and "PACS" in body["detail"]

        files = [dataset_bytes(ds) for ds in phantom_datasets(n_slices=2, size=32)]
        upload = await client.post("/images", data=form([("a.dcm", files[0])]))
        assert upload.status == 503
        body = await upload.json()
        assert body["error"] == "library_unavailable"
        assert body["files"][0]["outcome"] == "rejected"
        assert "cannot be reached" in body["files"][0]["reason"]

        orthanc.start()
        orthanc.stow(files)
        library = await until_library_status(client, "ok")
        assert library["instances"] == 2
        listing = await client.get("/images")
        assert listing.status == 200
        assert [s["frame_count"] for s in (await listing.json())["series"]] == [2]
    finally:
        orthanc.stop()


async def test_orthanc_stopped_mid_stream_then_started_again(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, orthanc: Orthanc
) -> None:
    count = 60
    orthanc.stow(dataset_bytes(ds) for ds in phantom_datasets(n_slices=count, size=64))
    server: TestServer = await aiohttp_server(create_app(pacs_settings(tmp_path, orthanc)))
    http: Client = await aiohttp_client(server)
    async with StreamClient(str(server.make_url("")), timeout=WAIT) as client:
        await client.start({"algorithm": "none", "playing": True, "image_delay": 0.05})
        await client.frame_message(lambda m: m["index"] >= 1)
        orthanc.kill()  # at once: the prefetch must not get the whole series meanwhile

        error = await client.wait_for(lambda m: m["type"] == "error")
        assert error["error"] == "library_unavailable", error
        mark = client.messages.index(error)
        assert (await health_library(http))["status"] == "unavailable"
        assert (await http.get("/images")).status == 503
        # The last picture stays on screen: video keeps coming, all of it the same slice.
        while not client.frames.empty():
            client.frames.get_nowait()
        for _ in range(2):
            await client.next_frame()
        frames = [m["index"] for m in client.messages if m["type"] == "frame"]
        last = frames[-1]
        assert {m["index"] for m in client.messages[mark:] if m["type"] == "frame"} <= {last}
        errors = [m for m in client.messages if m["type"] == "error"]
        assert len(errors) == 1  # told once per outage, not once per retry

        orthanc.start()
        resumed = await client.wait_for(
            lambda m: m["type"] == "frame" and m["index"] != last, start=mark
        )
        assert resumed["index"] == (last + 1) % count  # where it stopped, nothing skipped
        await until_library_status(http, "ok")


async def test_a_hanging_pacs_times_out_without_stalling_the_server(
    aiohttp_client: Any, tmp_path: Path, orthanc: Orthanc
) -> None:
    orthanc.stow(dataset_bytes(ds) for ds in phantom_datasets(n_slices=2, size=32))
    client: Client = await aiohttp_client(
        create_app(pacs_settings(tmp_path, orthanc, dicomweb_timeout=1.0))
    )
    assert (await health_library(client))["status"] == "ok"
    orthanc.pause()
    try:
        listing = asyncio.ensure_future(client.get("/images"))
        started = time.monotonic()
        health = await client.get("/health")  # the event loop answers meanwhile
        assert health.status == 200 and time.monotonic() - started < 0.5
        response = await listing
        assert response.status == 503
        assert "no answer within 1 s" in (await response.json())["detail"]
        assert (await health_library(client))["status"] == "unavailable"
    finally:
        orthanc.resume()
    await until_library_status(client, "ok")


REFUSE_MR = """
function ReceivedInstanceFilter(dicom, origin, info)
  return dicom.Modality ~= 'MR'
end
"""


async def test_a_pacs_refusal_is_reported_for_that_file(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    orthanc = Orthanc(tmp_path / "orthanc", lua=REFUSE_MR)
    orthanc.start()
    try:
        ct, mr = phantom_datasets(n_slices=2, size=32)
        mr.Modality = "MR"
        mr.SeriesInstanceUID = generate_uid()
        client: Client = await aiohttp_client(create_app(pacs_settings(tmp_path, orthanc)))
        response = await client.post(
            "/images", data=form([("ct.dcm", dataset_bytes(ct)), ("mr.dcm", dataset_bytes(mr))])
        )
        assert response.status == 200
        ct_outcome, mr_outcome = (await response.json())["files"]
        assert ct_outcome["outcome"] == "stored"
        assert mr_outcome["outcome"] == "rejected"
        assert mr_outcome["reason"].startswith("the PACS refused it")
        assert orthanc.series_uids() == [ct.SeriesInstanceUID]
    finally:
        orthanc.stop()


async def test_delete_through_the_api_is_refused_unless_allowed(
    aiohttp_client: Any, tmp_path: Path, orthanc: Orthanc
) -> None:
    ds = next(phantom_datasets(n_slices=1, size=32))
    orthanc.stow([dataset_bytes(ds)])
    uid = ds.SeriesInstanceUID
    refusing: Client = await aiohttp_client(create_app(pacs_settings(tmp_path, orthanc)))
    response = await refusing.delete(f"/images/{uid}")
    assert response.status == 405
    body = await response.json()
    assert body["error"] == "delete_not_allowed" and "--dicomweb-allow-delete" in body["detail"]
    assert response.headers["Allow"] == ""  # DELETE is all this resource has
    every = await refusing.delete("/images")
    assert every.status == 405 and every.headers["Allow"] == "GET, HEAD, POST"
    assert orthanc.series_uids() == [uid]

    allowing: Client = await aiohttp_client(
        create_app(pacs_settings(tmp_path / "2", orthanc, dicomweb_allow_delete=True))
    )
    response = await allowing.delete(f"/images/{uid}")
    assert response.status == 200
    assert (await response.json()) == {"deleted": uid, "files_removed": 1}
    assert orthanc.series_uids() == []
    assert (await allowing.delete(f"/images/{uid}")).status == 404


async def test_basic_auth_and_extra_headers_reach_the_pacs(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    orthanc = Orthanc(tmp_path / "orthanc", users={"alice": "s3cret"})
    orthanc.start()
    try:
        wrong: Client = await aiohttp_client(
            create_app(pacs_settings(tmp_path / "wrong", orthanc, dicomweb_auth="alice:nope"))
        )
        library = await health_library(wrong)
        assert library["status"] == "unavailable" and "401" in library["detail"]

        right: Client = await aiohttp_client(
            create_app(pacs_settings(tmp_path / "right", orthanc, dicomweb_auth="alice:s3cret"))
        )
        ds = next(phantom_datasets(n_slices=1, size=32))
        response = await right.post("/images", data=form([("a.dcm", dataset_bytes(ds))]))
        assert [f["outcome"] for f in (await response.json())["files"]] == ["stored"]

        token = base64.b64encode(b"alice:s3cret").decode()
        header: Client = await aiohttp_client(
            create_app(
                pacs_settings(
                    tmp_path / "header",
                    orthanc,
                    dicomweb_headers=(f"Authorization: Basic {token}",),
                )
            )
        )
        listing = await header.get("/images")
        assert listing.status == 200
        assert [s["series_uid"] for s in (await listing.json())["series"]] == [ds.SeriesInstanceUID]
    finally:
        orthanc.stop()
