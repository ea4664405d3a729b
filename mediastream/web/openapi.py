"""The OpenAPI 3 description of the HTTP API, built as plain data: `openapi_document()`.

It describes what the handlers do, including every error they answer with, so clients (and
schemathesis, in the tests) can hold the server to it. The WebSocket at ``/ws`` is listed as an
upgrade endpoint only: OpenAPI cannot describe its messages, which docs/protocol.md specifies.
The query parameters of the older service's ``/watershed`` and ``/snakes`` come from the
algorithms' own parameter schemas, so a new parameter appears here without an edit.
"""

from __future__ import annotations

import copy
from typing import Any

import segmentation
from mediastream import __version__
from mediastream.streaming.state import MAX_IMAGE_DELAY
from mediastream.web.images import MAX_PNG_SIZE
from mediastream.web.openapi_builders import (
    PUBLIC,
    TOKEN_IF_CONFIGURED,
    UNAUTHORIZED,
    Schema,
)
from mediastream.web.openapi_builders import array as _array
from mediastream.web.openapi_builders import enum as _enum
from mediastream.web.openapi_builders import error as _error
from mediastream.web.openapi_builders import integer as _integer
from mediastream.web.openapi_builders import json_content as _json
from mediastream.web.openapi_builders import obj as _object
from mediastream.web.openapi_builders import operation as _operation
from mediastream.web.openapi_builders import path_param as _path
from mediastream.web.openapi_builders import query as _query
from mediastream.web.openapi_builders import ref as _ref
from mediastream.web.openapi_builders import string as _string
from mediastream.web.openapi_segmentations import segmentation_paths, segmentation_schemas
from mediastream.web.upload import FIELD_NAME

__all__ = ["OPENAPI_VERSION", "PROTOCOL_DOC", "openapi_document"]

OPENAPI_VERSION = "3.0.3"
PROTOCOL_DOC = "docs/protocol.md"
MIN_PNG_SIZE = 16  # the smallest ?size= the frame handler accepts

# -- the data -----------------------------------------------------------------------------------


def _schemas() -> dict[str, Schema]:
    return {
        "Error": _object(  # every error response
            {"error": _string("a stable code"), "detail": _string("a sentence naming the problem")}
        ),
        "UploadError": {
            "allOf": [_ref("Error")],
            "properties": {
                "files": _array(
                    _ref("FileOutcome"), "the files handled before the error (stored ones stay)"
                )
            },
        },
        "FileOutcome": {
            "description": "What happened to one uploaded file.",
            "oneOf": [
                _object(
                    {
                        "filename": _string("the client's name for it, only reported back"),
                        "outcome": _enum("stored", "already_stored"),
                        "series_uid": _string(),
                        "sop_instance_uid": _string(),
                    }
                ),
                _object(
                    {
                        "filename": _string(),
                        "outcome": _enum("rejected"),
                        "reason": _string(
                            "e.g. `not a DICOM file`, `no pixel data`, `empty file`, "
                            "`unsupported transfer syntax 1.2.…`, `file too large: over N MiB`"
                        ),
                    }
                ),
            ],
        },
        "UploadResult": _object({"files": _array(_ref("FileOutcome"), minItems=1)}),
        "Window": _object(
            {
                "center": {"type": "number"},
                "width": {"type": "number", "minimum": 1},
                "name": _string("the preset's explanation; may be empty"),
            }
        ),
        "Series": _object(
            {
                "series_uid": _string("Series Instance UID (0020,000E)"),
                "modality": _string(example="CT"),
                "description": _string(),
                "frame_count": _integer(1),
                "rows": _integer(1),
                "columns": _integer(1),
                "pixel_spacing": _array(
                    {"type": "number"},
                    "[row, column] in mm, or null when the files have none",
                    minItems=2,
                    maxItems=2,
                    nullable=True,
                ),
                "windows": _array(_ref("Window"), "the window presets found in the files"),
                "thumbnail": _string("URL of a small PNG of the middle slice"),
            }
        ),
        "SeriesList": _object(
            {
                "message": _enum("Images found"),
                "series": _array(
                    _ref("Series"), "oldest first; the most recently stored is last", minItems=1
                ),
            }
        ),
        "Deleted": _object(
            {
                "deleted": _string("the Series Instance UID, or `all`"),
                "files_removed": _integer(),
            }
        ),
        "Health": _object(
            {
                "status": _enum("ok"),
                "version": _string(),
                "library": {
                    **_object(
                        {
                            "status": _enum("ok", "unavailable"),
                            "backend": _enum("folder", "dicomweb"),
                        }
                    ),
                    "description": "`ok` with `series`, `instances` and `frames` counts; "
                    "`unavailable` (a PACS that cannot be reached, retried in the background) "
                    "with `detail`",
                },
                "streaming": _object(
                    {
                        "sessions": _integer(),
                        "max_sessions": _integer(1),
                        "viewers": _integer(description="viewers of shared streams"),
                        "tasks": _integer(description="asyncio tasks, to spot leaks"),
                    }
                ),
            }
        ),
        "Offer": _object(
            {
                "sdp": _string("the client's SDP offer, with a video section"),
                "type": {**_enum("offer"), "default": "offer"},
            },
            required=["sdp"],
        ),
        "Answer": _object({"sdp": _string(), "type": _enum("answer")}),
    }


def _service_paths() -> dict[str, Schema]:
    """Public operations: no token needed, even with `--token` (see mediastream.web.security)."""
    html = {"text/html": {"schema": _string()}}

    def get(operation_id: str, summary: str, response: Schema, **fields: Any) -> Schema:
        operation = _operation("service", operation_id, summary, security=PUBLIC, **fields)
        return {"get": {**operation, "responses": {"200": response}}}

    page = {"description": "An HTML page", "content": html}
    greeting = {"application/json": {"schema": _object({"message": _enum("API is running")})}}
    health = _json("The server is up", _ref("Health"))
    return {
        "/": get(
            "getRoot",
            "The browser client, or a greeting for API clients",
            {"description": "The page or the greeting", "content": {**greeting, **html}},
            description="Browsers (`Accept: text/html`) get the bundled client; any other "
            'client gets `{"message": "API is running"}`.',
        ),
        "/health": get("getHealth", "Liveness and counts (no patient data)", health),
        "/openapi.json": get("getOpenApi", "This document", _json("OpenAPI 3", {"type": "object"})),
        "/docs": get("getSwaggerUi", "This document in Swagger UI", page),
        "/redoc": get("getRedoc", "This document in ReDoc", page),
    }


_UNAVAILABLE = _error(
    "With `--dicomweb`: the PACS cannot be reached now (no answer within "
    "`--dicomweb-timeout`, or refused connection)",
    "library_unavailable",
)


def _library_paths() -> dict[str, Schema]:
    uid_text = "Series Instance UID (0020,000E), as `GET /images` lists it"
    series_uid = _path("series_uid", uid_text, _string(minLength=1))
    frame_query = [
        _query("center", "window centre in modality units; with `width`", {"type": "number"}),
        _query("width", "window width; with `center`", {"type": "number", "minimum": 1}),
        _query(
            "size",
            "shrink the image so its longer side is at most this many pixels",
            _integer(MIN_PNG_SIZE, maximum=MAX_PNG_SIZE),
        ),
    ]
    upload_body = _object(
        {FIELD_NAME: _array(_string(format="binary"), "one part per file", minItems=1)}
    )
    return {
        "/images": {
            "get": _operation(
                "library",
                "listImages",
                "List the stored series",
                responses={
                    "200": _json("The library", _ref("SeriesList")),
                    "404": _error("The library is empty", "no_images"),
                    "503": _UNAVAILABLE,
                },
            ),
            "post": _operation(
                "library",
                "uploadImages",
                "Upload DICOM files",
                description="Files are judged by content, never by name: a file is stored only "
                "if it parses as DICOM and has pixel data this server can decode, atomically "
                "under its UIDs. Parts with other names are ignored. The body is streamed, never "
                "held in memory. Limits: `--max-upload-mb` per request, `--max-file-mb` per file.",
                requestBody={
                    "required": True,
                    "content": {"multipart/form-data": {"schema": upload_body}},
                },
                responses={
                    "200": _json(
                        "At least one file was stored or already present; one outcome per file",
                        _ref("UploadResult"),
                    ),
                    "400": _error(
                        f"No parts named `{FIELD_NAME}`, or a body that does not follow the "
                        "multipart format (files read before that are listed in `files`)",
                        "no_files",
                        "malformed_multipart",
                        files=True,
                    ),
                    "413": _error(
                        "The request is larger than `--max-upload-mb`; files stored before the "
                        "limit was reached are listed and kept",
                        "request_too_large",
                        files=True,
                    ),
                    "415": _error("The body is not multipart/form-data", "unsupported_media_type"),
                    "422": _error(
                        "No file was stored; `files` says why for each",
                        "no_valid_files",
                        files=True,
                    ),
                    "503": _error(
                        "With `--dicomweb`: no file was stored because the PACS cannot be "
                        "reached; `files` says so for each",
                        "library_unavailable",
                        files=True,
                    ),
                },
            ),
            "delete": _operation(
                "library",
                "deleteAllImages",
                "Delete every stored series",
                description="Streams showing them stop.",
                responses={
                    "200": _json("Everything is deleted; `deleted` is `all`", _ref("Deleted")),
                    "405": _error(
                        "With `--dicomweb`: never (it would empty a shared PACS)",
                        "delete_not_allowed",
                    ),
                },
            ),
        },
        "/images/{series_uid}": {
            "delete": _operation(
                "library",
                "deleteSeries",
                "Delete one series",
                description="Streams showing it stop.",
                parameters=[series_uid],
                responses={
                    "200": _json("The series' files are removed", _ref("Deleted")),
                    "404": _error("No such series", "series_not_found"),
                    "405": _error(
                        "With `--dicomweb` but without `--dicomweb-allow-delete`",
                        "delete_not_allowed",
                    ),
                    "503": _UNAVAILABLE,
                },
            )
        },
        "/images/{series_uid}/frames/{index}.png": {
            "get": _operation(
                "library",
                "getFramePng",
                "One frame as PNG",
                description="Rendered through the display pipeline: modality LUT → VOI "
                "(`center`/`width` if given, else the file's first window or VOI LUT, else a "
                "0.5–99.5 percentile window) → 8 bit; MONOCHROME1 inverted; colour as RGB.",
                parameters=[
                    series_uid,
                    _path("index", "0-based, in the series' slice order", _integer()),
                    *frame_query,
                ],
                responses={
                    "200": {
                        "description": "The frame",
                        "content": {"image/png": {"schema": _string(format="binary")}},
                    },
                    "400": _error(
                        "A query value is not a finite number or out of range, or only one of "
                        "`center` and `width` is given",
                        "invalid_query",
                        "invalid_window",
                    ),
                    "404": _error(
                        "No such series, or `index` is past its last frame (`not_found`: "
                        "`index` is not a whole number)",
                        "series_not_found",
                        "frame_not_found",
                        "not_found",
                    ),
                    "422": _error("The frame cannot be decoded", "decode_failed"),
                    "503": _UNAVAILABLE,
                },
            )
        },
    }


def _algorithm_query(algorithm: str) -> list[Schema]:
    """The older service's query parameters: the algorithm's parameters and `image_delay`."""
    parameters = []
    for name, spec in segmentation.get_algorithm(algorithm).schema()["params"].items():
        schema = {
            "type": "integer" if spec["type"] == "int" else "number",
            "minimum": spec["min"],
            "maximum": spec["max"],
            "default": spec["default"],
        }
        parameters.append(_query(name, f"{spec['label']}: {spec['description']}", schema))
    delay = {"type": "number", "minimum": 0, "maximum": MAX_IMAGE_DELAY, "default": 1}
    description = "seconds per slice while playing; 0 = as fast as the frame cap"
    return [*parameters, _query("image_delay", description, delay)]


def _offer_operation(algorithm: str) -> Schema:
    return _operation(
        "older service",
        f"post{algorithm.capitalize()}",
        f"Start a WebRTC stream segmented with {algorithm}",
        description="Kept for the older service's clients; new clients use `GET /ws`. The query "
        "values may be strings (`?kernel_size=3`); names the algorithm does not know are "
        "ignored. The stream shows the most recently stored series; a client that opens a "
        f"`control` data channel can steer it like any other (see `{PROTOCOL_DOC}`). The body "
        "is read as JSON whatever its content type.",
        parameters=_algorithm_query(algorithm),
        requestBody={"required": True, "content": {"application/json": {"schema": _ref("Offer")}}},
        responses={
            "200": _json("The server's answer, with all its ICE candidates", _ref("Answer")),
            "400": _error(
                "The body is not a JSON offer, the SDP cannot be used or has no video section, "
                "or a parameter is invalid",
                "invalid_json",
                "invalid_offer",
                "invalid_params",
                "invalid_update",
            ),
            "404": _error("The library is empty", "no_series", "series_not_found"),
            "413": _error("The JSON body is larger than 1 MiB", "request_too_large"),
            "503": _error("`--max-sessions` streams are running already", "too_many_sessions"),
        },
    )


def _streaming_paths() -> dict[str, Schema]:
    websocket = _operation(
        "streaming",
        "openWebSocket",
        "WebSocket: signalling and control (protocol v1)",
        description="Open a WebSocket here, send an `offer` with a `control` data channel and "
        "steer the stream with `update` messages; every video frame is described by a `frame` "
        f"message. The messages are specified in `{PROTOCOL_DOC}` (Streaming protocol, version "
        "1), which OpenAPI cannot express. With `--token`, the token comes in the handshake "
        "(`Authorization: Bearer …` or `?token=`) or in a first `auth` message on the socket; "
        "see *Authentication* there.",
        security=PUBLIC,
        parameters=[
            _query("token", "`--token`, for browsers (no headers on a WebSocket)", _string())
        ],
        responses={
            "101": {"description": "Switching Protocols: the socket is open"},
            "400": _error("Not a WebSocket handshake", "bad_request"),
            "401": _error("A token was given and is wrong", "unauthorized"),
            "403": _error(
                "A browser page from an origin that is neither this server nor a `--cors-origin`",
                "forbidden_origin",
            ),
        },
    )
    stopped = _object({"message": _enum("All streams stopped")})
    return {
        "/ws": {"get": websocket},
        "/watershed": {"post": _offer_operation("watershed")},
        "/snakes": {"post": _offer_operation("snakes")},
        "/stop-stream": {
            "post": _operation(
                "older service",
                "stopStreams",
                "Stop the streams started with /watershed or /snakes",
                responses={"200": _json("They are stopped", stopped)},
            )
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document served at ``/openapi.json``.

    A new object on every call, sharing nothing with other calls or within itself, so a caller
    may change it (schemathesis does, while loading it).
    """
    paths = {
        **_service_paths(),
        **_library_paths(),
        **segmentation_paths(),
        **_streaming_paths(),
    }
    for operation in (op for item in paths.values() for op in item.values()):
        if operation.get("security") != PUBLIC:
            responses = {**operation["responses"], "401": UNAUTHORIZED}
            operation["responses"] = dict(sorted(responses.items()))
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "mediastream",
            "version": __version__,
            "description": "Upload DICOM series, render their frames, and stream them as live "
            'WebRTC video with segmentation. Every error is JSON `{"error": "<code>", '
            '"detail": "<sentence>"}`; unknown paths answer 404 `not_found` and unsupported '
            "methods 405 `method_not_allowed`. Streaming itself runs over the WebSocket at "
            f"`/ws`, specified in `{PROTOCOL_DOC}`.",
        },
        "tags": [
            {"name": "service", "description": "Health, the browser client and these docs"},
            {"name": "library", "description": "The stored DICOM series and their frames"},
            {"name": "segmentations", "description": "3-D segmentations kept as DICOM SEG"},
            {"name": "streaming", "description": f"WebSocket signalling, see `{PROTOCOL_DOC}`"},
            {"name": "older service", "description": "REST endpoints kept for its clients"},
        ],
        "security": TOKEN_IF_CONFIGURED,
        "paths": paths,
        "components": {
            "schemas": {**_schemas(), **segmentation_schemas()},
            "securitySchemes": {
                "bearerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Needed only when the server runs with `--token`.",
                }
            },
        },
    }
    return copy.deepcopy(document)
