"""One library test-suite, two stores: the folder, and a real Orthanc over DICOMweb.

Orthanc is Debian's (`orthanc`, `orthanc-dicomweb`), started per test on a free loopback port
with its own storage; these tests run in the loopback-only namespace (`make pytest`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mediastream.dicom.backend import ImageStore
from mediastream.dicom.dicomweb import DicomwebConfig
from mediastream.dicom.library import Library
from mediastream.dicom.pacs import PacsLibrary
from tests.netns import require_loopback_namespace
from tests.orthanc import Orthanc

STORES = ["folder", "orthanc"]


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> None:
    require_loopback_namespace("PACS tests")


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "orthanc")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    """The store a suite test runs against."""
    return str(request.param)


@pytest.fixture
def pacs(kind: str, request: pytest.FixtureRequest) -> Orthanc | None:
    """The Orthanc behind an "orthanc" store (started only then); None for the folder."""
    if kind != "orthanc":
        return None
    server: Orthanc = request.getfixturevalue("orthanc")
    return server


StoreFactory = Callable[..., ImageStore]


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[StoreFactory]:
    """Open a store of a kind on a fresh local folder; closed after the test."""
    opened: list[ImageStore] = []

    def factory(kind: str, orthanc: Orthanc | None = None, **options: object) -> ImageStore:
        root = tmp_path / f"{kind}-{len(opened)}"
        store: ImageStore
        if kind == "folder":
            store = Library(root, cache_bytes=64 << 20)
        else:
            assert orthanc is not None
            store = PacsLibrary(
                DicomwebConfig(orthanc.dicomweb, timeout=5.0),
                root,
                cache_bytes=64 << 20,
                **options,  # type: ignore[arg-type]
            )
        store.load()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
