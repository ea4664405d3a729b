"""Crash safety: the real server killed mid-upload, stopped with SIGTERM mid-stream, and a
validation worker dying under it.

* SIGKILL in the middle of an upload: the files sent completely before the kill are stored (the
  test waits until they are on disk, so that is the state killed); the file being received is a
  partial temp file in ``.incoming/``. After a restart on the same folder only complete files
  are listed, each renders, every stored file parses, and no ``.part`` file is left.
* SIGTERM with a signalling socket and a live WebRTC stream: sockets are closed with 1001
  (going away), the viewer's peer connection is closed by the server, the process exits (with
  its worker processes) within 5 s.
* A validation worker that dies (a decoder crash, the OOM killer) costs at most the file it was
  validating; later uploads are stored, and no request hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydicom import dcmread

from mediastream.client import StreamClient
from mediastream.dicom.phantom import phantom_datasets
from tests.safety.dicom_mutations import dataset_bytes
from tests.safety.processes import MiB, command_line, is_alive, validation_workers
from tests.safety.server_process import ServerProcess
from tests.streaming.conftest import fill_library
from tests.web.conftest import ClientFactory

SHUTDOWN_LIMIT = 5.0  # seconds from SIGTERM to exit: the requirement
WAIT = 30.0  # for conditions that take milliseconds normally
UPLOAD_TIMEOUT = 10.0  # for an upload of one small file, which takes milliseconds


async def until(condition: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Poll `condition()` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        await asyncio.sleep(0.02)  # polling a condition, with the deadline above


StartServer = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
def run_server(tmp_path: Path, unused_tcp_port_factory: Callable[[], int]) -> Iterator[StartServer]:
    """Start servers with `run_server(uploads, *flags)`; all are stopped after the test."""
    started: list[ServerProcess] = []

    async def start(uploads: Path, *flags: str) -> ServerProcess:
        log = tmp_path / f"server-{len(started)}.log"
        server = ServerProcess(uploads, unused_tcp_port_factory(), log, flags)
        started.append(server)
        await server.start()
        return server

    yield start
    for server in started:
        server.stop()


def multipart_head(boundary: str, name: str) -> bytes:
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/dicom\r\n\r\n"
    ).encode()


# -- SIGKILL mid-upload ----------------------------------------------------------------------


async def test_sigkill_mid_upload_leaves_no_partial_file_after_restart(
    tmp_path: Path, run_server: StartServer
) -> None:
    uploads = tmp_path / "uploads"
    server = await run_server(uploads)
    complete = [dataset_bytes(ds) for ds in phantom_datasets(n_slices=4, size=64)]
    big = dataset_bytes(next(phantom_datasets(n_slices=1, size=1024)))  # 2 MiB
    sent_of_big = 3 * MiB // 2  # over the 1 MiB the server spills to disk as it arrives
    boundary = uuid.uuid4().hex
    never = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        for i, data in enumerate(complete):
            yield multipart_head(boundary, f"slice-{i}.dcm") + data + b"\r\n"
        yield multipart_head(boundary, "big.dcm") + big[:sent_of_big]
        await never.wait()  # the rest never comes: the server is killed while it waits

    incoming = uploads / ".incoming"

    def partials() -> list[Path]:
        return [p for p in incoming.glob("*.part") if p.stat().st_size >= MiB]

    def stored() -> list[Path]:
        return sorted(uploads.glob("*/*.dcm"))

    async with aiohttp.ClientSession() as http:
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        upload = asyncio.ensure_future(
            http.post(server.url + "/images", data=body(), headers=headers)
        )
        try:
            await until(
                lambda: partials() and len(stored()) == len(complete),
                "the partial is written and the complete files stored",
            )
            server.note_helpers()
            server.signal(signal.SIGKILL)
            assert await server.wait_exit(WAIT) == -signal.SIGKILL
        finally:
            upload.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await upload
    assert partials(), "the partial upload should still be on disk after SIGKILL"
    restarted = await run_server(uploads)
    async with aiohttp.ClientSession() as http:
        async with http.get(restarted.url + "/images") as response:
            assert response.status == 200
            [series] = (await response.json())["series"]
        assert series["frame_count"] == len(complete)
        for index in range(series["frame_count"]):
            async with http.get(
                f"{restarted.url}/images/{series['series_uid']}/frames/{index}.png"
            ) as response:
                assert response.status == 200
                assert (await response.read()).startswith(b"\x89PNG")
        async with http.get(restarted.url + "/health") as response:
            assert (await response.json())["library"]["instances"] == len(complete)
    assert sorted(incoming.iterdir()) == [], "leftover uploads after restart"
    sops = set()
    for path in stored():
        ds = dcmread(path)
        assert (
            path.relative_to(uploads).as_posix()
            == f"{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
        )
        sops.add(ds.SOPInstanceUID)
    assert sops == {dcmread(io.BytesIO(d)).SOPInstanceUID for d in complete}


async def test_the_helper_processes_of_a_killed_server_exit(
    tmp_path: Path, run_server: StartServer
) -> None:
    """After SIGKILL, the server's fork server, validation worker and resource tracker must not
    live on: each crash would leak them (and their memory) until someone kills them by hand."""
    server = await run_server(tmp_path / "uploads")
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("files", dataset_bytes(next(phantom_datasets(1, 32))), filename="x.dcm")
        async with http.post(server.url + "/images", data=form) as response:
            assert response.status == 200  # the validation worker is running now
    helpers = server.note_helpers()
    assert len(helpers) >= 2, helpers
    server.signal(signal.SIGKILL)
    assert await server.wait_exit(WAIT) == -signal.SIGKILL
    await until(
        lambda: not any(is_alive(p) for p in helpers),
        f"the killed server's helpers exit: {[command_line(p)[:70] for p in helpers]}",
        timeout=10,
    )


# -- SIGTERM mid-stream ----------------------------------------------------------------------


async def test_sigterm_closes_sockets_and_peers_and_exits_within_5_s(
    tmp_path: Path, run_server: StartServer, loopback_only: None
) -> None:
    uploads = tmp_path / "uploads"
    fill_library(uploads)
    server = await run_server(uploads, "--ice-host", "127.0.0.1")
    async with (
        StreamClient(server.url) as viewer,
        aiohttp.ClientSession() as http,
        http.ws_connect(server.url + "/ws") as bystander,
    ):
        assert (await bystander.receive_json(timeout=WAIT))["type"] == "hello"
        await viewer.start({"playing": True, "image_delay": 0.1})
        await viewer.next_frame()
        assert viewer.pc is not None and viewer.pc.connectionState == "connected"
        # A file upload starts the validation worker: it must be shut down too.
        form = aiohttp.FormData()
        form.add_field(
            "files", dataset_bytes(next(phantom_datasets(n_slices=1, size=32))), filename="x.dcm"
        )
        async with http.post(server.url + "/images", data=form) as response:
            assert response.status == 200
        helpers = server.note_helpers()
        assert helpers, "expected the server's worker processes"

        # Read while the server shuts down, as any live client does (aiohttp answers a close
        # frame only while reading; the close frame's code is what the server sent).
        closing = asyncio.ensure_future(bystander.receive(timeout=WAIT))
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        code = await server.wait_exit(SHUTDOWN_LIMIT)
        elapsed = time.monotonic() - started
        assert code is not None, (
            f"still running {SHUTDOWN_LIMIT} s after SIGTERM:\n{server.log_tail()}"
        )
        assert code == 0, server.log_tail()

        message = await closing
        assert message.type == aiohttp.WSMsgType.CLOSE, message
        assert message.data == aiohttp.WSCloseCode.GOING_AWAY, message
        assert viewer._ws is not None
        await until(
            lambda: viewer._ws is not None and viewer._ws.closed, "the viewer's socket closes"
        )
        assert viewer._ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        # The server closed the peer connection (DTLS close); without that, the viewer would
        # notice only when ICE consent expires, some 30 s later.
        pc = viewer.pc
        await until(
            lambda: pc.connectionState in ("closed", "failed"),
            "the viewer's peer connection ends",
            timeout=SHUTDOWN_LIMIT,
        )
    await until(
        lambda: not any(is_alive(p) for p in helpers),
        f"the server's helpers exit: {[command_line(p)[:70] for p in helpers]}",
        timeout=SHUTDOWN_LIMIT,
    )
    assert elapsed < SHUTDOWN_LIMIT


# -- a validation worker dies ----------------------------------------------------------------


async def test_a_dead_validation_worker_costs_at_most_one_file(
    make_client: ClientFactory,
) -> None:
    """A decoder crashing on a hostile file (or the OOM killer) ends a worker process; the
    server must go on validating uploads, not refuse or hang on every later one."""
    client = await make_client()
    files = [dataset_bytes(ds) for ds in phantom_datasets(n_slices=4, size=32)]

    async def upload(data: bytes, name: str) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("files", data, filename=name)
        async with asyncio.timeout(UPLOAD_TIMEOUT):  # a hang fails the test, not the run
            response = await client.post("/images", data=form)
            return response.status, await response.json()

    status, body = await upload(files[0], "first.dcm")
    assert status == 200
    workers = validation_workers()
    assert workers, "expected a validation worker process"
    for pid in workers:  # ours: started by this test's server
        os.kill(pid, signal.SIGKILL)
    await until(lambda: not any(is_alive(p) for p in workers), "the workers are dead")

    outcomes = []
    for i, data in enumerate(files[1:], start=1):
        try:
            status, body = await upload(data, f"after-{i}.dcm")
        except TimeoutError:
            raise AssertionError(
                f"upload {i} after the worker died got no answer in {UPLOAD_TIMEOUT} s"
            ) from None
        assert status < 500, body
        outcomes.append(body["files"][0])
    # The first upload after the death may lose its file; the rest must be stored.
    assert [o["outcome"] for o in outcomes[1:]] == ["stored", "stored"], outcomes
    health = await client.get("/health")
    assert health.status == 200
