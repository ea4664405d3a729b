"""Debian's Orthanc, started and stopped by tests: loopback only, its own port and storage.

Tests that use it run inside the loopback-only network namespace (`make pytest`), so Orthanc
listens there too; the system service a package install may have started is never touched.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Orthanc:
    """One Orthanc process; `stop` and `start` again keep its port and its stored files."""

    def __init__(
        self, folder: Path, *, lua: str | None = None, users: dict[str, str] | None = None
    ) -> None:
        self.folder = folder
        self.port = free_port()
        storage = folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "Name": "mediastream-tests",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(users),
            "RegisteredUsers": users or {},
            "DicomServerEnabled": False,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "SaveJobs": False,
            "StableAge": 1,
        }
        if lua is not None:
            script = folder / "filter.lua"
            script.write_text(lua)
            config["LuaScripts"] = [str(script)]
        self.config_path = folder / "orthanc.json"
        self.config_path.write_text(json.dumps(config, indent=2))
        self.log_path = folder / "orthanc.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self) -> None:
        assert self._process is None, "already running"
        missing = [str(p) for p in (ORTHANC, DICOMWEB_PLUGIN) if not p.exists()]
        if missing:
            raise RuntimeError(
                f"{', '.join(missing)} not found: install Debian's packages with "
                "`apt-get install --no-install-recommends orthanc orthanc-dicomweb`"
            )
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(ORTHANC), str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start:\n{self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/system", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # it answers: 401 when authentication is on
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Orthanc did not answer /system within {START_TIMEOUT} s")
            time.sleep(0.05)  # polling for readiness, bounded by the deadline above

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections are accepted by the kernel, never
        answered, as a PACS that hangs."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """End the process at once (SIGKILL), as a PACS that crashes."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # -- a plain-HTTP view of Orthanc, independent of the code under test -------------------

    def get_json(self, path: str, accept: str = "application/dicom+json") -> Any:
        request = urllib.request.Request(self.url + path, headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body.strip() else []

    def stow(self, files: Iterable[bytes]) -> Any:
        """STOW-RS the files in one request; returns the DICOM JSON answer."""
        boundary = uuid.uuid4().hex
        parts = [
            b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n"
            for f in files
        ]
        body = b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"
        request = urllib.request.Request(
            self.dicomweb + "/studies",
            data=body,
            method="POST",
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def series_uids(self) -> list[str]:
        rows = self.get_json("/dicom-web/series")
        return sorted(row["0020000E"]["Value"][0] for row in rows)

    def instance_uids(self, series_uid: str) -> list[str]:
        rows = self.get_json(f"/dicom-web/instances?SeriesInstanceUID={series_uid}")
        return sorted(row["00080018"]["Value"][0] for row in rows)

    def instance_file(self, sop_uid: str) -> bytes:
        """The stored file, through Orthanc's REST API (not DICOMweb)."""
        matches = self._post("/tools/lookup", sop_uid.encode())
        orthanc_id = next(m["ID"] for m in matches if m["Type"] == "Instance")
        with urllib.request.urlopen(f"{self.url}/instances/{orthanc_id}/file", timeout=10) as r:
            return bytes(r.read())

    def delete_series(self, series_uid: str) -> None:
        """Delete through Orthanc's REST API, as another client of the PACS would."""
        matches = self._post("/tools/lookup", series_uid.encode())
        orthanc_id = next(m["ID"] for m in matches if m["Type"] == "Series")
        request = urllib.request.Request(f"{self.url}/series/{orthanc_id}", method="DELETE")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _post(self, path: str, data: bytes) -> Any:
        request = urllib.request.Request(self.url + path, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
