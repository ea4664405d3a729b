"""The real server as a child process (`python server.py …`), for signal and crash tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp

from mediastream.app import STATIC_DIR
from tests.safety.processes import command_line, descendants, is_alive

REPO = STATIC_DIR.parent
START_TIMEOUT = 60.0  # imports (OpenCV, aiortc) and the library scan; usually ~2 s


@dataclass
class ServerProcess:
    uploads: Path
    port: int
    log_path: Path
    flags: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    helpers: list[int] = field(default_factory=list)  # its child processes, as last seen
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self._log = self.log_path.open("ab")
        command = [sys.executable, str(REPO / "server.py"), "--port", str(self.port)]
        command += ["--uploads", str(self.uploads), "--no-demo", *self.flags]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=self._log, stderr=self._log)
        await self.wait_healthy()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    async def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"the server exited on start:\n{self.log_tail()}")
                try:
                    async with http.get(self.url + "/health") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"no /health within {START_TIMEOUT} s:\n{self.log_tail()}")
                await asyncio.sleep(0.05)  # polling a condition, with the deadline above

    def note_helpers(self) -> list[int]:
        """Remember the server's child processes (fork server, validation workers, tracker)."""
        self.helpers = descendants(self.pid)
        return self.helpers

    def signal(self, signum: signal.Signals) -> None:
        os.kill(self.pid, signum)

    async def wait_exit(self, timeout: float) -> int | None:
        """The exit status once the process has ended, or None if it still runs after `timeout`."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while (code := self.process.poll()) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # polling a condition, with the deadline above
        return code

    def stop(self) -> None:
        """Whatever state it is in: end the server and its helpers (ours, killed by pid)."""
        if self.process is not None and self.process.poll() is None:
            self.helpers = sorted({*self.helpers, *descendants(self.pid)})
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in self.helpers:
            # only if it still is that helper (a pid may be reused once its process ended)
            if is_alive(pid) and "multiprocessing" in command_line(pid):
                os.kill(pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
