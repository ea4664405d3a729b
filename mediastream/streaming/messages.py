"""Protocol v1 messages (docs/protocol.md): parsing what clients send, building what we send.

Every message is one JSON object with a ``"type"``. These functions are pure: they never touch a
socket, so the WebSocket and the data channel share them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import segmentation
from mediastream import __version__
from mediastream.streaming.render import RenderedFrame

__all__ = [
    "PROTOCOL_VERSION",
    "ProtocolError",
    "error_message",
    "frame_message",
    "hello_message",
    "parse_message",
    "state_message",
]

PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """A message the server cannot act on; answered with an error message, never a close."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def parse_message(data: str | bytes, allowed: frozenset[str]) -> dict[str, Any]:
    """Decode one client message and check its ``type`` is one of `allowed`."""
    if isinstance(data, bytes):
        raise ProtocolError("invalid_message", "Send text frames holding one JSON object each.")
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise ProtocolError("invalid_json", "The message is not valid JSON.") from None
    if not isinstance(message, dict):
        raise ProtocolError("invalid_message", "A message must be a JSON object.")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("invalid_message", 'A message needs a "type" string.')
    if kind not in allowed:
        raise ProtocolError(
            "unknown_type",
            f"Unknown message type {kind[:40]!r}; expected one of {', '.join(sorted(allowed))}.",
        )
    return message


def message_seq(message: Mapping[str, Any]) -> int | None:
    """The optional ``seq`` of an update: a whole number the client chose."""
    seq = message.get("seq")
    if seq is None:
        return None
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise ProtocolError("invalid_update", f"seq must be a whole number, got {seq!r}.")
    return seq


def hello_message() -> dict[str, Any]:
    return {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "server": f"mediastream/{__version__}",
        "algorithms": {
            name: segmentation.get_algorithm(name).schema()
            for name in segmentation.algorithm_names()
        },
    }


def error_message(code: str, detail: str, seq: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "error", "error": code, "detail": detail}
    if seq is not None:
        message["seq"] = seq
    return message


def state_message(state: Mapping[str, Any], seq: int | None) -> dict[str, Any]:
    return {"type": "state", "seq": seq, "state": dict(state)}


def frame_message(frame: RenderedFrame, seq: int | None, pts: int) -> dict[str, Any]:
    return {
        "type": "frame",
        "seq": seq,
        "pts": pts,
        "index": frame.index,
        "count": frame.count,
        "algorithm": frame.algorithm,
        "stage": frame.stage,
        "stats": frame.stats,
        "timing_ms": frame.timing_ms,
        "window": None if frame.window is None else frame.window.to_json(),
        "cached": frame.cached,
    }
