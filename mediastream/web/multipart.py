"""Reading ``multipart/form-data`` uploads as a stream, with python-multipart's parser.

`read_parts` feeds the request body, block by block as it arrives, to python-multipart's
`MultipartParser` (the standalone, sans-I/O parser behind Starlette's forms) and hands each
part's headers and body blocks on in order. Nothing is decoded or transformed: a part's bytes
leave as views of the blocks that were read. A part is complete only once its delimiter has
arrived, and the body only with the close delimiter; a body that breaks the format, or ends
before that, raises `MalformedMultipart`.

Why this parser (issue 10): the reader written here before assumed each read brought at least
the rest of a delimiter. Fed in small reads (slow clients, proxies, TLS records) it failed every
upload, or let a file swallow the next part while that part vanished. python-multipart is well
kept and carries a partial delimiter across writes of any size; ``tests/web/test_multipart.py``
feeds it random bodies in reads from one byte up. Speed decided nothing: ``bench/upload.py``
(100 x 525 KB CT files sent by curl; medians of per-run medians, candidates interleaved, on
this shared 2-core machine) gave, in its quietest session (5 runs each), python-multipart
278 MB/s, the old reader repaired 367, aiohttp's `MultipartReader` 228; over all 16 runs
(load up to 9) python-multipart 245 and the repaired reader 232, aiohttp 195 (8 runs). Parsing
alone (``multipart_parse``, 64 KiB pieces) costs python-multipart about 0.4 ms per MB
(2.3 GB/s; the repaired reader 2.5, aiohttp 0.5): a tenth of an upload's cost, so a faster
hand-written parser would gain ~1 %. aiohttp's reader is slower and takes a header line cut off
by the end of the body for a whole header.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import StreamReader
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = ["MalformedMultipart", "Part", "parse_disposition", "read_parts"]

READ_SIZE = 1 << 20
MAX_HEADER_BYTES = 16 * 1024  # one header line of a part
MAX_HEADERS = 32  # per part; browsers send two
MAX_BOUNDARY = 200  # RFC 2046 says 70; be lenient with clients that send longer ones


class MalformedMultipart(ValueError):
    """The body does not follow the multipart format its Content-Type announced."""


@dataclass(frozen=True)
class Part:
    name: str | None
    filename: str | None
    headers: dict[str, str]


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


# What the parser reports, in body order: a part whose headers are complete, a view of its body
# bytes, or None for the end of the part.
_Event = Part | memoryview | None


class _Body:
    """The request body run through the parser; `next_event` reads only when it must."""

    def __init__(self, content: StreamReader, boundary: bytes) -> None:
        self._content = content
        self._events: deque[_Event] = deque()
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, str] = {}
        self._fed = 0  # bytes written to the parser before the current block
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._headers.clear,
            "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": lambda: self._events.append(None),
        }
        self._parser = MultipartParser(
            boundary,
            callbacks,
            max_header_count=MAX_HEADERS,
            max_header_size=MAX_HEADER_BYTES,
        )

    async def next_event(self) -> _Event | bool:
        """The next event of the body; False once the close delimiter has been read."""
        while not self._events:
            block = await self._content.read(READ_SIZE)
            if not block:
                if self._parser.state != MultipartState.END:
                    raise MalformedMultipart(_where_it_ends(self._parser.state))
                return False
            try:
                self._parser.write(block)
            except MultipartParseError as exc:
                where = self._fed + max(exc.offset, 0)
                raise MalformedMultipart(f"byte {where} breaks the format ({exc})") from None
            self._fed += len(block)
        return self._events.popleft()

    async def part_blocks(self) -> AsyncIterator[memoryview]:
        """The current part's body, block by block, up to its delimiter."""
        while isinstance(event := await self.next_event(), memoryview):
            yield event
        if event is not None:  # the parser ends every part before it begins another
            raise MalformedMultipart("a part ended without its delimiter")

    def _header_end(self) -> None:
        name = self._field.decode("utf-8", "replace").strip().lower()
        self._headers[name] = self._value.decode("utf-8", "replace").strip()
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        params = parse_disposition(self._headers.get("content-disposition", ""))
        headers = dict(self._headers)
        self._events.append(Part(params.get("name"), params.get("filename"), headers))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(memoryview(data)[start:end])


async def read_parts(
    content: StreamReader, boundary: str
) -> AsyncIterator[tuple[Part, AsyncIterator[memoryview]]]:
    """Yield each part with an iterator over its body blocks.

    Each body iterator must be consumed (or dropped) before the next part is requested;
    unconsumed body bytes are skipped. Raises `MalformedMultipart` for a body that breaks the
    format or ends before its close delimiter, after the parts that were complete before it.
    """
    if not boundary or len(boundary) > MAX_BOUNDARY or not boundary.isascii():
        raise MalformedMultipart("the Content-Type has no usable boundary")
    body = _Body(content, boundary.encode("ascii"))
    while (event := await body.next_event()) is not False:
        if not isinstance(event, Part):  # the parser reports body bytes only inside a part
            raise MalformedMultipart("body bytes arrived outside a part")
        blocks = body.part_blocks()
        yield event, blocks
        async for _ in blocks:  # what the caller left of the part
            pass


def _where_it_ends(state: MultipartState) -> str:
    if state in (MultipartState.START, MultipartState.START_BOUNDARY):
        return "the body ends before its first boundary"
    if state == MultipartState.PART_DATA:
        return "the body ends inside a part, before its delimiter"
    if state == MultipartState.END_BOUNDARY:
        return "the body ends inside its close delimiter"
    return "the body ends inside the headers of a part"
