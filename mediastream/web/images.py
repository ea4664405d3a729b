"""The library over HTTP: list series, render frames as PNG, delete."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any, TypeVar

import cv2
import numpy as np
from aiohttp import web

from mediastream.dicom.backend import ImageStore
from mediastream.dicom.display import DisplayFrame, Window
from mediastream.dicom.series import SeriesInfo
from mediastream.keys import EXECUTOR, LIBRARY, SEGMENTATIONS, STREAMING
from mediastream.web.errors import ApiError

__all__ = ["delete_all_images", "delete_series", "get_frame_png", "list_images", "thumbnail_url"]

THUMBNAIL_SIZE = 128
MAX_PNG_SIZE = 4096
MAX_WINDOW_VALUE = 1e9  # the same bound as a stream's window (mediastream.streaming.state)

T = TypeVar("T")


async def _blocking(request: web.Request, func: Callable[..., T], *args: Any) -> T:
    """Run library work in the app's executor, off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[EXECUTOR], func, *args)


def thumbnail_url(series: SeriesInfo) -> str:
    """A small PNG of the middle slice, for series lists."""
    return f"/images/{series.series_uid}/frames/{series.frame_count // 2}.png?size={THUMBNAIL_SIZE}"


def series_json(series: SeriesInfo) -> dict[str, Any]:
    return {**series.to_json(), "thumbnail": thumbnail_url(series)}


async def list_images(request: web.Request) -> web.Response:
    # In a thread: a PACS-backed library asks the PACS.
    series = await _blocking(request, request.app[LIBRARY].list_series)
    if not series:
        # The older service answered exactly this; its clients test for the 404.
        raise ApiError(404, "no_images", "No images found")
    return web.json_response(
        {"message": "Images found", "series": [series_json(s) for s in series]}
    )


def _float_query(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > MAX_WINDOW_VALUE:
        raise ApiError(
            400,
            "invalid_query",
            f"{name} must be a number between {-MAX_WINDOW_VALUE:g} and {MAX_WINDOW_VALUE:g}, "
            f"got {raw!r}.",
        )
    return value


def window_from_query(request: web.Request) -> Window | None:
    """``?center=&width=``: both or neither."""
    center, width = _float_query(request, "center"), _float_query(request, "width")
    if center is None and width is None:
        return None
    if center is None or width is None:
        raise ApiError(400, "invalid_window", "Give both center and width, or neither.")
    try:
        return Window(center=center, width=width)
    except ValueError as exc:
        raise ApiError(400, "invalid_window", f"{exc}.") from None


def _size_from_query(request: web.Request) -> int | None:
    raw = request.query.get("size")
    if raw is None or raw == "":
        return None
    # isascii: str.isdigit() also accepts digits int() refuses, such as "²".
    if not (raw.isascii() and raw.isdigit()) or not 16 <= int(raw) <= MAX_PNG_SIZE:
        raise ApiError(
            400,
            "invalid_query",
            f"size must be a whole number from 16 to {MAX_PNG_SIZE}, got {raw!r}.",
        )
    return int(raw)


def _encode_png(frame: DisplayFrame, size: int | None) -> bytes:
    image = frame.gray if frame.rgb is None else cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR)
    if size is not None:
        rows, cols = image.shape[:2]
        scale = size / max(rows, cols)
        if scale < 1:
            dsize = (max(1, round(cols * scale)), max(1, round(rows * scale)))
            image = cv2.resize(image, dsize, interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:  # pragma: no cover - OpenCV fails only on invalid arrays
        raise RuntimeError("PNG encoding failed")
    return png.tobytes()


def _render_png(
    library: ImageStore, series_uid: str, index: int, window: Window | None, size: int | None
) -> bytes:
    return _encode_png(library.frame(series_uid, index, window), size)


async def get_frame_png(request: web.Request) -> web.Response:
    """One frame through the display pipeline: ``/images/{series_uid}/frames/{index}.png``."""
    series_uid = request.match_info["series_uid"]
    index = int(request.match_info["index"])
    window = window_from_query(request)
    size = _size_from_query(request)
    png = await _blocking(
        request, _render_png, request.app[LIBRARY], series_uid, index, window, size
    )
    # Frames are immutable for a given URL until the series is deleted; let browsers revalidate.
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-cache"})


async def delete_series(request: web.Request) -> web.Response:
    series_uid = request.match_info["series_uid"]
    removed = await _blocking(request, request.app[LIBRARY].delete_series, series_uid)
    # Its segmentations segment nothing any more.
    await _blocking(request, request.app[SEGMENTATIONS].delete_series, series_uid)
    await request.app[STREAMING].series_deleted(series_uid)
    return web.json_response({"deleted": series_uid, "files_removed": removed})


async def delete_all_images(request: web.Request) -> web.Response:
    removed = await _blocking(request, request.app[LIBRARY].delete_all)
    await _blocking(request, request.app[SEGMENTATIONS].delete_series, None)
    await request.app[STREAMING].series_deleted(None)
    return web.json_response({"deleted": "all", "files_removed": removed})
