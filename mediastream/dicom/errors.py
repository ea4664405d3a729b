"""Errors the DICOM library raises towards its callers.

Every error carries a stable machine-readable ``code`` (a class attribute, used by the web layer
in its JSON error bodies) and a human sentence as its message.
"""

from __future__ import annotations

__all__ = [
    "DeleteNotAllowed",
    "FrameDecodeError",
    "FrameNotFound",
    "IngestRejected",
    "LibraryError",
    "LibraryUnavailable",
    "SeriesNotFound",
]


class LibraryError(Exception):
    """Base class of the errors a `Library` method raises for a caller's request."""

    code: str = "library_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SeriesNotFound(LibraryError):
    """No series with the requested Series Instance UID is stored."""

    code = "series_not_found"


class FrameNotFound(LibraryError):
    """The frame index is outside the series; the message states the valid range."""

    code = "frame_not_found"


class FrameDecodeError(LibraryError):
    """A stored frame could not be decoded.

    The message names the SOP Instance UID, the transfer syntax and pydicom's reason.
    """

    code = "decode_failed"


class IngestRejected(Exception):
    """A file failed validation at ingest; ``reason`` is the sentence reported to the client.

    Internal to the library: `Library.ingest` turns it into a "rejected" `IngestOutcome`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LibraryUnavailable(LibraryError):
    """The library's storage (the PACS) cannot be reached now; the request may be retried."""

    code = "library_unavailable"


class DeleteNotAllowed(LibraryError):
    """This library refuses deletion (a PACS without ``--dicomweb-allow-delete``)."""

    code = "delete_not_allowed"
