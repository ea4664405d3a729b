"""The one interface the server needs from its image library, whatever stores the images.

Two implementations: `mediastream.dicom.library.Library`, the folder on this machine (the
default), and `mediastream.dicom.pacs.PacsLibrary`, a PACS over DICOMweb (``--dicomweb``).

Threading contract: the cheap lookups (`get_series`, `latest_series_uid`, `frame_key`,
`counts`, `status`) answer from memory and may be called on the event loop; everything else may
do I/O (disk, the PACS) and is called from worker threads. Errors are `LibraryError`s; a PACS
that cannot be reached raises `LibraryUnavailable`.

Storing an instance is `commit` (or `ingest_dataset` for a dataset built in memory): that is all
a new kind of instance — a DICOM SEG export, say — needs to reach either store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from mediastream.dicom.cache import FrameKey
from mediastream.dicom.display import DisplayFrame, Window
from mediastream.dicom.ingest import Limits
from mediastream.dicom.library import IngestOutcome, Inspection
from mediastream.dicom.series import InstanceRecord, SeriesInfo

__all__ = ["ImageStore"]


class ImageStore(Protocol):
    """List series, order their instances, read frames, store instances, delete."""

    limits: Limits

    # -- life cycle -------------------------------------------------------------------------

    def load(self) -> None:
        """Read the stored index at start-up. A store that cannot be reached yet does not
        raise: it reports so in `status` and keeps trying."""

    def close(self) -> None:
        """Release connections and threads; idempotent."""

    def status(self) -> dict[str, object]:
        """For ``/health``: ``{"status": "ok", …counts}`` or ``{"status": "unavailable",
        "detail": …}``; never does I/O."""

    # -- reading ----------------------------------------------------------------------------

    def is_empty(self) -> bool: ...

    def list_series(self) -> list[SeriesInfo]:
        """Every series, oldest first (a PACS is asked afresh)."""

    def get_series(self, series_uid: str) -> SeriesInfo:
        """One series; raises SeriesNotFound."""

    def latest_series_uid(self) -> str | None: ...

    def counts(self) -> dict[str, int]: ...

    def frame(self, series_uid: str, index: int, window: Window | None = None) -> DisplayFrame:
        """Frame `index` in display order through the display pipeline."""

    def frame_key(self, series_uid: str, index: int) -> FrameKey:
        """What frame `index` shows now (see `Library.frame_key`)."""

    def frame_values(self, series_uid: str, index: int) -> NDArray[np.generic]:
        """Frame `index` after the modality LUT."""

    def instances(self, series_uid: str) -> tuple[InstanceRecord, ...]:
        """A series' instances in display order (their headers hold the geometry)."""

    def instance_file(self, series_uid: str, record: InstanceRecord) -> Path:
        """A local file holding the instance `record` (a PACS retrieves it first)."""

    def keep_derived(self, path: Path, sop_instance_uid: str) -> None:
        """Keep a derived object (an exported DICOM SEG) where the images are kept: the folder
        has it already beside them; a PACS receives it (STOW-RS). Raises LibraryUnavailable,
        or IngestRejected with the PACS's reason."""

    # -- writing ----------------------------------------------------------------------------

    def new_temp_path(self) -> Path:
        """Where an upload is written before `commit`; on the store's local disk."""

    def ingest(self, temp_path: Path, *, filename: str) -> IngestOutcome:
        """Validate and store; `temp_path` never remains."""

    def commit(self, temp_path: Path, inspection: Inspection, *, filename: str) -> IngestOutcome:
        """Store an instance `inspect_upload` has validated; `temp_path` never remains."""

    def ingest_dataset(self, ds: Dataset, *, filename: str) -> IngestOutcome:
        """Store a dataset built in memory (the demo series; later, exported SEG)."""

    def delete_series(self, series_uid: str) -> int:
        """Delete a series; how many instances went. Raises SeriesNotFound, DeleteNotAllowed."""

    def delete_all(self) -> int:
        """Delete every series. Raises DeleteNotAllowed where that is refused."""
