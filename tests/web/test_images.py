"""GET /images, frame PNGs, DELETE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.web.conftest import Client, upload


async def stored_series(client: Client, small_series: list[bytes]) -> dict[str, Any]:
    await upload(client, [(f"{i}.dcm", b) for i, b in enumerate(small_series)])
    [series] = (await (await client.get("/images")).json())["series"]
    return dict(series)


def decode_png(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


async def test_empty_library_is_the_older_services_404(client: Client) -> None:
    response = await client.get("/images")
    assert response.status == 404
    body = await response.json()
    assert body["detail"] == "No images found"
    assert body["error"] == "no_images"


async def test_series_listing_has_the_documented_fields(
    client: Client, small_series: list[bytes]
) -> None:
    series = await stored_series(client, small_series)
    assert set(series) >= {
        "series_uid",
        "modality",
        "description",
        "frame_count",
        "rows",
        "columns",
        "pixel_spacing",
        "windows",
        "thumbnail",
    }
    assert series["description"] == "Demo phantom (synthetic)"
    assert series["pixel_spacing"] == pytest.approx([5.6, 5.6])
    assert [w["name"] for w in series["windows"]] == ["SOFT TISSUE", "LUNG", "BONE"]
    assert series["windows"][0]["center"] == 40 and series["windows"][0]["width"] == 400


async def test_thumbnail_is_a_small_png(client: Client, small_series: list[bytes]) -> None:
    series = await stored_series(client, small_series)
    response = await client.get(series["thumbnail"])
    assert response.status == 200
    assert response.content_type == "image/png"
    assert decode_png(await response.read()).shape == (64, 64)  # never enlarged


async def test_frame_png_size_and_window(client: Client, small_series: list[bytes]) -> None:
    series = await stored_series(client, small_series)
    base = f"/images/{series['series_uid']}/frames/2.png"
    default = decode_png(await (await client.get(base)).read())
    assert default.shape == (64, 64) and default.dtype == np.uint8
    small = decode_png(await (await client.get(base + "?size=32")).read())
    assert small.shape == (32, 32)
    bone = decode_png(await (await client.get(base + "?center=300&width=1500")).read())
    assert not np.array_equal(default, bone)  # the window really changes the picture


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?center=abc&width=400", "invalid_query"),
        ("?center=40", "invalid_window"),
        ("?center=40&width=0", "invalid_window"),
        ("?center=nan&width=10", "invalid_query"),
        ("?size=3", "invalid_query"),
    ],
)
async def test_bad_frame_queries_are_400(
    client: Client, small_series: list[bytes], query: str, code: str
) -> None:
    series = await stored_series(client, small_series)
    response = await client.get(f"/images/{series['series_uid']}/frames/0.png{query}")
    assert response.status == 400
    assert (await response.json())["error"] == code


async def test_missing_frames_and_series_are_json_404s(
    client: Client, small_series: list[bytes]
) -> None:
    series = await stored_series(client, small_series)
    response = await client.get(f"/images/{series['series_uid']}/frames/6.png")
    assert response.status == 404
    body = await response.json()
    assert body["error"] == "frame_not_found"
    assert "0" in body["detail"] and "5" in body["detail"]

    response = await client.get("/images/1.2.3.4/frames/0.png")
    assert response.status == 404
    assert (await response.json())["error"] == "series_not_found"


@pytest.mark.parametrize("uid", ["..", "..%2F..%2Fetc", "%2E%2E"])
async def test_series_uid_cannot_traverse(
    client: Client, small_series: list[bytes], uploads: Path, uid: str
) -> None:
    await stored_series(client, small_series)
    response = await client.delete(f"/images/{uid}")
    # ".." is resolved by the HTTP client to "/images" or "/" (405 there); encoded forms reach
    # the handler as a series UID that does not exist. Either way nothing is deleted.
    assert response.status in (404, 405)
    assert (await response.json())["error"] in ("series_not_found", "method_not_allowed")
    assert len(list(uploads.rglob("*.dcm"))) == 6


async def test_delete_series_and_all(
    client: Client, small_series: list[bytes], uploads: Path
) -> None:
    series = await stored_series(client, small_series)
    response = await client.delete(f"/images/{series['series_uid']}")
    assert response.status == 200
    assert (await response.json()) == {"deleted": series["series_uid"], "files_removed": 6}
    assert list(uploads.rglob("*.dcm")) == []
    assert (await client.get("/images")).status == 404
    response = await client.delete(f"/images/{series['series_uid']}")
    assert response.status == 404

    await stored_series(client, small_series)
    response = await client.delete("/images")
    assert (await response.json()) == {"deleted": "all", "files_removed": 6}
    assert (await client.get("/images")).status == 404
