"""The OpenAPI document, the pages showing it, and the running API held to it by schemathesis."""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi
from playwright.async_api import Route, async_playwright
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from mediastream.app import STATIC_DIR, create_app
from mediastream.dicom.phantom import phantom_datasets
from mediastream.settings import Settings
from mediastream.web.openapi import openapi_document
from tests.web.conftest import Client, ClientFactory

METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")

# -- the document -----------------------------------------------------------------------------


def test_document_is_valid_openapi_3() -> None:
    document = openapi_document()
    validate_openapi(document)  # raises, naming the offending part
    assert document["openapi"].startswith("3.")


async def test_served_document_is_the_built_one(client: Client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == openapi_document()


def _registered_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route, but HEAD (added to each GET) and static files."""
    operations = set()
    for route in app.router.routes():
        assert route.resource is not None
        info = route.resource.get_info()
        if route.method == "HEAD" or "directory" in info:
            continue
        # A dynamic route's formatter is its template without the regexes: {index:\d+} → {index}
        operations.add((route.method.lower(), info.get("path") or info["formatter"]))
    return operations


def _documented_operations() -> set[tuple[str, str]]:
    paths = openapi_document()["paths"]
    return {(method, path) for path, item in paths.items() for method in item if method in METHODS}


def test_every_route_is_documented_and_every_documented_route_exists(uploads: Path) -> None:
    registered = _registered_operations(create_app(Settings(uploads=uploads, demo=False)))
    assert ("get", "/images/{series_uid}/frames/{index}.png") in registered
    assert ("get", "/ws") in registered
    assert registered == _documented_operations()


def _concrete(path: str) -> str:
    return path.replace("{series_uid}", "1.2.3").replace("{index}", "0")


async def test_documented_security_is_what_the_server_enforces(
    make_client: ClientFactory,
) -> None:
    """With `--token`, exactly the operations documented as needing it answer 401 without it."""
    token = "a-long-enough-test-token"
    client = await make_client(token=token)
    document = openapi_document()
    for method, path in sorted(_documented_operations()):
        operation = document["paths"][path][method]
        needs_token = operation.get("security", document["security"]) != []
        if path == "/ws":
            continue  # the socket authenticates itself (docs/protocol.md)
        response = await client.request(method, _concrete(path))
        assert (response.status == 401) == needs_token, (method, path, response.status)
        if needs_token:
            assert "401" in operation["responses"], (method, path)
            assert (await response.json())["error"] == "unauthorized"
    response = await client.get("/images", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 404  # past the check: the library is empty


async def test_websocket_refusals_are_documented(make_client: ClientFactory) -> None:
    """schemathesis leaves out /ws (no request/response pair), so its refusals are checked here."""
    responses = openapi_document()["paths"]["/ws"]["get"]["responses"]
    client = await make_client(token="a-long-enough-test-token")
    for request, status in [
        (client.get("/ws"), 400),  # not a handshake
        (client.get("/ws?token=wrong"), 401),
        (client.get("/ws", headers={"Origin": "https://elsewhere.example"}), 403),
    ]:
        response = await request
        assert response.status == status
        error = (await response.json())["error"]
        documented = responses[str(status)]["content"]["application/json"]["schema"]
        assert error in documented["properties"]["error"]["enum"]


# -- the pages --------------------------------------------------------------------------------

_LINK = re.compile(r"""(?:src|href|spec-url)="([^"]+)"|url: "([^"]+)\"""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_packaged_assets(client: Client, page: str) -> None:
    response = await client.get(page)
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert "http:" not in html and "https:" not in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self' ")
    urls = [urljoin(page, a or b) for a, b in _LINK.findall(html)]
    assert "/openapi.json" in urls
    assert any(url.endswith(".js") for url in urls)
    assert all(url.startswith(("/static/vendor/", "/openapi.json")) for url in urls), urls
    for url in urls:
        asset = await client.get(url)
        assert asset.status == 200, url
        assert len(await asset.read()) > 0, url


def test_vendored_assets_carry_their_licences() -> None:
    vendor = STATIC_DIR / "vendor"
    assert "npm pack" in (vendor / "README.md").read_text()
    assert "Apache License" in (vendor / "swagger-ui" / "LICENSE").read_text()
    assert "MIT License" in (vendor / "redoc" / "LICENSE").read_text()


# Records what the page's Content-Security-Policy refused to load.
VIOLATION_RECORDER = """
window.refused = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.refused.push(`${e.effectiveDirective} ${e.blockedURI}`));
"""


@pytest.mark.parametrize(
    ("page", "rendered", "refusals"),
    [
        # Swagger UI lists each operation by path; ReDoc shows each summary as a heading.
        ("/docs", '.opblock-summary-path[data-path="/health"]', []),
        # ReDoc 2 puts the Redocly logo from its CDN in the menu and has no option against it:
        # the page's policy refuses it, and ReDoc then leaves the image out.
        (
            "/redoc",
            'h2:has-text("Liveness and counts")',
            ["img-src https://cdn.redoc.ly/redoc/logo-mini.svg"],
        ),
    ],
)
async def test_docs_pages_render_without_network(
    aiohttp_server: Any, uploads: Path, page: str, rendered: str, refusals: list[str]
) -> None:
    """A real browser shows the document, and asks nothing of any host but this server."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("this test needs Debian's chromium package (.ci/run installs it)")
    server = await aiohttp_server(create_app(Settings(uploads=uploads, demo=False)))
    origin = str(server.make_url("/")).rstrip("/")
    elsewhere: list[str] = []
    errors: list[str] = []
    console: list[str] = []

    async def only_this_server(route: Route) -> None:
        if route.request.url.startswith(f"{origin}/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    async with async_playwright() as playwright:
        # The dead proxy stops any request the page routing would not see (the browser's own).
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--proxy-server=http://127.0.0.1:9"]
        )
        try:
            browser_page = await browser.new_page()
            browser_page.on("pageerror", lambda error: errors.append(str(error)))
            browser_page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            await browser_page.add_init_script(VIOLATION_RECORDER)
            await browser_page.route("**/*", only_this_server)
            await browser_page.goto(f"{origin}{page}")
            await browser_page.wait_for_selector(rendered, timeout=30_000)
            title = await browser_page.title()
            refused = await browser_page.evaluate("window.refused")
        finally:
            await browser.close()
    assert elsewhere == []
    assert refused == refusals
    assert errors == []
    assert [m for m in console if m.startswith("error") and "Security Policy" not in m] == []
    assert "mediastream" in title


# -- schemathesis: the running app against the document ----------------------------------------


class ThreadedServer:
    """The app on 127.0.0.1, served by a thread with its own event loop.

    schemathesis sends requests synchronously (`requests`), which would block an event loop the
    app shared with the test; a server thread keeps the app in this process, on loopback.
    """

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="api-under-test", daemon=True)

    def _serve(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(self.app)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
        except BaseException as exc:
            self._error = exc
            return
        finally:
            self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(timeout=60):
            raise TimeoutError("the app did not start within 60 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the app did not stop within 60 s"


# The `small_series` fixture's series: the phantom derives its UIDs from fixed strings.
SMALL_SERIES_UID = str(next(iter(phantom_datasets(n_slices=6, size=64))).SeriesInstanceUID)
SMALL_SERIES_FRAMES = 6


class Api:
    """The app under test, holding the small series between fuzzed requests."""

    def __init__(self, url: str, series: list[bytes]) -> None:
        self.url = url
        self.http = requests.Session()
        self._series = series

    def restore_library(self) -> None:
        """Upload the series again unless it is stored (a fuzzed DELETE may have removed it)."""
        if self.http.get(f"{self.url}/images", timeout=30).status_code == 200:
            return
        files = [("files", (f"{i}.dcm", data)) for i, data in enumerate(self._series)]
        response = self.http.post(f"{self.url}/images", files=files, timeout=60)
        assert response.status_code == 200, response.text
        assert {f["series_uid"] for f in response.json()["files"]} == {SMALL_SERIES_UID}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, small_series: list[bytes]) -> Iterator[Api]:
    settings = Settings(
        uploads=tmp_path_factory.mktemp("uploads"),
        demo=False,
        max_upload_mb=8,
        ice_hosts=("127.0.0.1",),  # should a fuzzed offer ever get as far as ICE: loopback only
    )
    with ThreadedServer(create_app(settings)) as server:
        api = Api(server.url, small_series)
        api.restore_library()
        yield api
        api.http.close()


# The WebSocket handshake is no request/response pair for schemathesis; tests/streaming covers it.
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path="/ws")


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Also name the stored series and its frames, so requests get past the 404s."""
    if not path_parameters or "series_uid" not in path_parameters:
        return st.just(path_parameters)
    stored = {**path_parameters, "series_uid": SMALL_SERIES_UID}
    if "index" in path_parameters:
        in_series = st.integers(0, SMALL_SERIES_FRAMES - 1).map(lambda i: {**stored, "index": i})
        return st.one_of(st.just(path_parameters), st.just(stored), in_series)
    return st.sampled_from([path_parameters, stored])


@schema.hook
def filter_body(context: schemathesis.HookContext, body: Any) -> bool:
    """No fuzzed offer holds a media section: a peer connection never gets as far as ICE."""
    sdp = body.get("sdp") if isinstance(body, dict) else None
    return not (isinstance(sdp, str) and "m=" in sdp)


@schema.parametrize()
# Derandomized: every run sends the same requests, so a failure is never a matter of luck.
@hypothesis.settings(max_examples=25, deadline=None, derandomize=True, database=None)
def test_api_conforms_to_its_document(case: schemathesis.Case, api: Api) -> None:
    """No 5xx; statuses, content types and bodies as documented; invalid input gets a 4xx."""
    response = case.call(base_url=api.url, session=api.http, timeout=60)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            negative_data_rejection,
        ],
    )
    if case.method == "DELETE" and response.status_code == 200:
        api.restore_library()
