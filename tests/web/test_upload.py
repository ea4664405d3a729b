"""POST /images: streaming multipart ingest, per-file outcomes, limits, atomic storage."""

from __future__ import annotations

import io
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiohttp import MultipartWriter

from mediastream.dicom.phantom import phantom_hu_slice
from tests.web.conftest import Client, ClientFactory, upload


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.dcm"))


def leftovers(root: Path) -> list[Path]:
    """Anything in the library folder that is not a stored instance or the library's own index."""
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".dcm" and not p.name.startswith(".index")
    ]


async def test_upload_series_stores_every_file_under_uid_names(
    client: Client, small_series: list[bytes], uploads: Path
) -> None:
    status, body = await upload(client, [(f"slice{i}.dcm", b) for i, b in enumerate(small_series)])
    assert status == 200
    assert [f["filename"] for f in body["files"]] == [f"slice{i}.dcm" for i in range(6)]
    assert {f["outcome"] for f in body["files"]} == {"stored"}
    series_uids = {f["series_uid"] for f in body["files"]}
    assert len(series_uids) == 1
    sop_uids = {f["sop_instance_uid"] for f in body["files"]}
    assert len(sop_uids) == 6
    names = {p.stem for p in stored_files(uploads)}
    assert names == sop_uids  # named from UIDs, never from the client's names
    assert leftovers(uploads) == []

    listing = await (await client.get("/images")).json()
    assert listing["message"] == "Images found"
    [series] = listing["series"]
    assert series["series_uid"] in series_uids
    assert series["frame_count"] == 6
    assert (series["rows"], series["columns"]) == (64, 64)
    assert series["modality"] == "CT"


async def test_second_upload_of_same_instance_is_already_stored(
    client: Client, small_series: list[bytes], uploads: Path
) -> None:
    await upload(client, [("a.dcm", small_series[0])])
    status, body = await upload(client, [("again.dcm", small_series[0])])
    assert status == 200
    [entry] = body["files"]
    assert entry["outcome"] == "already_stored"
    assert entry["filename"] == "again.dcm"
    assert len(stored_files(uploads)) == 1


async def test_mixed_batch_keeps_the_good_files(
    client: Client, small_series: list[bytes], uploads: Path
) -> None:
    truncated = small_series[1][:-1000]
    status, body = await upload(
        client,
        [
            ("good0.dcm", small_series[0]),
            ("notes.txt", b"this is not a DICOM file at all" * 10),
            ("cut.dcm", truncated),
            ("good2.dcm", small_series[2]),
        ],
    )
    assert status == 200
    outcomes = {f["filename"]: f for f in body["files"]}
    assert outcomes["good0.dcm"]["outcome"] == "stored"
    assert outcomes["good2.dcm"]["outcome"] == "stored"
    assert outcomes["notes.txt"] == {
        "filename": "notes.txt",
        "outcome": "rejected",
        "reason": "not a DICOM file",
    }
    assert outcomes["cut.dcm"]["outcome"] == "rejected"
    assert outcomes["cut.dcm"]["reason"] == "pixel data truncated: expected 8192 bytes, found 7192"
    assert len(stored_files(uploads)) == 2
    assert leftovers(uploads) == []


async def test_all_rejected_is_4xx_with_reasons(client: Client, uploads: Path) -> None:
    status, body = await upload(client, [("x.bin", b"\x00" * 300), ("empty.dcm", b"")])
    assert status == 422
    assert body["error"] == "no_valid_files"
    assert [f["reason"] for f in body["files"]] == ["not a DICOM file", "empty file"]
    assert stored_files(uploads) == [] and leftovers(uploads) == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..\\..\\boot.ini", ""])
async def test_client_file_names_never_become_paths(
    client: Client, small_series: list[bytes], uploads: Path, tmp_path: Path, name: str
) -> None:
    before = sorted(tmp_path.parent.rglob("*"))
    status, body = await upload(client, [(name, small_series[3])])
    assert status == 200
    assert body["files"][0]["filename"] == name  # reported back exactly as received
    [stored] = stored_files(uploads)
    assert stored.is_relative_to(uploads)
    assert stored.stem == body["files"][0]["sop_instance_uid"]
    after = sorted(p for p in tmp_path.parent.rglob("*") if not p.is_relative_to(uploads))
    assert after == [p for p in before if not p.is_relative_to(uploads)]


async def test_wrong_field_name_is_a_clear_400(client: Client, small_series: list[bytes]) -> None:
    status, body = await upload(client, [("a.dcm", small_series[0])], field="file")
    assert status == 400
    assert body["error"] == "no_files"
    assert "'files'" in body["detail"] and "file" in body["detail"]


async def test_not_multipart_is_415(client: Client) -> None:
    response = await client.post("/images", json={"files": []})
    assert response.status == 415
    assert (await response.json())["error"] == "unsupported_media_type"


async def test_declared_length_over_the_limit_is_413_before_reading(
    make_client: ClientFactory, uploads: Path
) -> None:
    client = await make_client(max_upload_mb=1)
    status, body = await upload(client, [("big.dcm", io.BytesIO(b"\x00" * (1024 * 1024 + 10)))])
    assert status == 413
    assert body["error"] == "request_too_large"
    assert "1 MiB" in body["detail"]
    assert leftovers(uploads) == []


async def test_streamed_body_over_the_limit_is_413_and_keeps_earlier_files(
    make_client: ClientFactory, small_series: list[bytes], uploads: Path
) -> None:
    """A chunked body has no Content-Length: the limit is enforced while streaming."""
    client = await make_client(max_upload_mb=1)

    async def too_big() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"\x00" * 65536

    with MultipartWriter("form-data") as writer:
        good = writer.append(small_series[0])
        good.set_content_disposition("form-data", name="files", filename="good.dcm")
        big = writer.append(too_big())
        big.set_content_disposition("form-data", name="files", filename="big.dcm")
    response = await client.post("/images", data=writer, chunked=True)
    assert response.status == 413
    body = await response.json()
    assert body["error"] == "request_too_large"
    assert [(f["filename"], f["outcome"]) for f in body["files"]] == [("good.dcm", "stored")]
    assert len(stored_files(uploads)) == 1
    assert leftovers(uploads) == []


async def test_library_survives_restart(
    make_client: ClientFactory, small_series: list[bytes]
) -> None:
    first = await make_client()
    await upload(first, [(f"{i}.dcm", b) for i, b in enumerate(small_series)])
    listing = await (await first.get("/images")).json()
    await first.close()

    second = await make_client()
    again = await (await second.get("/images")).json()
    assert again["series"] == listing["series"]
    response = await second.get(again["series"][0]["thumbnail"])
    assert response.status == 200


async def test_series_is_ordered_by_position_whatever_the_upload_order(
    client: Client, small_series: list[bytes]
) -> None:
    shuffled = list(enumerate(small_series))
    random.Random(7).shuffle(shuffled)
    await upload(client, [(f"{i}.dcm", b) for i, b in shuffled])
    [series] = (await (await client.get("/images")).json())["series"]
    for index in range(6):
        # Soft-tissue window (40/400), the phantom's first preset, applied explicitly.
        response = await client.get(
            f"/images/{series['series_uid']}/frames/{index}.png?center=40&width=400"
        )
        assert response.status == 200
        png = cv2.imdecode(np.frombuffer(await response.read(), np.uint8), cv2.IMREAD_UNCHANGED)
        assert png is not None
        hu = phantom_hu_slice(index, n_slices=6, size=64).astype(np.float64)
        expected = np.clip((hu - (40 - 0.5)) / (400 - 1) + 0.5, 0, 1) * 255
        assert np.abs(png.astype(np.float64) - expected).max() <= 1.0


async def test_part_headers_have_a_size_limit(client: Client, small_series: list[bytes]) -> None:
    status, body = await upload(client, [("x" * 20_000 + ".dcm", small_series[0])])
    assert status == 400
    assert body["error"] == "malformed_multipart"


@pytest.mark.parametrize("cut_in", ["second file", "close delimiter"])
async def test_a_body_cut_short_is_a_400_that_keeps_only_whole_files(
    client: Client, small_series: list[bytes], uploads: Path, cut_in: str
) -> None:
    """The body ends early (a client or proxy gave up): a file closed by the next part's
    boundary is stored and listed; the last one, cut or never closed, is neither stored nor
    reported, whatever its bytes would parse as."""
    boundary = "8d7c6b5a4f3e2d1c"
    body = b""
    for i, data in enumerate(small_series[:2]):
        body += f"--{boundary}\r\n".encode()
        body += f'Content-Disposition: form-data; name="files"; filename="{i}.dcm"\r\n\r\n'.encode()
        body += data + b"\r\n"
    # cut in the middle of the second file, or just before the final "--"
    cut = (
        body[: -len(small_series[1]) // 2]
        if cut_in == "second file"
        else body + b"--" + boundary.encode()
    )
    response = await client.post(
        "/images",
        data=cut,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "malformed_multipart"
    assert answer["detail"].startswith("The multipart body could not be read: the body ends ")
    assert [(f["filename"], f["outcome"]) for f in answer["files"]] == [("0.dcm", "stored")]
    [stored] = stored_files(uploads)
    assert stored.read_bytes() == small_series[0]
    assert leftovers(uploads) == []


@pytest.mark.parametrize("fsync", [False, True])
async def test_fsync_flushes_each_stored_file_and_its_rename(
    make_client: ClientFactory,
    small_series: list[bytes],
    uploads: Path,
    monkeypatch: pytest.MonkeyPatch,
    fsync: bool,
) -> None:
    flushed: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    client = await make_client(fsync=fsync)
    status, body = await upload(client, [(f"{i}.dcm", b) for i, b in enumerate(small_series[:3])])
    assert status == 200 and {f["outcome"] for f in body["files"]} == {"stored"}
    if fsync:
        # Each upload's own file while still in the incoming folder (before the rename), then
        # the series folder holding the renamed file; the library folder once, for the new series.
        series_folder = str(uploads / body["files"][0]["series_uid"])
        files = [path for path in flushed if Path(path).parent == uploads / ".incoming"]
        assert len(files) == 3
        assert flushed.count(series_folder) == 3
        assert flushed.count(str(uploads)) == 1
        assert len(flushed) == 7
    else:
        assert flushed == []
    assert len(stored_files(uploads)) == 3
