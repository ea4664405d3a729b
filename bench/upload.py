"""Upload benchmark: POST /images over loopback against a real server process.

Prints JSON lines:
- ``upload_throughput``: 100 DICOM files of ~512 KB (512×512 int16 CT slices) in one multipart
  request, validation and atomic storage included; MB/s over repeated runs (target >= 250).
  Measured twice: sent by ``curl`` (the figure for the target: a lean client, as a script or
  another service would use) and by aiohttp's client in this Python process, whose multipart
  encoding competes with the server for the same two cores.
- ``upload_memory``: server RSS growth while it receives a 1 GiB request (2,048 parts of the same
  file: the first is stored, the rest are validated and reported "already stored"); target <= 64 MB.
- ``multipart_parse``: the multipart parser alone (`mediastream.web.multipart.read_parts`) on the
  same 100 files, fed to an aiohttp `StreamReader` in 64 KiB pieces in this process: its share
  of the upload's cost, free of the server's other work and of the client.

Run: ``.venv/bin/python bench/upload.py [--runs N]``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp
from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.streamkit.measure import free_port, rss_bytes  # noqa: E402
from mediastream.dicom.phantom import phantom_datasets  # noqa: E402
from mediastream.web.multipart import read_parts  # noqa: E402

MB = 1_000_000


class RssSampler(threading.Thread):
    """Samples a process's resident memory every few milliseconds; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.005)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def multipart(files: list[tuple[str, bytes]]) -> aiohttp.MultipartWriter:
    writer = aiohttp.MultipartWriter("form-data")
    for name, content in files:
        part = writer.append(io.BytesIO(content), {"Content-Type": "application/dicom"})
        part.set_content_disposition("form-data", name="files", filename=name)
    return writer


async def post(http: aiohttp.ClientSession, url: str, files: list[tuple[str, bytes]]) -> dict:
    async with http.post(url + "/images", data=multipart(files)) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"upload failed: {response.status} {body}")
        return dict(body)


async def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError("server exited")
            try:
                async with http.get(url + "/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")


def throughput_line(client: str, files: int, total: int, rates: list[float]) -> str:
    return json.dumps(
        {
            "bench": "upload_throughput",
            "client": client,
            "files": files,
            "mb": round(total / MB, 1),
            "median_mb_s": round(statistics.median(rates), 1),
            "min_mb_s": round(min(rates), 1),
            "max_mb_s": round(max(rates), 1),
            "runs": len(rates),
            "target_mb_s": 250,
        }
    )


def curl_rates(url: str, folder: Path, names: list[str], runs: int) -> list[float]:
    """Upload the files with curl (as a script or another service would); MB/s per run.

    curl reads the files from disk and costs little CPU, so the figure is the server's; the
    timing is curl's own, from connecting to the last byte of the response.
    """
    total = sum((folder / name).stat().st_size for name in names)
    form = [arg for name in names for arg in ("-F", f"files=@{folder / name}")]
    rates = []
    for _ in range(runs):
        subprocess.run(
            ["curl", "-sf", "-X", "DELETE", url + "/images"], check=True, stdout=subprocess.DEVNULL
        )
        done = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "-w", "\n%{time_total}", *form, url + "/images"],
            check=True,
            capture_output=True,
            text=True,
        )
        body, _, seconds = done.stdout.rpartition("\n")
        outcomes = json.loads(body)["files"]
        if [f["outcome"] for f in outcomes] != ["stored"] * len(names):
            raise RuntimeError(f"unexpected outcomes: {_summary(outcomes)}")
        rates.append(total / MB / float(seconds))
    return rates


class _FedByHand(BaseProtocol):
    """The protocol side of a `StreamReader` that this benchmark feeds itself (no socket)."""

    @property
    def connected(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self, resume_parser: bool = True) -> None:
        pass


async def parse_rates(files: list[tuple[str, bytes]], piece: int, runs: int) -> list[float]:
    """MB/s of `read_parts` alone over a multipart body fed in `piece`-byte pieces."""
    boundary = "a5f3c9e1b2d4f6a8c0e2b4d6f8a0c2e4"  # as aiohttp's writer makes them: a uuid4
    body = bytearray()
    for name, content in files:
        body += f"--{boundary}\r\n".encode()
        body += f'Content-Disposition: form-data; name="files"; filename="{name}"\r\n'.encode()
        body += b"Content-Type: application/dicom\r\n\r\n" + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    loop = asyncio.get_running_loop()
    rates = []
    for _ in range(runs):
        reader = StreamReader(_FedByHand(loop), 2**16, loop=loop)
        for offset in range(0, len(body), piece):
            reader.feed_data(bytes(body[offset : offset + piece]))
        reader.feed_eof()
        received = 0
        begin = time.perf_counter()
        async for _, blocks in read_parts(reader, boundary):
            async for block in blocks:
                received += len(block)
        elapsed = time.perf_counter() - begin
        assert received == sum(len(content) for _, content in files)
        rates.append(len(body) / MB / elapsed)
    return rates


async def run(runs: int) -> None:
    files = [(f"slice{i:03d}.dcm", _bytes(ds)) for i, ds in enumerate(phantom_datasets(100, 512))]
    total = sum(len(c) for _, c in files)
    piece = 64 * 1024
    rates = await parse_rates(files, piece, runs)
    print(
        json.dumps(
            {
                "bench": "multipart_parse",
                "files": len(files),
                "mb": round(total / MB, 1),
                "read_kb": piece // 1024,
                "median_mb_s": round(statistics.median(rates), 1),
                "min_mb_s": round(min(rates), 1),
                "max_mb_s": round(max(rates), 1),
                "runs": len(rates),
            }
        ),
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        library, sources = Path(tmp) / "library", Path(tmp) / "files"
        sources.mkdir()
        for name, content in files:
            (sources / name).write_bytes(content)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py"), "--port", str(port), "--no-demo"]
            + ["--uploads", str(library), "--max-upload-mb", "4096"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await wait_ready(url, process)
            if shutil.which("curl"):
                names = [name for name, _ in files]
                rates = await asyncio.to_thread(curl_rates, url, sources, names, 2 * runs)
                print(throughput_line("curl", len(files), total, rates), flush=True)
            else:
                print(
                    json.dumps(
                        {
                            "bench": "upload_throughput",
                            "client": "curl",
                            "skipped": "curl not installed",
                        }
                    ),
                    flush=True,
                )
            timeout = aiohttp.ClientTimeout(total=600)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                # The same upload from Python's aiohttp client in this process: its multipart
                # encoding costs about as much CPU as the server's work, on the same cores.
                rates = []
                for _ in range(runs):
                    await http.delete(url + "/images")
                    start = time.perf_counter()
                    body = await post(http, url, files)
                    elapsed = time.perf_counter() - start
                    if [f["outcome"] for f in body["files"]] != ["stored"] * len(files):
                        raise RuntimeError(f"unexpected outcomes: {_summary(body['files'])}")
                    rates.append(total / MB / elapsed)
                print(throughput_line("aiohttp", len(files), total, rates), flush=True)

                # 1 GiB in one request: the same bytes object 2,048 times (no client copies).
                await http.delete(url + "/images")
                one = files[0][1]
                big = [(f"copy{i:04d}.dcm", one) for i in range((1 << 30) // len(one))]
                baseline = rss_bytes(process.pid)
                sampler = RssSampler(process.pid)
                sampler.start()
                start = time.perf_counter()
                body = await post(http, url, big)
                elapsed = time.perf_counter() - start
                peak = sampler.stop()
                # One copy is stored, every other is found already stored; which copy is
                # stored depends on which storage job commits first, not on the file order.
                outcomes = sorted(f["outcome"] for f in body["files"])
                if outcomes != ["already_stored"] * (len(big) - 1) + ["stored"]:
                    raise RuntimeError(f"unexpected outcomes: {_summary(body['files'])}")
                print(
                    json.dumps(
                        {
                            "bench": "upload_memory",
                            "request_mb": round(len(big) * len(one) / MB, 1),
                            "rss_growth_mb": round((peak - baseline) / MB, 1),
                            "mb_s": round(len(big) * len(one) / MB / elapsed, 1),
                            "target_rss_growth_mb": 64,
                        }
                    ),
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(timeout=10)


def _summary(outcomes: list[dict]) -> str:
    """How many files had each outcome (and reason): what a failed run reports."""
    counts = Counter(f"{o['outcome']} {o.get('reason', '')}".strip() for o in outcomes)
    return ", ".join(f"{count} x {what}" for what, count in counts.most_common())


def _bytes(ds: object) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)  # type: ignore[attr-defined]
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(run(args.runs))


if __name__ == "__main__":
    main()
