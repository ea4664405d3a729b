"""Fuzzed uploads: damaged real DICOM files and random bytes, against a live server.

Every example uploads one to three mutants next to a known-good series stored before fuzzing.
After each, whatever the server decided about the mutants:

* the answer is never a 5xx: 200 with one outcome per file, or 422 ``no_valid_files``;
* no temporary upload is left behind, the server answers ``/health``;
* the known-good series is byte-identical on disk and renders to the same PNGs as before;
* every mutant the server stored lists as strict JSON and renders each of its frames as a PNG of
  the listed size, or answers a JSON 4xx (``decode_failed`` is honest) - never a 5xx.

Stored mutants are deleted again, so a later mutant of the same seed is judged afresh.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient
from hypothesis import event, given
from hypothesis import strategies as st

from mediastream.dicom.phantom import phantom_datasets
from tests.safety.conftest import fuzz_settings
from tests.safety.dicom_mutations import (
    LENGTH_TARGETS,
    DimensionLie,
    dataset_bytes,
    deflate_bomb,
    find_element,
    flip_bits,
    load_seeds,
    with_dimensions,
    with_length,
)
from tests.safety.processes import MiB, PeakMemory
from tests.web.conftest import ClientFactory

Client = TestClient[web.Request, web.Application]

SEEDS = load_seeds()
SEED_NAMES = sorted(SEEDS)
GOOD_SLICES = 3
# Frames rendered per stored mutant (and its last): every frame of the seeds (at most 15), but
# not all of a mutant that would claim thousands.
FRAMES_CHECKED = 32
# What a server may spend on a request that claims huge images: the bound is far below any
# honest allocation for such a claim (65535 x 65535 16-bit pixels is 8 GiB per frame).
MEMORY_BOUND = 256 * MiB


def strict_json(text: str) -> Any:
    """JSON as browsers parse it: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@dataclass(frozen=True)
class Mutant:
    """One fuzzed file; the repr (what Hypothesis prints for a failure) names its making."""

    seed: str
    how: str
    data: bytes = field(repr=False)

    def __repr__(self) -> str:
        digest = hashlib.sha256(self.data).hexdigest()[:12]
        return f"Mutant({self.seed!r}, {self.how}, {len(self.data)} bytes, sha256 {digest}…)"


# -- strategies ------------------------------------------------------------------------------


@st.composite
def bit_flips(draw: st.DrawFn) -> Mutant:
    seed = draw(st.sampled_from(SEED_NAMES))
    data = SEEDS[seed]
    # Mostly in the header, where one flipped bit changes the structure, sometimes anywhere.
    header_bits = min(len(data), 1500) * 8
    where = st.integers(0, header_bits - 1) | st.integers(0, len(data) * 8 - 1)
    bits = draw(st.lists(where, min_size=1, max_size=16))
    return Mutant(seed, f"flip bits {bits}", flip_bits(data, bits))


@st.composite
def truncations(draw: st.DrawFn) -> Mutant:
    seed = draw(st.sampled_from(SEED_NAMES))
    data = SEEDS[seed]
    # The interesting cuts: inside the preamble and meta, inside the header, inside the pixels.
    cut = draw(st.integers(0, min(len(data), 700)) | st.integers(0, len(data) - 1))
    return Mutant(seed, f"truncated to {cut}", data[:cut])


# The length targets each seed has (the deflated seed has none outside its meta group).
FOUND = {
    name: [tag for tag in LENGTH_TARGETS if find_element(data, tag) is not None]
    for name, data in SEEDS.items()
}


@st.composite
def lying_lengths(draw: st.DrawFn) -> Mutant:
    seed = draw(st.sampled_from(SEED_NAMES))
    data = SEEDS[seed]
    tag = draw(st.sampled_from(FOUND[seed]))
    header = find_element(data, tag)
    assert header is not None
    length = draw(
        st.sampled_from(
            [
                0,
                1,
                3,  # odd: DICOM values have even lengths
                header.length + 1,
                max(header.length - 1, 0),
                header.length * 2,
                len(data),
                len(data) + 2,
                0xFFFF,
                0x7FFFFFFF,
                0xFFFFFFFE,
                0xFFFFFFFF,  # undefined length
            ]
        )
        | st.integers(0, 0xFFFFFFFF)
    )
    how = f"length of ({tag >> 16:04X},{tag & 0xFFFF:04X}) {header.length} -> {length}"
    return Mutant(seed, how, with_length(data, header, length))


_HUGE_SIDES = st.sampled_from([0, 1, 2, 4095, 8192, 8193, 32768, 65535])
_FRAME_CLAIMS = st.sampled_from(["0", "1", "2", "16", "2000", "50000", "50001", "2147483647"])


@st.composite
def dimension_lies(draw: st.DrawFn) -> Mutant:
    # Re-encoding a deflated file would deflate it again; the other seeds cover every layout.
    seed = draw(st.sampled_from([name for name in SEED_NAMES if name != "image_dfl.dcm"]))
    lie = DimensionLie(
        rows=draw(st.none() | _HUGE_SIDES),
        columns=draw(st.none() | _HUGE_SIDES),
        frames=draw(st.none() | _FRAME_CLAIMS | st.sampled_from(["-1", "1e9", "", "abc"])),
        samples=draw(st.none() | st.sampled_from([0, 2, 3, 4, 65535])),
        bits_allocated=draw(st.none() | st.sampled_from([0, 1, 7, 8, 12, 32, 64, 65535])),
    )
    return Mutant(seed, f"claims {lie}", with_dimensions(SEEDS[seed], lie))


@st.composite
def splices(draw: st.DrawFn) -> Mutant:
    seed = draw(st.sampled_from(SEED_NAMES))
    data = SEEDS[seed]
    at = draw(st.integers(0, min(len(data), 2000)))
    junk = draw(st.binary(min_size=1, max_size=64))
    if draw(st.booleans()):
        return Mutant(seed, f"inserted {junk.hex()} at {at}", data[:at] + junk + data[at:])
    return Mutant(
        seed, f"overwrote at {at} with {junk.hex()}", data[:at] + junk + data[at + len(junk) :]
    )


_PREFIXES = {
    "none": b"",
    "preamble": b"\0" * 128 + b"DICM",  # passes the Part 10 sniff
    "raw group 0002": b"\x02\x00",  # passes the raw-dataset sniff
    "raw group 0008": b"\x08\x00",
}


@st.composite
def random_files(draw: st.DrawFn) -> Mutant:
    prefix = draw(st.sampled_from(sorted(_PREFIXES)))
    body = draw(st.binary(min_size=0, max_size=2048))
    return Mutant("random", f"random bytes after prefix {prefix!r}", _PREFIXES[prefix] + body)


# -- the server and what must stay true --------------------------------------------------------


@dataclass
class Harness:
    """A live server holding a known-good series, and what that series looked like."""

    client: Client
    uploads: Path
    good_uid: str
    good_files: dict[str, bytes] = field(default_factory=dict)  # name -> sha256
    good_pngs: list[bytes] = field(default_factory=list)

    async def upload(self, files: list[tuple[str, bytes]]) -> tuple[int, Any]:
        form = FormData(quote_fields=False)
        for name, data in files:
            form.add_field("files", data, filename=name, content_type="application/dicom")
        response = await self.client.post("/images", data=form)
        return response.status, strict_json(await response.text())

    def good_digests(self) -> dict[str, bytes]:
        folder = self.uploads / self.good_uid
        return {p.name: hashlib.sha256(p.read_bytes()).digest() for p in folder.iterdir()}

    async def frame(self, uid: str, index: int) -> tuple[int, bytes, str]:
        response = await self.client.get(f"/images/{uid}/frames/{index}.png")
        return response.status, await response.read(), response.content_type

    async def assert_intact(self) -> None:
        """The server is alive and the known-good series is exactly as stored."""
        health = await self.client.get("/health")
        assert health.status == 200, await health.text()
        assert strict_json(await health.text())["status"] == "ok"
        assert self.good_digests() == self.good_files
        for index, expected in enumerate(self.good_pngs):
            status, png, _ = await self.frame(self.good_uid, index)
            assert status == 200 and png == expected, f"good frame {index} changed"
        leftovers = list((self.uploads / ".incoming").iterdir())
        assert leftovers == [], f"temporary uploads left behind: {leftovers}"

    async def listing(self) -> dict[str, dict[str, Any]]:
        response = await self.client.get("/images")
        assert response.status == 200, await response.text()
        return {s["series_uid"]: s for s in strict_json(await response.text())["series"]}

    async def assert_renders(self, uid: str, info: dict[str, Any]) -> None:
        """Each checked frame of a stored series is a PNG of the listed size or a JSON 4xx."""
        count = info["frame_count"]
        assert count >= 1
        for index in sorted({*range(min(count, FRAMES_CHECKED)), count - 1}):
            status, body, content_type = await self.frame(uid, index)
            assert status < 500, f"frame {index} of {uid}: {status} {body[:300]!r}"
            if status == 200:
                assert content_type == "image/png"
                image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED)
                assert image is not None, f"frame {index} of {uid} is not a PNG"
                assert image.shape[:2] == (info["rows"], info["columns"])
            else:
                error = strict_json(body.decode())
                assert error["error"] in ("decode_failed", "frame_not_found"), error
                assert error["detail"]

    async def check(self, mutants: list[Mutant]) -> None:
        """Upload `mutants` in one request and check everything the module docstring promises."""
        names = [f"mutant-{i}.dcm" for i in range(len(mutants))]
        status, body = await self.upload(list(zip(names, (m.data for m in mutants), strict=True)))
        assert status in (200, 422), (status, body)
        outcomes = body["files"]
        assert [o["filename"] for o in outcomes] == names
        for outcome in outcomes:
            assert outcome["outcome"] in ("stored", "already_stored", "rejected"), outcome
            if outcome["outcome"] == "rejected":
                assert isinstance(outcome["reason"], str) and outcome["reason"]
        for mutant, outcome in zip(mutants, outcomes, strict=True):
            event(f"{mutant.seed}: {outcome['outcome']}")  # --hypothesis-show-statistics
        accepted = [o for o in outcomes if o["outcome"] != "rejected"]
        assert (status == 200) == bool(accepted)
        if status == 422:
            assert body["error"] == "no_valid_files" and body["detail"]
        await self.assert_intact()
        touched = {o["series_uid"] for o in accepted} - {self.good_uid}
        if touched:
            listed = await self.listing()
            for uid in sorted(touched):
                await self.assert_renders(uid, listed[uid])
                response = await self.client.delete(f"/images/{uid}")
                assert response.status == 200, await response.text()


@pytest.fixture
async def harness(make_client: ClientFactory, uploads: Path) -> Harness:
    client = await make_client()
    good = [dataset_bytes(ds) for ds in phantom_datasets(n_slices=GOOD_SLICES, size=64)]
    harness = Harness(client, uploads, good_uid="")
    status, body = await harness.upload([(f"good-{i}.dcm", data) for i, data in enumerate(good)])
    assert status == 200 and {f["outcome"] for f in body["files"]} == {"stored"}, body
    harness.good_uid = body["files"][0]["series_uid"]
    harness.good_files = harness.good_digests()
    for index in range(GOOD_SLICES):
        status, png, _ = await harness.frame(harness.good_uid, index)
        assert status == 200
        harness.good_pngs.append(png)
    return harness


# -- tests -----------------------------------------------------------------------------------


async def test_every_seed_is_stored_and_renders_unmutated(harness: Harness) -> None:
    """The mutations start from files the server accepts, so they probe its accepting paths."""
    for name, data in sorted(SEEDS.items()):
        status, body = await harness.upload([(name, data)])
        assert status == 200 and body["files"][0]["outcome"] == "stored", body
        uid = body["files"][0]["series_uid"]
        await harness.assert_renders(uid, (await harness.listing())[uid])
        assert (await harness.client.delete(f"/images/{uid}")).status == 200
    await harness.assert_intact()


@fuzz_settings(max_examples=70)
@given(st.lists(bit_flips() | truncations() | splices(), min_size=1, max_size=3))
async def test_damaged_files_never_break_the_server(
    harness: Harness, mutants: list[Mutant]
) -> None:
    await harness.check(mutants)


@fuzz_settings(max_examples=50)
@given(st.lists(lying_lengths() | dimension_lies(), min_size=1, max_size=3))
async def test_lying_headers_never_break_the_server(
    harness: Harness, mutants: list[Mutant]
) -> None:
    await harness.check(mutants)


@fuzz_settings(max_examples=30)
@given(st.lists(random_files(), min_size=1, max_size=3))
async def test_random_bytes_are_refused_cleanly(harness: Harness, mutants: list[Mutant]) -> None:
    await harness.check(mutants)


HUGE_CLAIMS = {
    "65535x65535x2000": DimensionLie(rows=65535, columns=65535, frames="2000"),
    "one row over the pixel limit": DimensionLie(rows=8193, columns=8192),
    "2^31-1 frames": DimensionLie(frames="2147483647"),
}


@pytest.mark.parametrize("claim", sorted(HUGE_CLAIMS))
@pytest.mark.parametrize("seed", [name for name in SEED_NAMES if name != "image_dfl.dcm"])
async def test_huge_image_claims_are_refused_before_any_allocation(
    harness: Harness, seed: str, claim: str
) -> None:
    data = with_dimensions(SEEDS[seed], HUGE_CLAIMS[claim])
    memory = PeakMemory.reset()
    status, body = await harness.upload([("huge.dcm", data)])
    growth = memory.largest_growth()
    assert status == 422, body
    reason = body["files"][0]["reason"]
    assert "exceeds the limit" in reason, reason
    assert growth < MEMORY_BOUND, f"a process grew by {growth / MiB:.0f} MiB for: {reason}"
    await harness.assert_intact()


async def test_a_deflate_bomb_is_refused_without_inflating_it(harness: Harness) -> None:
    """A 200 KB deflated file whose pixel data inflates to 192 MiB; its header claims one
    128 x 128 frame (32 KiB). Deflate reaches ~1000:1, so without a bound on inflating, an upload
    within --max-file-mb can claim terabytes of memory in the validating worker (and again in
    the server on every render)."""
    bomb = deflate_bomb(SEEDS["CT_small.dcm"], 192 * MiB)
    assert len(bomb) < 300_000
    memory = PeakMemory.reset()
    status, body = await harness.upload([("bomb.dcm", bomb)])
    assert status < 500, body
    growth = memory.largest_growth()
    outcome = body["files"][0]
    assert growth < MEMORY_BOUND, (
        f"validating a {len(bomb)}-byte upload made a server process grow by "
        f"{growth / MiB:.0f} MiB; outcome {outcome}"
    )
    if outcome["outcome"] == "stored":  # then rendering it must be bounded too
        memory = PeakMemory.reset()
        await harness.assert_renders(
            outcome["series_uid"], (await harness.listing())[outcome["series_uid"]]
        )
        growth = memory.largest_growth()
        assert growth < MEMORY_BOUND, f"rendering it grew a process by {growth / MiB:.0f} MiB"
    await harness.assert_intact()
