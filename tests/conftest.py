"""Shared fixtures: small real DICOM files and an app on a temporary library."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from mediastream.dicom.phantom import phantom_datasets


def dataset_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def small_series() -> list[bytes]:
    """Six 64×64 slices of the phantom as DICOM files (one series), in slice order."""
    return [dataset_bytes(ds) for ds in phantom_datasets(n_slices=6, size=64)]


@pytest.fixture(scope="session")
def small_series_datasets() -> Callable[[], Iterator[Dataset]]:
    return lambda: phantom_datasets(n_slices=6, size=64)


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    path = tmp_path / "uploads"
    path.mkdir()
    return path
