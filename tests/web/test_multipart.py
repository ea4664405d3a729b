"""`read_parts` on a real aiohttp `StreamReader` fed in pieces, as slow clients and proxies send.

The reader is fed one piece at a time and given the next only once it has taken everything fed
so far, so each read the parser makes returns at most one piece: every split of the body is a
split the parser sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import cycle

import pytest
from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mediastream.web.multipart import MalformedMultipart, Part, read_parts

FEED_TIMEOUT = 10.0  # seconds for one body: a parser that stops reading fails, never hangs


class _Connection(BaseProtocol):
    """The protocol side of a `StreamReader` that a test feeds by hand (no transport)."""

    @property
    def connected(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


def _buffered(content: StreamReader) -> int:
    """Bytes fed but not yet read (aiohttp keeps the count but has no public accessor)."""
    return content._size


@dataclass(frozen=True)
class Received:
    part: Part
    body: bytes


async def _read_all(content: StreamReader, boundary: str, received: list[Received]) -> None:
    async for part, blocks in read_parts(content, boundary):
        body = bytearray()
        async for block in blocks:
            body += block
        received.append(Received(part, bytes(body)))


async def parse(body: bytes, boundary: str, reads: Sequence[int] = (1 << 20,)) -> list[Received]:
    """Feed `body` in pieces of the sizes `reads` (repeated) and return every part read."""
    received: list[Received] = []
    await parse_into(body, boundary, reads, received)
    return received


async def parse_into(
    body: bytes, boundary: str, reads: Sequence[int], received: list[Received]
) -> None:
    """As `parse`, adding each part to `received` once read whole (so a test sees what came
    before a refusal)."""
    loop = asyncio.get_running_loop()
    connection = _Connection(loop)
    content = StreamReader(connection, limit=2**16, loop=loop)  # as aiohttp's server
    parsing = asyncio.ensure_future(_read_all(content, boundary, received))

    async def feed() -> None:
        sizes, offset = cycle(reads), 0
        while offset < len(body) and not parsing.done():
            piece = body[offset : offset + next(sizes)]
            offset += len(piece)
            content.feed_data(piece)
            while _buffered(content) and not parsing.done():
                await asyncio.sleep(0)  # let the parser take it; bounded by FEED_TIMEOUT
        content.feed_eof()

    feeder = asyncio.ensure_future(feed())
    try:
        async with asyncio.timeout(FEED_TIMEOUT):
            await asyncio.gather(parsing, feeder)
    finally:
        feeder.cancel()
        parsing.cancel()


def encode(parts: Sequence[tuple[str, bytes]], boundary: str, epilogue: bytes = b"\r\n") -> bytes:
    """A multipart/form-data body as browsers and HTTP libraries write it."""
    out = bytearray()
    for filename, data in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        out += b'Content-Disposition: form-data; name="files"; filename="%s"\r\n' % (
            filename.encode()
        )
        out += b"Content-Type: application/dicom\r\n\r\n"
        out += data + b"\r\n"
    out += b"--" + boundary.encode() + b"--" + epilogue
    return bytes(out)


BOUNDARY = "3f9a1c0e5b7d4e2a8c6b1d0f9e8a7b6c"
FIRST = bytes(range(100))
SECOND = b"second file: " + bytes(range(255, 155, -1))


def two_files() -> bytes:
    return encode([("first.dcm", FIRST), ("second.dcm", SECOND)], BOUNDARY)


# -- the defect of issue 10, as reported ------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, 7])
async def test_small_reads_give_every_file_byte_for_byte(size: int) -> None:
    received = await parse(two_files(), BOUNDARY, [size])
    assert [(r.part.filename, r.body) for r in received] == [
        ("first.dcm", FIRST),
        ("second.dcm", SECOND),
    ]


async def test_a_delimiter_split_over_three_reads_neither_merges_nor_drops_a_file() -> None:
    body = two_files()
    delimiter = b"\r\n--" + BOUNDARY.encode()
    start = body.index(delimiter, body.index(FIRST))
    # everything up to the middle of the delimiter, a few more of its bytes, then the rest
    reads = [start + 3, 5, len(body)]
    received = await parse(body, BOUNDARY, reads)
    assert [len(r.body) for r in received] == [len(FIRST), len(SECOND)]
    assert [r.body for r in received] == [FIRST, SECOND]
    assert [r.part.filename for r in received] == ["first.dcm", "second.dcm"]


async def test_part_headers_are_read_whatever_the_split() -> None:
    received = await parse(two_files(), BOUNDARY, [2])
    assert received[0].part.name == "files"
    assert received[0].part.headers["content-type"] == "application/dicom"


# -- every body, every split ------------------------------------------------------------------

# RFC 2046 boundary characters (a space is allowed too, but not last; browsers never use it).
BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"


@st.composite
def boundaries(draw: st.DrawFn) -> str:
    return draw(st.text(alphabet=BCHARS, min_size=1, max_size=70))


@st.composite
def part_bodies(draw: st.DrawFn, boundary: str) -> bytes:
    """Bytes that look like a delimiter as often as possible without being one."""
    near_misses = [b"\r", b"\r\n", b"\r\n-", b"\r\n--", b"--", b"-", b"\n"]
    near_misses += [b"\r\n--" + boundary[:cut].encode() for cut in range(len(boundary))]
    near_misses += [b"--" + boundary.encode(), boundary.encode()]  # not after a CRLF: data
    pieces = st.sampled_from(near_misses) | st.binary(min_size=0, max_size=40)
    sizes = st.integers(0, 6) | st.integers(0, 200)
    body = b"".join(draw(st.lists(pieces, max_size=draw(sizes))))
    assume(b"\r\n--" + boundary.encode() not in b"\r\n" + body + b"\r\n")
    return body


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, list[tuple[str, bytes]], bytes]:
    boundary = draw(boundaries())
    count = draw(st.integers(1, 5))
    parts = [(f"file-{i}.dcm", draw(part_bodies(boundary))) for i in range(count)]
    epilogue = draw(st.sampled_from([b"", b"\r\n", b"\r\nan epilogue\r\n"]))
    return boundary, parts, encode(parts, boundary, epilogue)


read_sizes = st.lists(st.integers(1, 8) | st.integers(1, 1000), min_size=1, max_size=20)

# Examples derived from each test's name, as in tests/safety: a run is repeatable.
PROPERTY = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(messages(), read_sizes)
async def test_every_part_comes_out_byte_identical_and_in_order(
    message: tuple[str, list[tuple[str, bytes]], bytes], reads: list[int]
) -> None:
    boundary, parts, body = message
    received = await parse(body, boundary, reads)
    assert [(r.part.filename, r.body) for r in received] == parts
    assert {r.part.name for r in received} == {"files"}


@PROPERTY
@given(messages(), read_sizes, st.data())
async def test_a_cut_body_is_refused_never_read_as_shorter_files(
    message: tuple[str, list[tuple[str, bytes]], bytes], reads: list[int], data: st.DataObject
) -> None:
    """Cut anywhere before the close delimiter's final ``--``: the body is refused, and what
    was read before the refusal is whole files only, each exactly as sent."""
    boundary, parts, body = message
    end = body.rindex(b"--" + boundary.encode() + b"--") + len(boundary) + 3
    cut = data.draw(st.integers(0, end), label="cut")
    received: list[Received] = []
    with pytest.raises(MalformedMultipart) as refused:
        await parse_into(body[:cut], boundary, reads, received)
    assert str(refused.value)
    assert [(r.part.filename, r.body) for r in received] == parts[: len(received)]
    if cut < end - 1:  # the last part's delimiter did not arrive whole
        assert len(received) < len(parts)


# -- bodies that break the format -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"no boundary anywhere\r\n", id="no boundary"),
        pytest.param(encode([("a.dcm", FIRST)], BOUNDARY)[:-4], id="no final --"),
        pytest.param(
            encode([("a.dcm", FIRST)], BOUNDARY).replace(b"\r\n\r\n", b"\r\n"),
            id="no blank line",
        ),
        pytest.param(
            encode([("a.dcm", FIRST)], BOUNDARY).replace(b"Content-Type:", b"Content-Type"),
            id="header without colon",
        ),
    ],
)
@pytest.mark.parametrize("size", [1, 5, 1 << 20])
async def test_malformed_bodies_are_refused(body: bytes, size: int) -> None:
    with pytest.raises(MalformedMultipart) as refused:
        await parse(body, BOUNDARY, [size])
    assert str(refused.value)


@pytest.mark.parametrize("boundary", ["", "x" * 201, "caf\u00e9"])
async def test_an_unusable_boundary_is_refused(boundary: str) -> None:
    with pytest.raises(MalformedMultipart, match="boundary"):
        await parse(encode([("a.dcm", FIRST)], "x"), boundary)


async def test_part_headers_have_a_size_limit() -> None:
    body = encode([("x" * 20_000 + ".dcm", FIRST)], BOUNDARY)
    with pytest.raises(MalformedMultipart):
        await parse(body, BOUNDARY, [4096])
