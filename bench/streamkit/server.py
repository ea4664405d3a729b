"""``server.py`` as a subprocess: start, health, memory, and where it is stuck if it hangs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
from numpy.typing import NDArray

from bench.streamkit.measure import free_port

ROOT = Path(__file__).resolve().parents[2]
Message = dict[str, Any]


class Server:
    """``server.py`` as a subprocess on a free port, with the demo series in a fresh library."""

    def __init__(self, extra_args: Sequence[str] = (), script: Path = ROOT / "server.py") -> None:
        self.script = script
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.series_uid = ""
        self.slices = 0
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-stream-")
        self._log = open(Path(self._tmp.name) / "server.log", "wb")  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None
        self.http: aiohttp.ClientSession | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def __aenter__(self) -> Server:
        uploads = Path(self._tmp.name) / "uploads"
        command = [sys.executable, str(self.script), "--port", str(self.port)]
        command += ["--uploads", str(uploads), "--ice-host", "127.0.0.1", *self.extra_args]
        # Faulthandler: `dump_stacks` can show where a hung server is stuck.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"}
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            await self._wait_ready()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _wait_ready(self) -> None:
        assert self.http is not None and self.process is not None
        async with asyncio.timeout(60):
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with self.http.get(self.url + "/images") as response:
                        if response.status == 200:
                            series = (await response.json())["series"][0]
                            self.series_uid = series["series_uid"]
                            self.slices = int(series["frame_count"])
                            return
                await asyncio.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = (Path(self._tmp.name) / "server.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self._tmp.cleanup()

    async def health(self, timeout: float = 5.0) -> Message:
        assert self.http is not None
        limit = aiohttp.ClientTimeout(total=timeout)
        async with self.http.get(self.url + "/health", timeout=limit) as response:
            return dict((await response.json())["streaming"])

    async def responsive(self) -> bool:
        try:
            await self.health()
        except (TimeoutError, aiohttp.ClientError):
            return False
        return True

    def dump_stacks(self) -> str:
        """Abort a hung server (faulthandler prints every thread's stack); the main thread's."""
        assert self.process is not None
        self.process.send_signal(signal.SIGABRT)
        self.process.wait(timeout=10)
        text = self.log_tail(400)
        start = text.find("Current thread")
        return text[start : text.find("\n\n", start)] if start >= 0 else text[-3000:]

    async def wait_idle(self, timeout: float = 15.0) -> bool:
        """Wait until the server has no streaming session; False on timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (await self.health())["sessions"]:
                    await asyncio.sleep(0.02)
                return True
        return False

    async def frame_png(self, index: int, center: float, width: float) -> NDArray[np.uint8]:
        assert self.http is not None
        url = f"{self.url}/images/{self.series_uid}/frames/{index}.png"
        async with self.http.get(url, params={"center": center, "width": width}) as response:
            response.raise_for_status()
            data = np.frombuffer(await response.read(), np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
        assert image is not None
        return np.asarray(image, np.uint8)

    async def post(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Message:
        assert self.http is not None
        async with self.http.post(self.url + path, params=params, **kw) as response:
            body = dict(await response.json())
            if response.status != 200:
                raise RuntimeError(f"POST {path}: {response.status} {body}")
            return body
