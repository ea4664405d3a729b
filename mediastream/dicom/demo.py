"""The demo series a fresh server starts with: the synthetic phantom, stored like an upload."""

from __future__ import annotations

from mediastream.dicom.library import IngestOutcome, Library
from mediastream.dicom.phantom import DEFAULT_SLICES, phantom_datasets

__all__ = ["install_demo"]


def install_demo(library: Library, n_slices: int = DEFAULT_SLICES) -> list[IngestOutcome]:
    """Generate the phantom and store it through `Library.ingest_dataset`, one file per slice.

    The phantom's UIDs are fixed, so installing it again reports every slice "already_stored".
    """
    return [
        library.ingest_dataset(ds, filename=f"demo-phantom-{index:03d}.dcm")
        for index, ds in enumerate(phantom_datasets(n_slices))
    ]
