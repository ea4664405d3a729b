"""A real server with a small series, and real aiortc peers — on loopback only.

Every test here opens WebRTC connections, so it must run inside a private network namespace
where only loopback exists (`make pytest` does that); both peers gather candidates on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mediastream.app import create_app
from mediastream.client import StreamClient
from mediastream.dicom.library import Library
from mediastream.dicom.phantom import phantom_datasets
from mediastream.keys import STREAMING
from mediastream.settings import Settings
from mediastream.streaming.session import StreamingContext
from tests.netns import require_loopback_namespace

SLICES, SIZE = 8, 128


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> None:
    require_loopback_namespace("Streaming tests")


def fill_library(root: Path, n_slices: int = SLICES, size: int = SIZE) -> str:
    library = Library(root, cache_bytes=0)
    library.load()
    for i, ds in enumerate(phantom_datasets(n_slices=n_slices, size=size)):
        outcome = library.ingest_dataset(ds, filename=f"{i}.dcm")
        assert outcome.outcome == "stored", outcome
    uid = library.latest_series_uid()
    assert uid is not None
    return uid


@pytest.fixture
def series_root(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "uploads"
    return root, fill_library(root)


ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def make_server(aiohttp_server: Any, series_root: tuple[Path, str]) -> ServerFactory:
    async def factory(**overrides: Any) -> TestServer:
        settings = Settings(
            **{
                "uploads": series_root[0],
                "demo": False,
                "ice_hosts": ("127.0.0.1",),
                **overrides,
            }
        )
        server: TestServer = await aiohttp_server(create_app(settings))
        return server

    return factory


@pytest.fixture
async def server(make_server: ServerFactory) -> TestServer:
    return await make_server()


@pytest.fixture
def series_uid(series_root: tuple[Path, str]) -> str:
    return series_root[1]


def streaming(server: TestServer) -> StreamingContext:
    app = server.app
    assert isinstance(app, web.Application)
    return app[STREAMING]


@pytest.fixture
async def client(server: TestServer) -> AsyncIterator[StreamClient]:
    async with StreamClient(str(server.make_url(""))) as client:
        yield client
