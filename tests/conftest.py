"""Shared fixtures: small real DICOM files and an app on a temporary library."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import RLELossless

from mediastream.dicom.phantom import phantom_datasets
from mediastream.process import configured
from mediastream.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def process_settings() -> Iterator[None]:
    """What server.py applies at start-up, once for the session: every peer the tests make,
    servers' and clients' alike, gathers ICE candidates on 127.0.0.1 only. (pydicom's warning
    filter is in pyproject.toml, where pytest keeps its own filters.)"""
    with configured(Settings(ice_hosts=("127.0.0.1",))):
        yield


def dataset_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def broken_second_frame() -> Dataset:
    """A real 2-frame RLE file that ingest accepts (frame 0 decodes) whose frame 1 is garbage."""
    good = bytes(dcmread(str(get_testdata_file("MR_small_RLE.dcm"))).PixelData)
    fragment = next(generate_frames(good, number_of_frames=1))
    ds = next(phantom_datasets(n_slices=1, size=64))
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.NumberOfFrames = 2
    ds.PixelData = encapsulate([fragment, b"\xff" * 64])
    ds["PixelData"].VR = "OB"
    return ds


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
