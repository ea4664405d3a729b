"""Path traversal: client file names, ``{series_uid}`` and static paths stay inside their folders.

Requests go out as raw bytes on a socket where an HTTP client would normalise the path (resolve
``..``, re-encode ``%2e``), so the server sees exactly the hostile target. Around the library sit
decoys a traversal would reach: a secret file and a valid DICOM "series" folder next to the
uploads folder. Nothing outside the uploads folder may change, be read or be deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydicom import dcmread
from pydicom.data import get_testdata_file

from mediastream.app import STATIC_DIR
from mediastream.dicom.phantom import phantom_datasets
from tests.safety.dicom_mutations import dataset_bytes
from tests.web.conftest import ClientFactory

Client = TestClient[web.Request, web.Application]

REPO = STATIC_DIR.parent
# Bytes that only the files a traversal would reach contain: server.py beside static/, the
# settings module below it, the system's password file.
LEAK_MARKERS = {
    REPO / "server.py": b"def main(argv",
    REPO / "mediastream" / "settings.py": b"ENV_PREFIX = ",
    Path("/etc/passwd"): b"root:x:0:0",
}
DECOY_SERIES = "9.9.9"  # a series folder beside uploads/, holding a valid DICOM file


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(client: Client, method: str, target: bytes, body: bytes = b"") -> RawResponse:
    """Send `target` exactly as given (no normalisation, no re-encoding) and read the answer."""
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        head = b"%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % (
            method.encode(),
            target,
        )
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        writer.write(head + body)
        async with asyncio.timeout(10):
            data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    header_block, _, payload = data.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        payload = _dechunk(payload)
    return RawResponse(int(status_line.split()[1]), headers, payload)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def snapshot(root: Path, exclude: Path | None = None) -> dict[str, str]:
    """Every path below `root` (but `exclude`) with a digest of its content ("dir" for folders)."""
    tree = {}
    for path in sorted(root.rglob("*")):
        if exclude is not None and path.is_relative_to(exclude):
            continue
        rel = str(path.relative_to(root))
        tree[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


@dataclass
class Site:
    """A server on `uploads` with one stored series, and decoys beside the uploads folder."""

    client: Client
    root: Path  # holds uploads/ and the decoys
    uploads: Path
    series_uid: str
    stored: list[Path]

    def outside(self) -> dict[str, str]:
        return snapshot(self.root, exclude=self.uploads)

    def library_files(self) -> dict[str, str]:
        """The library's folders and files, but its index journal (which uploads append to)."""
        return {k: v for k, v in snapshot(self.uploads).items() if k != ".index.jsonl"}


@pytest.fixture
async def site(make_client: ClientFactory, tmp_path: Path) -> Site:
    # `uploads` (from tests/conftest.py) is tmp_path / "uploads"; the decoys go beside it.
    (tmp_path / "secret.txt").write_text("TOP SECRET: outside the library\n")
    decoy = tmp_path / DECOY_SERIES
    decoy.mkdir()
    ct = get_testdata_file("CT_small.dcm")
    assert ct is not None
    (decoy / "9.9.9.1.dcm").write_bytes(Path(str(ct)).read_bytes())
    client = await make_client()
    files = [dataset_bytes(ds) for ds in phantom_datasets(n_slices=2, size=32)]
    body, content_type = multipart([(_quoted(f"good-{i}.dcm"), f) for i, f in enumerate(files)])
    response = await client.post("/images", data=body, headers={"Content-Type": content_type})
    assert response.status == 200
    series_uid = (await response.json())["files"][0]["series_uid"]
    uploads = tmp_path / "uploads"
    stored = sorted(uploads.rglob("*.dcm"))
    assert len(stored) == 2
    return Site(client, tmp_path, uploads, series_uid, stored)


def multipart(parts: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    """A multipart body whose Content-Disposition parameters are sent byte for byte."""
    boundary = uuid.uuid4().hex
    body = b""
    for disposition, data in parts:
        body += b"--%s\r\n" % boundary.encode()
        body += b'Content-Disposition: form-data; name="files"; %s\r\n' % disposition
        body += b"Content-Type: application/dicom\r\n\r\n" + data + b"\r\n"
    body += b"--%s--\r\n" % boundary.encode()
    return body, f"multipart/form-data; boundary={boundary}"


# -- client file names -----------------------------------------------------------------------

TOKEN = "ms-traversal-" + uuid.uuid4().hex[:12]  # in every hostile name: found nowhere before


def _quoted(name: str) -> bytes:
    return b'filename="%s"' % name.encode("utf-8")


HOSTILE_NAMES: dict[str, tuple[bytes, str]] = {
    # id: (the Content-Disposition parameter as sent, the name the server should report)
    "parent": (_quoted(f"../../{TOKEN}.dcm"), f"../../{TOKEN}.dcm"),
    "deep parent": (_quoted("../" * 40 + TOKEN), "../" * 40 + TOKEN),
    "absolute": (_quoted(f"/tmp/{TOKEN}.dcm"), f"/tmp/{TOKEN}.dcm"),
    "backslashes": (_quoted(f"..\\..\\{TOKEN}.dcm"), f"..\\..\\{TOKEN}.dcm"),
    "windows drive": (_quoted(f"C:\\{TOKEN}.dcm"), f"C:\\{TOKEN}.dcm"),
    "percent-encoded": (_quoted(f"%2e%2e%2f%2e%2e%2f{TOKEN}"), f"%2e%2e%2f%2e%2e%2f{TOKEN}"),
    "rfc 5987": (
        f"filename*=UTF-8''..%2F..%2F{TOKEN}.dcm".encode(),
        f"../../{TOKEN}.dcm",
    ),
    "nul": (_quoted(f"{TOKEN}\0/../../x.dcm"), f"{TOKEN}\0/../../x.dcm"),
    "unicode dots": (
        _quoted(f"\u2025/\uff0e\uff0e\uff0f{TOKEN}"),
        f"\u2025/\uff0e\uff0e\uff0f{TOKEN}",
    ),
    "dot": (_quoted("."), "."),
    "dot dot": (_quoted(".."), ".."),
    "very long": (_quoted("a" * 10_000 + TOKEN), "a" * 10_000 + TOKEN),
}


def _landing_spots(site: Site, name: str) -> list[Path]:
    """Where a server that used the client's name as a path could have written the file."""
    bases = [Path.cwd(), site.root, site.uploads, site.uploads / ".incoming", site.stored[0].parent]
    spots = []
    for base in bases:
        for variant in (name, name.replace("\\", "/"), name.split("\0")[0]):
            try:
                spots.append((base / variant).resolve())
            except (OSError, ValueError):
                continue  # not a possible path at all
    return spots


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long to be a path: nothing can be there
        return False


@pytest.mark.parametrize("case", sorted(HOSTILE_NAMES))
async def test_client_file_names_never_become_paths(site: Site, case: str) -> None:
    disposition, reported = HOSTILE_NAMES[case]
    outside, before = site.outside(), site.library_files()
    new_file = dataset_bytes(next(phantom_datasets(n_slices=1, size=32)))
    body, content_type = multipart([(disposition, new_file)])
    response = await site.client.post("/images", data=body, headers={"Content-Type": content_type})
    assert response.status == 200, await response.text()
    [outcome] = (await response.json())["files"]
    assert outcome["outcome"] == "stored"
    assert outcome["filename"] == reported  # reported back, never used
    expected = f"{outcome['series_uid']}/{outcome['sop_instance_uid']}.dcm"
    after = site.library_files()
    assert set(after) - set(before) == {outcome["series_uid"], expected}
    assert {k: v for k, v in after.items() if k in before} == before
    assert site.outside() == outside
    for spot in _landing_spots(site, reported):
        assert not _is_file(spot) or spot.is_relative_to(site.uploads), spot
    assert not list(Path("/tmp").glob(f"*{TOKEN}*"))


async def test_a_name_naming_a_stored_file_cannot_overwrite_it(site: Site) -> None:
    """The client's name spells the relative path of a stored file; another file arrives."""
    target = site.stored[0]
    original = target.read_bytes()
    rel = target.relative_to(site.uploads)
    other = dataset_bytes(next(phantom_datasets(n_slices=1, size=32)))
    for name in (str(rel), f"../{rel}", f"../uploads/{rel}", str(target)):
        body, content_type = multipart([(_quoted(name), other)])
        response = await site.client.post(
            "/images", data=body, headers={"Content-Type": content_type}
        )
        assert response.status == 200
        assert target.read_bytes() == original


# -- {series_uid} ----------------------------------------------------------------------------

HOSTILE_UIDS = [
    b"..",
    b".",
    b"...",
    b"%2e%2e",
    b"%2E%2E",
    b"..%2f..%2fetc",
    b"%2e%2e%2f%2e%2e%2fetc",
    b"..%2f" + DECOY_SERIES.encode(),  # the decoy series beside uploads/
    b"..%5c" + DECOY_SERIES.encode(),
    b"%2e%2e%2f" + DECOY_SERIES.encode(),
    b"%252e%252e%252f" + DECOY_SERIES.encode(),
    b"1.2%2f..%2f..%2fx",
    b"%2fetc%2fpasswd",
    b"%2ftmp",
    b".incoming",
    b"%00",
    b"1.2.3%00..",
    b";..",
    b"1" * 4000,
]


def _uid_targets(site: Site, uid: bytes) -> list[tuple[str, bytes]]:
    return [
        ("GET", b"/images/%s/frames/0.png" % uid),
        ("GET", b"/images/%s/frames/0.png?size=64" % uid),
        ("DELETE", b"/images/%s" % uid),
        # the real series' folder, then out of it
        ("GET", b"/images/%s%%2f..%%2f%s/frames/0.png" % (site.series_uid.encode(), uid)),
        ("DELETE", b"/images/%s%%2f..%%2f..%%2f%s" % (site.series_uid.encode(), uid)),
        # unencoded dot segments (a browser or HTTP library would have resolved these)
        ("GET", b"/images/%s/../../%s/frames/0.png" % (uid, DECOY_SERIES.encode())),
        ("DELETE", b"/images/x/../%s" % uid),
    ]


@pytest.mark.parametrize("uid", HOSTILE_UIDS, ids=lambda u: u.decode()[:24])
async def test_series_uid_cannot_reach_outside_the_library(site: Site, uid: bytes) -> None:
    outside, before = site.outside(), site.library_files()
    for method, target in _uid_targets(site, uid):
        response = await raw_request(site.client, method, target)
        assert response.status in (404, 405), (method, target[:100], response)
        assert response.json()["error"] in ("series_not_found", "not_found", "method_not_allowed")
        assert not response.body.startswith(b"\x89PNG")
    assert site.library_files() == before, "a stored file changed or went"
    assert site.outside() == outside, "something outside the library changed"
    listing = await site.client.get("/images")
    assert [s["series_uid"] for s in (await listing.json())["series"]] == [site.series_uid]


async def test_a_request_line_too_long_for_the_parser_is_a_4xx(site: Site) -> None:
    response = await raw_request(site.client, "DELETE", b"/images/" + b"1" * 20_000)
    assert 400 <= response.status < 500
    assert site.library_files() and (await site.client.get("/health")).status == 200


# -- static files ----------------------------------------------------------------------------

STATIC_TARGETS = [
    b"/static/../server.py",
    b"/static/%2e%2e/server.py",
    b"/static/%2E%2E/server.py",
    b"/static/..%2fserver.py",
    b"/static/%2e%2e%2fserver.py",
    b"/static/.%2e/server.py",
    b"/static/js/../../server.py",
    b"/static/js/..%2f..%2fserver.py",
    b"/static/..\\server.py",
    b"/static/%5c..%5cserver.py",
    b"/static/..%5cserver.py",
    b"/static/%252e%252e/server.py",
    b"/static/....//server.py",
    b"/static/;/../server.py",
    b"/static/index.html/..%2f..%2fserver.py",
    b"/static//etc/passwd",
    b"/static/%2fetc%2fpasswd",
    b"/static/../../../../../../etc/passwd",
    b"/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    b"/static/../mediastream/settings.py",
    b"/static/%00",
    b"/static/index.html%00.js",
    b"//etc/passwd",
    b"/static/../uploads/.gitkeep",
]


async def test_static_files_are_served(site: Site) -> None:
    """The control: the same raw request does fetch a file that is inside static/."""
    response = await raw_request(site.client, "GET", b"/static/index.html")
    assert response.status == 200
    assert response.body == (STATIC_DIR / "index.html").read_bytes()


@pytest.mark.parametrize("target", STATIC_TARGETS, ids=lambda t: t.decode()[:40])
async def test_static_paths_cannot_leave_the_static_folder(site: Site, target: bytes) -> None:
    response = await raw_request(site.client, "GET", target)
    assert response.status in (400, 403, 404), response
    for marker in LEAK_MARKERS.values():
        assert marker not in response.body
    if response.body and response.headers.get("content-type", "").startswith("application/json"):
        assert response.json()["error"] in ("not_found", "forbidden", "bad_request")


def test_the_markers_are_real() -> None:
    """The content checks above would notice a leak: the marked files exist and hold markers."""
    for path, marker in LEAK_MARKERS.items():
        assert marker in path.read_bytes(), path
    assert (STATIC_DIR / "index.html").is_file()
    ct = get_testdata_file("CT_small.dcm")
    assert ct is not None and dcmread(str(ct)).SOPInstanceUID
