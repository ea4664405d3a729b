"""An app on a temporary, demo-free library, and an upload helper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient

from mediastream.app import create_app
from mediastream.settings import Settings

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
Client = TestClient[web.Request, web.Application]


@pytest.fixture
def make_client(aiohttp_client: Any, uploads: Path) -> ClientFactory:
    """Start an app on the test's library folder; keyword arguments override `Settings`."""

    async def factory(**overrides: Any) -> Client:
        settings = Settings(**{"uploads": uploads, "demo": False, **overrides})
        client: Client = await aiohttp_client(create_app(settings))
        return client

    return factory


@pytest.fixture
async def client(make_client: ClientFactory) -> Client:
    return await make_client()


def form(files: Sequence[tuple[str, bytes | IO[bytes]]], field: str = "files") -> FormData:
    data = FormData(quote_fields=False)  # as browsers send names: raw
    for name, content in files:
        data.add_field(field, content, filename=name, content_type="application/dicom")
    return data


async def upload(
    client: Client, files: Sequence[tuple[str, bytes | IO[bytes]]], field: str = "files"
) -> tuple[int, dict[str, Any]]:
    response = await client.post("/images", data=form(files, field))
    return response.status, await response.json()
