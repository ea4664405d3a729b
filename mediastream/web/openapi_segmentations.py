"""The OpenAPI description of ``/images/{series_uid}/segmentations`` (see `openapi`).

Kept beside `mediastream.web.openapi`, which merges these paths and schemas into the one
document, so that module stays a readable size.
"""

from __future__ import annotations

from mediastream.web.openapi_builders import (
    Schema,
    array,
    error,
    json_content,
    obj,
    operation,
    path_param,
    ref,
    string,
)
from mediastream.web.segmentations import MAX_LABEL

__all__ = ["segmentation_paths", "segmentation_schemas"]


def segmentation_schemas() -> dict[str, Schema]:
    """The request and response schemas, for ``components.schemas``."""

    number_or_null = {"type": "number", "nullable": True}
    return {
        "SegmentationRequest": {
            "type": "object",
            "required": ["algorithm"],
            "additionalProperties": False,
            "properties": {
                "algorithm": string("a click algorithm: one whose params have `x` and `y`"),
                "params": {
                    "type": "object",
                    "description": "the algorithm's parameters (see `GET /health`'s client "
                    "schemas or docs/segmentation.md); `x`, `y` in image pixels",
                },
                "index": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "the slice clicked on, as the stream counts it "
                    "(default: the middle slice)",
                },
                "propagate": {
                    "type": "boolean",
                    "description": "follow the structure through the series (default true); "
                    "false segments `index` only",
                },
                "label": string(
                    "the segment's label (default: the algorithm's name)",
                    minLength=1,
                    maxLength=MAX_LABEL,
                ),
            },
        },
        "Segmentation": obj(
            {
                "seg_uid": string("SOP Instance UID of the DICOM SEG"),
                "series_uid": string("the segmented series"),
                "label": string(),
                "volume_ml": {
                    **number_or_null,
                    "description": "voxels × PixelSpacing × the spacing of the slices' "
                    "positions along their normal, in mL (null when unknown)",
                },
                "slices": array(
                    obj(
                        {
                            "index": {"type": "integer", "minimum": 0},
                            "area_mm2": number_or_null,
                        }
                    ),
                    "the slices the structure covers, in order",
                ),
                "url": string("relative URL of the DICOM SEG file"),
                "origin": {"type": "string", "enum": ["computed", "uploaded"]},
            },
            required=["seg_uid", "series_uid", "label", "volume_ml", "slices", "url"],
        ),
        "SegmentationList": obj(
            {"series_uid": string(), "segmentations": array(ref("Segmentation"))}
        ),
        "SegmentationDeleted": obj({"deleted": string(), "series_uid": string()}),
    }


def segmentation_paths() -> dict[str, Schema]:
    """The four operations, for ``paths``."""

    series_uid = path_param("series_uid", "Series Instance UID (0020,000E)", string(minLength=1))
    seg_uid = path_param("seg_uid", "SOP Instance UID of the DICOM SEG", string(minLength=1))
    missing = error(
        "No such segmentation of this series (`not_found`: not a UID)",
        "segmentation_not_found",
        "not_found",
    )
    return {
        "/images/{series_uid}/segmentations": {
            "post": operation(
                "segmentations",
                "createSegmentation",
                "Segment a structure through the series and keep it as DICOM SEG",
                description="From a click on slice `index`, the click algorithm segments that "
                "slice, then each neighbour in both directions seeded from the slice before, "
                "until the structure ends. The result is measured and stored as a DICOM "
                "Segmentation (BINARY, one segment) referencing the source instances.",
                parameters=[series_uid],
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": ref("SegmentationRequest")}},
                },
                responses={
                    "201": json_content("Stored", ref("Segmentation")),
                    "400": error("The body is not a JSON object", "invalid_json"),
                    "404": error("No such series", "series_not_found"),
                    "413": error("The body is too large", "request_too_large"),
                    "422": error(
                        "The request does not fit: unknown fields, not a click algorithm, "
                        "parameters that do not fit the image, `index` out of range, a bad "
                        "label, a click on nothing (`nothing found at (x, y) on slice i`), a "
                        "series SEG cannot reference (multi-frame) or an undecodable frame",
                        "invalid_request",
                        "invalid_algorithm",
                        "invalid_params",
                        "invalid_index",
                        "invalid_label",
                        "nothing_found",
                        "unsupported_series",
                        "decode_failed",
                    ),
                },
            ),
            "get": operation(
                "segmentations",
                "listSegmentations",
                "The series' segmentations, made here or uploaded",
                parameters=[series_uid],
                responses={
                    "200": json_content("Oldest first", ref("SegmentationList")),
                    "404": error("No such series", "series_not_found"),
                },
            ),
        },
        "/images/{series_uid}/segmentations/{seg_uid}.dcm": {
            "get": operation(
                "segmentations",
                "getSegmentationFile",
                "The DICOM SEG file",
                parameters=[series_uid, seg_uid],
                responses={
                    "200": {
                        "description": "The file, byte for byte as stored",
                        "content": {"application/dicom": {"schema": string(format="binary")}},
                    },
                    "404": missing,
                },
            )
        },
        "/images/{series_uid}/segmentations/{seg_uid}": {
            "delete": operation(
                "segmentations",
                "deleteSegmentation",
                "Delete one segmentation",
                parameters=[series_uid, seg_uid],
                responses={
                    "200": json_content("Deleted", ref("SegmentationDeleted")),
                    "404": missing,
                },
            )
        },
    }
