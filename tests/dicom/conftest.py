"""Shared fixtures for the DICOM library tests: real pydicom test files and phantom series."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmwrite
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from mediastream.dicom.library import IngestOutcome, Library
from mediastream.dicom.phantom import phantom_datasets


def pydicom_file(name: str) -> Path:
    """A file bundled with pydicom (never downloaded)."""
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(str(path))


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    lib = Library(tmp_path / "library", cache_bytes=64 << 20)
    lib.load()
    yield lib


StoreFile = Callable[..., IngestOutcome]


@pytest.fixture
def store_file() -> StoreFile:
    """Copy a file into a fresh upload temp path of `library` and ingest it."""

    def store(
        library: Library, source: Path | bytes, filename: str = "upload.dcm"
    ) -> IngestOutcome:
        temp = library.new_temp_path()
        if isinstance(source, bytes):
            temp.write_bytes(source)
        else:
            shutil.copyfile(source, temp)
        return library.ingest(temp, filename=filename)

    return store


@pytest.fixture
def small_phantom() -> list[Dataset]:
    """Eight 32x32 slices of the demo phantom: a real CT series that is quick to make."""
    return list(phantom_datasets(8, 32))


def write_file(ds: Dataset, path: Path) -> Path:
    dcmwrite(path, ds, enforce_file_format=True)
    return path
