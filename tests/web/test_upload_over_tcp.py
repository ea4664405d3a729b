"""``POST /images`` over real TCP, in the tiny writes a slow client or a proxy makes.

The server is the real one (``python server.py``) on 127.0.0.1; the client is a raw socket with
``TCP_NODELAY`` that writes the request 1 to 7 bytes at a time and gives up its CPU after each
write, as a slow link would pace it, so the server (on the other core) mostly reads the body in
those pieces, split anywhere, delimiters included. Every stored file must be byte-identical to
the one sent. (The parser written before issue 10 failed this every time: a 400, or one file
swallowing the next.)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.data import get_testdata_file

from tests.safety.server_process import ServerProcess

# Real files of different layouts, each its own SOP instance (so each is stored, not a repeat).
FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "rtdose.dcm",
    "image_dfl.dcm",
    "JPEG2000.dcm",
)
SOCKET_TIMEOUT = 60.0  # seconds for any one send or receive


def real_files() -> dict[str, bytes]:
    files = {}
    for name in FILES:
        path = get_testdata_file(name)
        assert path is not None, f"pydicom test file {name} is not available locally"
        files[name] = Path(str(path)).read_bytes()
    return files


def request(port: int, files: dict[str, bytes], boundary: str) -> bytes:
    body = bytearray()
    for name, data in files.items():
        body += f"--{boundary}\r\n".encode()
        body += f'Content-Disposition: form-data; name="files"; filename="{name}"\r\n'.encode()
        body += b"Content-Type: application/dicom\r\n\r\n" + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    head = (
        "POST /images HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + bytes(body)


def send_in_small_writes(port: int, data: bytes, sizes: Callable[[], int]) -> tuple[int, Any]:
    """Send `data` in writes of `sizes()` bytes; return the response's status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        offset = 0
        while offset < len(data):
            size = sizes()
            sock.sendall(data[offset : offset + size])
            offset += size
            os.sched_yield()  # no wait for anything: the server may read each write alone
        response = bytearray()
        while chunk := sock.recv(65536):
            response += chunk
    head, _, body = bytes(response).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


async def test_a_request_sent_in_1_to_7_byte_writes_stores_every_file_byte_for_byte(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    files = real_files()
    uploads = tmp_path / "uploads"
    server = ServerProcess(uploads, unused_tcp_port, tmp_path / "server.log")
    await server.start()
    try:
        rng = random.Random(10)  # the same splits every run
        data = request(unused_tcp_port, files, uuid.uuid4().hex)
        status, body = await asyncio.to_thread(
            send_in_small_writes, unused_tcp_port, data, lambda: rng.randint(1, 7)
        )
    finally:
        server.stop()
    assert status == 200, body
    outcomes = body["files"]
    assert [o["filename"] for o in outcomes] == list(files)
    assert [o["outcome"] for o in outcomes] == ["stored"] * len(files), outcomes
    for outcome in outcomes:
        stored = uploads / outcome["series_uid"] / f"{outcome['sop_instance_uid']}.dcm"
        assert stored.read_bytes() == files[outcome["filename"]], outcome["filename"]
        assert dcmread(stored).SOPInstanceUID == outcome["sop_instance_uid"]
    assert len(list(uploads.glob("*/*.dcm"))) == len(files)
