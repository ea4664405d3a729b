"""3-D segmentations of a stored series over HTTP, kept as DICOM SEG.

* ``POST /images/{series_uid}/segmentations``: segment from a click, through the series
  (``propagate``) or on one slice, measure, store as SEG; 201 with the summary.
* ``GET /images/{series_uid}/segmentations``: the series' segmentations (made here or
  uploaded).
* ``GET /images/{series_uid}/segmentations/{seg_uid}.dcm``: the SEG file.
* ``DELETE /images/{series_uid}/segmentations/{seg_uid}``.

The propagation runs one at a time: its call waits in a library thread while its two
directions run in the propagation pool, at a lower priority than the render workers, so
streams keep their frame rate.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from aiohttp import web

from mediastream.dicom.errors import IngestRejected
from mediastream.dicom.segstore import SegmentationNotFound
from mediastream.keys import EXECUTOR, LIBRARY, PROPAGATION, PROPAGATION_SLOT, SEGMENTATIONS
from mediastream.volumes import SegmentationRequest, Unsupported, segment_series
from mediastream.web.errors import ApiError
from segmentation import get_algorithm
from segmentation.propagation import NothingFound, is_click_algorithm

__all__ = [
    "delete_segmentation",
    "get_segmentation_file",
    "list_segmentations",
    "post_segmentation",
]

MAX_LABEL = 64
_FIELDS = {"algorithm", "params", "index", "propagate", "label"}


def _invalid(detail: str, code: str = "invalid_request") -> ApiError:
    return ApiError(422, code, detail)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return body


def parse_request(
    body: dict[str, Any], series_uid: str, frame_count: int, shape: tuple[int, int]
) -> SegmentationRequest:
    """Validate a POST body against the series; raises ApiError naming the problem."""
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _invalid(
            f"Unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}."
        )
    name = body.get("algorithm")
    if not isinstance(name, str):
        raise _invalid('algorithm must be the name of a click algorithm, e.g. "region_grow".')
    try:
        algorithm = get_algorithm(name)
    except ValueError as exc:
        raise _invalid(f"{exc}.", "invalid_algorithm") from None
    if not is_click_algorithm(algorithm):
        raise _invalid(
            f"algorithm must be a click algorithm (one with x and y), got {name!r}.",
            "invalid_algorithm",
        )
    raw_params = body.get("params", {})
    if not isinstance(raw_params, dict):
        raise _invalid(
            "params must be a JSON object of the algorithm's parameters.", "invalid_params"
        )
    try:
        params = algorithm.parse_params(raw_params)
        algorithm.check_image(params, shape)
    except ValueError as exc:
        raise _invalid(f"{exc}.", "invalid_params") from None
    index = body.get("index", frame_count // 2)
    if isinstance(index, bool) or not isinstance(index, int):
        raise _invalid(f"index must be a whole number, got {index!r}.", "invalid_index")
    if not 0 <= index < frame_count:
        raise _invalid(
            f"index must be between 0 and {frame_count - 1} for this series of {frame_count} "
            f"slices, got {index}.",
            "invalid_index",
        )
    through = body.get("propagate", True)
    if not isinstance(through, bool):
        raise _invalid(f"propagate must be true or false, got {through!r}.")
    label = body.get("label", name)
    if not isinstance(label, str) or not 1 <= len(label.strip()) <= MAX_LABEL:
        raise _invalid(f"label must be text of 1 to {MAX_LABEL} characters.", "invalid_label")
    if any(ord(c) < 32 or c == "\\" for c in label):
        raise _invalid("label must not hold control characters or backslashes.", "invalid_label")
    return SegmentationRequest(series_uid, algorithm, params, index, through, label.strip())


async def post_segmentation(request: web.Request) -> web.Response:
    series_uid = request.match_info["series_uid"]
    library = request.app[LIBRARY]
    loop = asyncio.get_running_loop()
    series = await loop.run_in_executor(request.app[EXECUTOR], library.get_series, series_uid)
    body = await _json_object(request)
    seg_request = parse_request(body, series_uid, series.frame_count, (series.rows, series.columns))
    job = functools.partial(
        segment_series,
        library,
        request.app[SEGMENTATIONS],
        seg_request,
        executor=request.app[PROPAGATION],
    )
    try:
        async with request.app[PROPAGATION_SLOT]:  # one at a time; others wait their turn
            record = await loop.run_in_executor(request.app[EXECUTOR], job)
    except NothingFound as exc:
        raise ApiError(422, "nothing_found", f"{exc}.") from None
    except Unsupported as exc:
        raise ApiError(422, "unsupported_series", f"{exc}.") from None
    except IngestRejected as exc:  # the PACS (--dicomweb) would not store it: not kept at all
        raise ApiError(
            502, "pacs_refused", f"The PACS refused the DICOM SEG: {exc.reason}."
        ) from None
    except ValueError as exc:
        raise ApiError(422, "invalid_params", f"{exc}.") from None
    return web.json_response(record.to_json(), status=201)


async def list_segmentations(request: web.Request) -> web.Response:
    series_uid = request.match_info["series_uid"]
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(request.app[EXECUTOR], request.app[LIBRARY].get_series, series_uid)
    records = request.app[SEGMENTATIONS].list(series_uid)
    return web.json_response(
        {"series_uid": series_uid, "segmentations": [r.to_json() for r in records]}
    )


def _not_found(exc: SegmentationNotFound) -> ApiError:
    return ApiError(404, exc.code, f"{exc}.")


async def get_segmentation_file(request: web.Request) -> web.StreamResponse:
    store = request.app[SEGMENTATIONS]
    series_uid, seg_uid = request.match_info["series_uid"], request.match_info["seg_uid"]
    try:
        record = store.get(series_uid, seg_uid)
    except SegmentationNotFound as exc:
        raise _not_found(exc) from None
    return web.FileResponse(
        store.file(record),
        headers={
            "Content-Type": "application/dicom",
            "Content-Disposition": f'attachment; filename="{seg_uid}.dcm"',
            "Cache-Control": "no-cache",
        },
    )


async def delete_segmentation(request: web.Request) -> web.Response:
    store = request.app[SEGMENTATIONS]
    series_uid, seg_uid = request.match_info["series_uid"], request.match_info["seg_uid"]
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(request.app[EXECUTOR], store.delete, series_uid, seg_uid)
    except SegmentationNotFound as exc:
        raise _not_found(exc) from None
    return web.json_response({"deleted": seg_uid, "series_uid": series_uid})
