"""The application shell: root, health, JSON errors, CORS, demo series."""

from __future__ import annotations

from mediastream import __version__
from tests.web.conftest import Client, ClientFactory, upload


async def test_root_greets_api_clients_in_json(client: Client) -> None:
    response = await client.get("/", headers={"Accept": "application/json"})
    assert response.status == 200
    assert await response.json() == {"message": "API is running"}


async def test_root_serves_the_page_to_browsers(client: Client) -> None:
    response = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status == 200
    assert response.content_type == "text/html"
    assert '<script type="module"' in await response.text()


async def test_health_reports_version_and_counts(client: Client, small_series: list[bytes]) -> None:
    await upload(client, [(f"{i}.dcm", b) for i, b in enumerate(small_series)])
    body = await (await client.get("/health")).json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["library"] == {
        "status": "ok",
        "backend": "folder",
        "series": 1,
        "instances": 6,
        "frames": 6,
    }
    assert body["streaming"]["sessions"] == 0 and body["streaming"]["max_sessions"] == 16


async def test_unknown_paths_and_methods_are_json(client: Client) -> None:
    response = await client.get("/no/such/thing")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"

    response = await client.put("/images")
    assert response.status == 405
    body = await response.json()
    assert body["error"] == "method_not_allowed"
    assert "GET" in body["detail"] and "POST" in body["detail"]


async def test_missing_static_files_are_json_404s(client: Client) -> None:
    response = await client.get("/static/no-such-file.js")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"
    assert (await client.get("/static/js/main.js")).status == 200


async def test_cors_is_same_origin_by_default(client: Client) -> None:
    response = await client.get("/health", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_origin_allows_that_origin_only(make_client: ClientFactory) -> None:
    client = await make_client(cors_origins=("https://viewer.example",))
    response = await client.get("/health", headers={"Origin": "https://viewer.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://viewer.example"

    preflight = await client.options(
        "/images",
        headers={
            "Origin": "https://viewer.example",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://viewer.example"

    other = await client.get("/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


async def test_empty_library_gets_the_demo_phantom(make_client: ClientFactory) -> None:
    client = await make_client(demo=True)
    body = await (await client.get("/images")).json()
    [series] = body["series"]
    assert series["description"] == "Demo phantom (synthetic)"
    assert series["frame_count"] == 48
    assert (series["rows"], series["columns"]) == (512, 512)
    assert series["modality"] == "CT"
