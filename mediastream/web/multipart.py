"""A small streaming reader for ``multipart/form-data`` uploads.

aiohttp's `MultipartReader` re-joins every chunk with the previous one to look for the boundary,
which copies each byte several times and caps an upload near 200 MB/s here. This reader scans
large blocks of the request body with `bytes.find`, keeping only a boundary-sized tail between
blocks, and hands each part's body on in blocks as it arrives. It understands what browsers and
HTTP libraries send for file uploads (RFC 7578): per-part headers, `Content-Disposition` with
`name` and `filename` (or RFC 5987 `filename*`); nothing is decoded or transformed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import StreamReader

__all__ = ["MalformedMultipart", "Part", "read_parts"]

READ_SIZE = 1 << 20
MAX_HEADER_BYTES = 16 * 1024


class MalformedMultipart(ValueError):
    """The body does not follow the multipart format its Content-Type announced."""


@dataclass(frozen=True)
class Part:
    name: str | None
    filename: str | None
    headers: dict[str, str]


class _Body:
    """Buffered access to the request body: `data[pos:]` is what has not been consumed."""

    def __init__(self, content: StreamReader) -> None:
        self._content = content
        self.data = b""
        self.pos = 0

    async def read(self) -> bytes:
        """The next block of the body (empty at its end), not added to the buffer."""
        return await self._content.read(READ_SIZE)

    async def fill(self) -> bool:
        """Read more into the buffer; False at the end of the body."""
        more = await self.read()
        if not more:
            return False
        # Used between parts only (headers, boundaries), where the unconsumed tail is short.
        self.data = self.data[self.pos :] + more if self.pos < len(self.data) else more
        self.pos = 0
        return True

    async def until(self, marker: bytes, limit: int) -> bytes:
        """Consume and return everything up to `marker` (dropping the marker itself)."""
        while (index := self.data.find(marker, self.pos)) < 0:
            if len(self.data) - self.pos > limit or not await self.fill():
                raise MalformedMultipart(f"expected {marker!r} within {limit} bytes")
        if index - self.pos > limit:
            raise MalformedMultipart(f"expected {marker!r} within {limit} bytes")
        found = self.data[self.pos : index]
        self.pos = index + len(marker)
        return found

    async def take(self, count: int) -> bytes:
        while len(self.data) - self.pos < count:
            if not await self.fill():
                raise MalformedMultipart("the body ends in the middle of a boundary")
        taken = self.data[self.pos : self.pos + count]
        self.pos += count
        return taken


_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


_ESCAPED = re.compile(r'\\([\\"])')


def parse_disposition(value: str) -> dict[str, str]:
    """Parameters of a Content-Disposition header, e.g. ``name`` and ``filename``.

    Quoted values lose the ``\\"`` and ``\\\\`` escapes HTTP libraries add (browsers instead
    percent-encode quotes, and send other backslashes as they are); RFC 5987 ``filename*`` is
    decoded and wins.
    """
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        if raw.startswith('"'):  # a quoted-string: undo the escapes HTTP libraries add
            raw = _ESCAPED.sub(r"\1", raw[1:-1])
        params[key.lower()] = raw.strip()
    extended = params.pop("filename*", None)
    if extended is not None:
        charset, _, rest = extended.partition("'")
        _, _, encoded = rest.partition("'")
        try:
            params["filename"] = unquote(encoded, charset or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            pass
    return params


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise MalformedMultipart(f"malformed part header {line[:60]!r}")
        headers[key.strip().lower()] = value.strip()
    return headers


async def read_parts(
    content: StreamReader, boundary: str
) -> AsyncIterator[tuple[Part, AsyncIterator[memoryview]]]:
    """Yield each part with an iterator over its body blocks.

    Each body iterator must be consumed (or dropped) before the next part is requested;
    unconsumed body bytes are skipped.
    """
    if not boundary or len(boundary) > 200 or not boundary.isascii():
        raise MalformedMultipart("the Content-Type has no usable boundary")
    body = _Body(content)
    delimiter = b"\r\n--" + boundary.encode("ascii")
    # The first boundary has no preceding CRLF; prefixing one makes every boundary alike.
    body.data = b"\r\n"
    await body.until(delimiter, limit=MAX_HEADER_BYTES)
    while True:
        after = await body.take(2)
        if after == b"--":
            return
        if after != b"\r\n":
            raise MalformedMultipart("a boundary is not followed by a line break")
        headers = _parse_headers(await body.until(b"\r\n\r\n", limit=MAX_HEADER_BYTES))
        params = parse_disposition(headers.get("content-disposition", ""))
        part = Part(name=params.get("name"), filename=params.get("filename"), headers=headers)
        state = {"done": False}

        async def blocks(state: dict[str, bool] = state) -> AsyncIterator[memoryview]:
            # Body bytes leave the buffer as views, never copied here. Between reads, only a
            # tail shorter than the delimiter is held back, since it may start a delimiter.
            keep = len(delimiter) - 1
            while True:
                index = body.data.find(delimiter, body.pos)
                if index >= 0:
                    block = memoryview(body.data)[body.pos : index]
                    body.pos = index + len(delimiter)
                    state["done"] = True
                    if block:
                        yield block
                    return
                end = len(body.data) - keep
                if end > body.pos:
                    block = memoryview(body.data)[body.pos : end]
                    body.pos = end
                    yield block
                tail = body.data[body.pos :]
                more = await body.read()
                if not more:
                    raise MalformedMultipart("the body ends inside a part")
                body.data, body.pos = more, 0
                if tail:
                    joint = tail + more[: len(delimiter)]
                    start = joint.find(delimiter)
                    if 0 <= start < len(tail):  # a delimiter straddles the two reads
                        if start:
                            yield memoryview(tail)[:start]
                        body.pos = start + len(delimiter) - len(tail)
                        state["done"] = True
                        return
                    yield memoryview(tail)

        yield part, blocks()
        if not state["done"]:
            async for _ in blocks():
                pass
