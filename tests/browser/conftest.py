"""The bundled client in a real browser: Debian's Chromium driven by Playwright, on loopback.

Every test gets the real application on 127.0.0.1 (a temporary library, no demo unless asked)
and opens pages through `open_page`, each in a fresh browser context. Each page's console
messages and uncaught errors are collected; when the test ends its screenshot (plus the console
log, and the page's HTML on failure) is saved under ``test-output/<test name>/`` and any console
error fails the test.

One Chromium serves the whole session (starting Playwright and the browser costs about two
seconds), so these fixtures and the tests (``pytestmark`` in each module) run on the session's
event loop.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, async_playwright
from pydicom.dataset import Dataset

from mediastream.app import create_app
from mediastream.dicom.library import Library
from mediastream.dicom.phantom import phantom_datasets
from mediastream.settings import Settings
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.browser.client_page import page_url
from tests.netns import require_loopback_namespace

OUTPUT_ROOT = Path(__file__).resolve().parents[2] / "test-output"
LAPTOP: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> None:
    require_loopback_namespace("Browser tests")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# -- the server --------------------------------------------------------------------------------


def fill_library(
    root: Path, n_slices: int = 6, size: int = 128, datasets: Iterable[Dataset] | None = None
) -> str:
    """Store a series directly (for tests that are not about uploading); returns its UID.

    By default a small phantom series; `datasets` stores those instead.
    """
    library = Library(root, cache_bytes=0)
    library.load()
    if datasets is None:
        datasets = phantom_datasets(n_slices=n_slices, size=size)
    for i, ds in enumerate(datasets):
        assert library.ingest_dataset(ds, filename=f"{i}.dcm").outcome == "stored"
    uid = library.latest_series_uid()
    assert uid is not None
    return uid


ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest_asyncio.fixture(loop_scope="session")
async def make_server(uploads: Path) -> AsyncIterator[ServerFactory]:
    """Start the real application on 127.0.0.1; keyword arguments override `Settings`."""
    servers: list[TestServer] = []

    async def factory(**overrides: Any) -> TestServer:
        settings = Settings(
            **{"uploads": uploads, "demo": False, "ice_hosts": ("127.0.0.1",), **overrides}
        )
        server = TestServer(create_app(settings), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.close()


# -- the browser -------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class ConsoleLog:
    """What a page printed to its console, and the errors a test declared it expects."""

    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        location = message.location.get("url", "")
        line = f"[{message.type}] {message.text} ({location})"
        self.lines.append(line)
        if message.type == "error":
            self.errors.append(message.text)

    def page_error(self, error: Exception) -> None:
        self.lines.append(f"[pageerror] {error}")
        self.errors.append(f"uncaught: {error}")

    def expect_error(self, pattern: str) -> None:
        """Declare one console error the test provokes on purpose (a documented 4xx, say)."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


@dataclass
class OpenedPage:
    page: Page
    console: ConsoleLog


PageFactory = Callable[..., Awaitable[Page]]


def _output_dir(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    module = Path(str(request.node.path)).stem
    folder = OUTPUT_ROOT / f"{module}.{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest_asyncio.fixture(loop_scope="session")
async def opened(
    request: pytest.FixtureRequest, browser: Browser, make_server: ServerFactory
) -> AsyncIterator[list[OpenedPage]]:
    """The pages a test opened; torn down before the server (it depends on `make_server`)."""
    pages: list[OpenedPage] = []
    yield pages
    folder = _output_dir(request)
    call = getattr(request.node, "rep_call", None)
    failed = call is None or call.failed
    problems = []
    for i, item in enumerate(pages):
        suffix = "" if len(pages) == 1 else f"-{i + 1}"
        try:
            await item.page.screenshot(path=folder / f"screenshot{suffix}.png", full_page=True)
            if failed:
                (folder / f"page{suffix}.html").write_text(await item.page.content())
        finally:
            (folder / f"console{suffix}.txt").write_text("\n".join(item.console.lines) + "\n")
            await item.page.context.close()
        problems += item.console.unexpected()
    if problems and not failed:
        pytest.fail("console errors in the page:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def open_page(browser: Browser, opened: list[OpenedPage]) -> PageFactory:
    """Open `url` in a fresh browser context; returns the page once the client has loaded."""

    async def factory(url: str, viewport: ViewportSize | None = None) -> Page:
        # Camera/microphone permission makes Chromium gather host candidates on loopback
        # (without it, it only uses the default route's interface, which this namespace lacks).
        # The page never asks for media.
        context = await browser.new_context(
            permissions=["camera", "microphone"], viewport=viewport or LAPTOP
        )
        page = await context.new_page()
        console = ConsoleLog()
        page.on("console", console.record)
        page.on("pageerror", console.page_error)
        opened.append(OpenedPage(page, console))
        await page.goto(url)
        return page

    return factory


@pytest.fixture
def open_library_page(
    make_server: ServerFactory, open_page: PageFactory, uploads: Path
) -> PageFactory:
    """Store a small phantom series, start the server and open the page on it.

    For tests that are not about uploading; `n_slices` and `viewport` as in `fill_library` and
    `open_page`.
    """

    async def factory(n_slices: int = 6, viewport: ViewportSize | None = None) -> Page:
        fill_library(uploads, n_slices=n_slices)
        return await open_page(page_url(await make_server()), viewport=viewport)

    return factory


def console_of(opened: list[OpenedPage], page: Page) -> ConsoleLog:
    return next(item.console for item in opened if item.page is page)
