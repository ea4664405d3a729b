"""The application factory: settings in, a ready `web.Application` out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import aiohttp_cors
from aiohttp import WSCloseCode, web

from mediastream import __version__
from mediastream.batching import Batcher
from mediastream.dicom.backend import ImageStore
from mediastream.dicom.demo import install_demo
from mediastream.dicom.ingest import Limits
from mediastream.dicom.library import Library, init_inspector_process
from mediastream.dicom.pacs import PacsLibrary
from mediastream.dicom.segstore import SegStore
from mediastream.keys import (
    EXECUTOR,
    INSPECTORS,
    LIBRARY,
    PROPAGATION,
    PROPAGATION_SLOT,
    SEGMENTATIONS,
    SETTINGS,
    STREAMING,
    UPLOAD_THREADS,
    WEBSOCKETS,
)
from mediastream.settings import Settings
from mediastream.streaming.ice import rtc_configuration
from mediastream.streaming.render import Renderer, ResultCache
from mediastream.streaming.rest import post_snakes, post_watershed, stop_rest_streams
from mediastream.streaming.session import StreamingContext
from mediastream.streaming.signalling import websocket_handler
from mediastream.volumes import lower_thread_priority
from mediastream.web.docs import openapi_json, redoc_page, swagger_ui_page
from mediastream.web.errors import error_middleware, missing_static_files
from mediastream.web.images import delete_all_images, delete_series, get_frame_png, list_images
from mediastream.web.security import auth_middleware
from mediastream.web.segmentations import (
    delete_segmentation,
    get_segmentation_file,
    list_segmentations,
    post_segmentation,
)
from mediastream.web.upload import post_images

__all__ = ["STATIC_DIR", "create_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
JSON_BODY_LIMIT = 1 << 20  # non-streaming bodies (JSON); uploads stream and have their own limit


async def index(request: web.Request) -> web.StreamResponse:
    """The bundled client for browsers; the older service's greeting for API clients."""
    if "text/html" in request.headers.get("Accept", ""):
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
    return web.json_response({"message": "API is running"})


async def health(request: web.Request) -> web.Response:
    """Liveness and counts; no patient data. `tasks` helps spot leaks (see bench/stream.py)."""
    streaming = request.app[STREAMING]
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "library": request.app[LIBRARY].status(),
            "streaming": {
                "sessions": len(streaming.sessions),
                "max_sessions": streaming.max_sessions,
                "viewers": streaming.shares.viewer_count(),
                "tasks": len(asyncio.all_tasks()),
            },
        }
    )


async def executor_ctx(app: web.Application) -> AsyncIterator[None]:
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="library")
    # forkserver: workers start from a clean, preloaded process (not a fork of this threaded
    # one) in milliseconds; they are started on first use.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mediastream.batching", "mediastream.dicom.library"])
    workers = app[SETTINGS].ingest_workers

    def inspectors() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=init_inspector_process,
            initargs=(os.getpid(),),
        )

    app[EXECUTOR] = executor
    # A validation worker that dies (a decoder crash, the OOM killer) costs the files it was
    # checking; the pool is then replaced.
    app[INSPECTORS] = Batcher(inspectors(), slots=workers, restart=inspectors)
    app[UPLOAD_THREADS] = Batcher(executor, slots=2)
    propagation = ThreadPoolExecutor(
        max_workers=2, thread_name_prefix="propagation", initializer=lower_thread_priority
    )
    app[PROPAGATION] = propagation
    app[PROPAGATION_SLOT] = asyncio.Semaphore(1)
    # Start the worker now (about half a second the first time), not on the first upload.
    await app[INSPECTORS].call(os.getpid)
    yield
    app[INSPECTORS].executor.shutdown(wait=True, cancel_futures=True)
    executor.shutdown(wait=True, cancel_futures=True)
    propagation.shutdown(wait=True, cancel_futures=True)


async def library_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the library (headers only) and add the demo series to an empty folder.

    A PACS that cannot be reached does not stop the server: it starts, says so in /health and
    keeps trying. The demo series never goes into a PACS: synthetic images do not belong there.
    """
    settings, library = app[SETTINGS], app[LIBRARY]
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(app[EXECUTOR], library.load)
        await loop.run_in_executor(app[EXECUTOR], app[SEGMENTATIONS].load)
        if settings.demo and isinstance(library, Library) and library.is_empty():
            log.info("library is empty: generating the demo phantom series")
            await loop.run_in_executor(app[EXECUTOR], install_demo, library)
        log.info("library: %s", library.status())
        yield
    finally:
        await loop.run_in_executor(app[EXECUTOR], library.close)


async def streaming_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sessions share one renderer, one result cache and a pool of render workers."""
    settings = app[SETTINGS]
    executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="render")
    app[STREAMING] = StreamingContext(
        library=app[LIBRARY],
        renderer=Renderer(
            app[LIBRARY], ResultCache(settings.result_cache_bytes), app[SEGMENTATIONS]
        ),
        executor=executor,
        rtc_configuration=rtc_configuration(settings.ice_servers),
        max_fps=settings.max_fps,
        max_sessions=settings.max_sessions,
        max_viewers=settings.max_viewers,
        video_bitrate=settings.video_kbps * 1000,
        max_message_bytes=settings.max_message_bytes,
        max_updates_per_second=settings.max_updates_per_second,
    )
    yield
    await close_sessions(app)
    executor.shutdown(wait=True, cancel_futures=True)


async def close_sessions(app: web.Application) -> None:
    """On shutdown: tell every signalling socket we are going away, close every peer."""
    sockets: set[web.WebSocketResponse] = app[WEBSOCKETS]
    for ws in list(sockets):
        with contextlib.suppress(ConnectionError):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
    if STREAMING in app:
        sessions = set(app[STREAMING].sessions)
        await asyncio.gather(*(s.close("server shutdown") for s in sessions))


def _setup_cors(app: web.Application, origins: tuple[str, ...]) -> None:
    """Same-origin only unless origins are configured (an external frontend elsewhere)."""
    if not origins:
        return
    options = aiohttp_cors.ResourceOptions(
        allow_credentials=True, expose_headers="*", allow_headers="*", allow_methods="*"
    )
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for resource in list(app.router.resources()):
        cors.add(resource)


def _library(settings: Settings, limits: Limits) -> ImageStore:
    """The folder under --uploads, or the PACS of --dicomweb (cached under --uploads)."""
    config = settings.dicomweb_config()
    if config is None:
        return Library(
            Path(settings.uploads),
            cache_bytes=settings.cache_bytes,
            limits=limits,
            fsync=settings.fsync,
        )
    return PacsLibrary(
        config,
        Path(settings.uploads),
        cache_bytes=settings.cache_bytes,
        limits=limits,
        allow_delete=settings.dicomweb_allow_delete,
    )


def create_app(settings: Settings) -> web.Application:
    """Build the application: state, lifecycle, routes.

    Changes nothing outside the application: the process-wide settings (``--ice-host``,
    ``--video-kbps``, pydicom's reports) are applied by `mediastream.process.configure_process`.
    """
    app = web.Application(
        middlewares=[error_middleware, auth_middleware, missing_static_files(STATIC_DIR)],
        client_max_size=JSON_BODY_LIMIT,
    )
    app[SETTINGS] = settings
    limits = Limits(max_frame_pixels=settings.max_frame_pixels, max_frames=settings.max_frames)
    app[LIBRARY] = _library(settings, limits)
    app[SEGMENTATIONS] = SegStore(Path(settings.uploads), fsync=settings.fsync)
    app[WEBSOCKETS] = set()
    app.cleanup_ctx.extend([executor_ctx, library_ctx, streaming_ctx])
    app.on_shutdown.append(close_sessions)
    # --ice-host and --video-kbps are process-wide (aiortc has no per-connection option): they
    # are applied at start-up by mediastream.process, not here.

    app.add_routes(
        [
            web.get("/", index),
            web.get("/health", health),
            web.get("/openapi.json", openapi_json),
            web.get("/docs", swagger_ui_page),
            web.get("/redoc", redoc_page),
            web.get("/images", list_images),
            web.post("/images", post_images),
            web.delete("/images", delete_all_images),
            web.delete("/images/{series_uid}", delete_series),
            web.get(r"/images/{series_uid}/frames/{index:\d+}.png", get_frame_png),
            web.post("/images/{series_uid}/segmentations", post_segmentation),
            web.get("/images/{series_uid}/segmentations", list_segmentations),
            web.get(
                r"/images/{series_uid}/segmentations/{seg_uid:[0-9.]+}.dcm", get_segmentation_file
            ),
            web.delete(
                r"/images/{series_uid}/segmentations/{seg_uid:[0-9.]+}", delete_segmentation
            ),
            web.get("/ws", websocket_handler),
            # The older service's streaming endpoints, kept for its clients.
            web.post("/watershed", post_watershed),
            web.post("/snakes", post_snakes),
            web.post("/stop-stream", stop_rest_streams),
            web.static("/static", STATIC_DIR),
        ]
    )
    _setup_cors(app, settings.cors_origins)
    return app
