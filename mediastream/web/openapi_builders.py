"""Small builders of OpenAPI 3 schema fragments, shared by `openapi` and the modules it merges.

Plain functions returning plain dicts; no module state.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PUBLIC",
    "TOKEN_IF_CONFIGURED",
    "UNAUTHORIZED",
    "Schema",
    "array",
    "enum",
    "error",
    "integer",
    "json_content",
    "obj",
    "operation",
    "path_param",
    "query",
    "ref",
    "string",
]

Schema = dict[str, Any]

# Every operation needs the bearer token when the server runs with --token, except those marked
# PUBLIC (see mediastream.web.security); `[]` overrides the document's default requirement.
TOKEN_IF_CONFIGURED: list[dict[str, list[str]]] = [{"bearerToken": []}, {}]
PUBLIC: list[dict[str, list[str]]] = []


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def string(description: str | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", **extra}
    if description:
        schema["description"] = description
    return schema


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def integer(minimum: int = 0, **extra: Any) -> Schema:
    return {"type": "integer", "minimum": minimum, **extra}


def array(items: Schema, description: str | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "array", "items": items, **extra}
    if description:
        schema["description"] = description
    return schema


def obj(properties: dict[str, Schema], *, required: list[str] | None = None) -> Schema:
    """An object with these fields; more may be added, and clients must ignore them."""
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
    }


def json_content(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str, *codes: str, files: bool = False) -> Schema:
    """An error response: ``{"error", "detail"}`` (plus `files` for uploads), `error` in codes."""
    base = ref("UploadError" if files else "Error")
    schema = {"allOf": [base], "properties": {"error": enum(*codes)}}
    codes_text = ", ".join(f"`{code}`" for code in codes)
    response = json_content(f"{description} (`error`: {codes_text})", schema)
    example: Schema = {"error": codes[0], "detail": "A sentence naming the problem."}
    if files:
        example["files"] = []
    response["content"]["application/json"]["example"] = example
    return response


def query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def path_param(name: str, description: str, schema: Schema) -> Schema:
    return {**query(name, description, schema), "in": "path", "required": True}


def operation(tag: str, operation_id: str, summary: str, **fields: Any) -> Schema:
    """An operation; `fields` are its other OpenAPI fields (responses, parameters, …)."""
    return {"tags": [tag], "operationId": operation_id, "summary": summary, **fields}


UNAUTHORIZED = error(
    "Only when the server runs with `--token`: the `Authorization: Bearer <token>` header "
    "was missing or wrong",
    "unauthorized",
)
