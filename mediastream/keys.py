"""Typed keys for everything the application object holds: the one place app state is declared."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from mediastream.batching import Batcher
from mediastream.dicom.backend import ImageStore
from mediastream.dicom.segstore import SegStore
from mediastream.settings import Settings
from mediastream.streaming.session import StreamingContext

__all__ = [
    "EXECUTOR",
    "INSPECTORS",
    "LIBRARY",
    "PROPAGATION",
    "PROPAGATION_SLOT",
    "SEGMENTATIONS",
    "SETTINGS",
    "STREAMING",
    "UPLOAD_THREADS",
    "WEBSOCKETS",
]

SETTINGS = web.AppKey("settings", Settings)
# The folder or the PACS: see mediastream.dicom.backend.
LIBRARY: web.AppKey[ImageStore] = web.AppKey("library")
# Blocking library work (header parsing, decoding, PNG encoding, file writes) runs here,
# never on the event loop.
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
# Stored DICOM SEG objects (made here or uploaded), beside the library.
SEGMENTATIONS = web.AppKey("segmentations", SegStore)
# The second direction of a 3-D propagation (the first runs in EXECUTOR): its own threads,
# so a propagation never waits for, nor occupies, the render workers.
PROPAGATION = web.AppKey("propagation", ThreadPoolExecutor)
# One propagation at a time: its two directions fill the propagation pool, and a burst of
# requests must not occupy the library threads that frames and uploads need.
PROPAGATION_SLOT = web.AppKey("propagation_slot", asyncio.Semaphore)
# Uploads: file writes and commits batched onto the library threads; validation (CPU-bound
# DICOM parsing) batched onto worker processes, so it never holds the event loop's GIL.
UPLOAD_THREADS = web.AppKey("upload_threads", Batcher)
INSPECTORS = web.AppKey("inspectors", Batcher)
# Sessions, their shared renderer and render workers.
STREAMING = web.AppKey("streaming", StreamingContext)
# Open signalling sockets, closed with GOING_AWAY on shutdown.
WEBSOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("websockets")
