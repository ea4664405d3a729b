"""Access control and limits over HTTP: bearer token, public paths, log redaction, size limits."""

from __future__ import annotations

import io
import logging

import pytest
from aiohttp.test_utils import make_mocked_request
from aiohttp.web import Response

from mediastream.web.security import RedactingAccessLogger
from tests.web.conftest import Client, ClientFactory, upload

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
async def guarded(make_client: ClientFactory) -> Client:
    return await make_client(token=TOKEN)


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/images"),
        ("POST", "/images"),
        ("DELETE", "/images"),
        ("GET", "/images/1.2.3/frames/0.png"),
        ("DELETE", "/images/1.2.3"),
        ("POST", "/watershed"),
        ("POST", "/snakes"),
        ("POST", "/stop-stream"),
    ],
)
async def test_api_needs_the_token(guarded: Client, method: str, path: str) -> None:
    for headers in ({}, bearer("wrong-token-of-good-length"), {"Authorization": TOKEN}):
        response = await guarded.request(method, path, headers=headers)
        assert response.status == 401
        body = await response.json()
        assert body["error"] == "unauthorized" and "Bearer" in body["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_right_token_opens_the_api(guarded: Client, small_series: list[bytes]) -> None:
    response = await guarded.get("/images", headers=bearer())
    assert response.status == 404  # empty library, but authorised
    data = {"files": io.BytesIO(small_series[0])}
    response = await guarded.post("/images", data=data, headers=bearer())
    assert response.status == 200


@pytest.mark.parametrize("path", ["/", "/health", "/static/index.html"])
async def test_page_and_health_stay_public(guarded: Client, path: str) -> None:
    response = await guarded.get(path, headers={"Accept": "text/html"})
    assert response.status == 200


async def test_no_token_configured_means_open_on_loopback(client: Client) -> None:
    assert (await client.get("/images")).status == 404


def test_access_log_never_shows_the_token(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.access")
    access = RedactingAccessLogger(logger, "")
    request = make_mocked_request("GET", f"/ws?series=1.2&token={TOKEN}&x=1")
    with caplog.at_level(logging.INFO, logger="test.access"):
        access.log(request, Response(status=101), 0.01)
    assert TOKEN not in caplog.text
    assert "/ws?series=1.2&token=***&x=1" in caplog.text


async def test_file_over_the_per_file_limit_is_rejected_alone(
    make_client: ClientFactory, small_series: list[bytes]
) -> None:
    client = await make_client(max_file_mb=1)
    big = io.BytesIO(b"\x00" * (1024 * 1024 + 1))
    status, body = await upload(
        client, [("a.dcm", small_series[0]), ("big.dcm", big), ("b.dcm", small_series[1])]
    )
    assert status == 200
    outcomes = {f["filename"]: f for f in body["files"]}
    assert outcomes["big.dcm"]["reason"] == "file too large: over 1 MiB"
    assert outcomes["a.dcm"]["outcome"] == outcomes["b.dcm"]["outcome"] == "stored"


async def test_frame_size_limit_applies_before_decoding(
    make_client: ClientFactory, small_series: list[bytes]
) -> None:
    client = await make_client(max_frame_pixels=64 * 63)
    status, body = await upload(client, [("a.dcm", small_series[0])])
    assert status == 422
    assert body["files"][0]["reason"] == (
        "frame too large: 64 x 64 pixels exceeds the limit of 4032 pixels per frame"
    )
