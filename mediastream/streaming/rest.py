"""The older service's REST endpoints, as thin adapters over the same sessions.

``POST /watershed?threshold_ratio=&kernel_size=&image_delay=`` and
``POST /snakes?kernel_size=&x=&y=&radius=&image_delay=`` take a JSON offer ``{"sdp", "type"}`` and
answer ``{"sdp", "type"}``; the stream starts with those parameters (numbers may arrive as
strings; query names the algorithm does not know are ignored, as the older service did).
``POST /stop-stream`` stops the streams started this way. Such streams have no signalling
socket: they can still be steered through the ``control`` data channel if the client opens one.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiortc import RTCSessionDescription

import segmentation
from mediastream.keys import STREAMING
from mediastream.streaming.messages import ProtocolError
from mediastream.streaming.state import InvalidUpdate, initial_state
from mediastream.web.errors import ApiError

__all__ = ["post_snakes", "post_watershed", "stop_rest_streams"]

REST_ORIGIN = "rest"


async def _offer_from_body(request: web.Request) -> RTCSessionDescription:
    try:
        # Bytes, not request.json(): the body is JSON whatever charset the client claims.
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        raise ApiError(
            400, "invalid_json", 'The body must be a JSON offer {"sdp", "type"}.'
        ) from None
    if not isinstance(body, Mapping) or not isinstance(body.get("sdp"), str):
        raise ApiError(400, "invalid_offer", 'The body must be a JSON object with an "sdp" string.')
    kind = body.get("type", "offer")
    if kind != "offer":
        raise ApiError(400, "invalid_offer", f'Expected an SDP of type "offer", got {kind!r}.')
    return RTCSessionDescription(sdp=body["sdp"], type="offer")


def _image_delay(query: Mapping[str, str]) -> float:
    raw = query.get("image_delay", "1")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ApiError(
            400, "invalid_params", f"image_delay must be a number of seconds >= 0, got {raw!r}."
        )
    return value


async def _start(request: web.Request, algorithm: str) -> web.Response:
    ctx = request.app[STREAMING]
    offer = await _offer_from_body(request)
    known = segmentation.get_algorithm(algorithm).schema()["params"]
    params: dict[str, Any] = {k: v for k, v in request.query.items() if k in known}
    requested = {
        "algorithm": algorithm,
        "params": params,
        "image_delay": _image_delay(request.query),
    }
    try:
        state = initial_state(ctx.library, requested)
    except InvalidUpdate as exc:
        status = 404 if exc.code in ("no_series", "series_not_found") else 400
        raise ApiError(status, exc.code, exc.detail) from None
    try:
        _, answer = await ctx.open_session(state, offer, origin=REST_ORIGIN)
    except ProtocolError as exc:
        status = 503 if exc.code == "too_many_sessions" else 400
        raise ApiError(status, exc.code, exc.detail) from None
    return web.json_response({"sdp": answer.sdp, "type": answer.type})


async def post_watershed(request: web.Request) -> web.Response:
    return await _start(request, "watershed")


async def post_snakes(request: web.Request) -> web.Response:
    return await _start(request, "snakes")


async def stop_rest_streams(request: web.Request) -> web.Response:
    ctx = request.app[STREAMING]
    sessions = [s for s in ctx.sessions if s.origin == REST_ORIGIN]
    await asyncio.gather(*(s.close("stopped by /stop-stream") for s in sessions))
    return web.json_response({"message": "All streams stopped"})
