"""Server settings: command-line flags with environment-variable fallbacks.

Every flag ``--some-flag`` may also be given as ``MEDIASTREAM_SOME_FLAG`` in the environment; the
flag wins when both are present. Repeatable flags take a comma-separated list from the environment.
The flags are generated from the fields of `Settings`, so a new setting is one field.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mediastream.dicom.dicomweb import DicomwebConfig, parse_header

__all__ = ["ENV_PREFIX", "Settings", "build_parser", "is_loopback", "parse_settings"]

ENV_PREFIX = "MEDIASTREAM_"
MiB = 1024 * 1024


def _flag(default: Any, help: str, *, flag: str | None = None, metavar: str | None = None) -> Any:
    """A settings field with its command-line help (`flag` overrides the derived name)."""
    return dataclasses.field(
        default=default, metadata={"help": help, "flag": flag, "metavar": metavar}
    )


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything `create_app` needs to know; validated on construction."""

    host: str = _flag("127.0.0.1", "address to listen on")
    port: int = _flag(8000, "TCP port")
    uploads: Path = _flag(Path("uploads"), "folder holding the stored DICOM library")
    demo: bool = _flag(
        True, "do not generate the synthetic demo series into an empty library", flag="--no-demo"
    )
    cors_origins: tuple[str, ...] = _flag(
        (),
        "allow cross-origin requests from ORIGIN (repeatable); same-origin only by default",
        flag="--cors-origin",
        metavar="ORIGIN",
    )
    token: str | None = _flag(
        None,
        "require 'Authorization: Bearer TOKEN' on every API request (the page and /health stay "
        "public); required when --host is not a loopback address",
    )
    allow_unauthenticated: bool = _flag(
        False, "serve a non-loopback --host without a token (logs a warning)"
    )
    tls_cert: Path | None = _flag(None, "serve HTTPS/WSS with this certificate (PEM)")
    tls_key: Path | None = _flag(None, "private key (PEM) for --tls-cert")
    max_upload_mb: int = _flag(2048, "largest upload request, in MiB")
    max_file_mb: int = _flag(1024, "largest single uploaded file, in MiB")
    max_frame_pixels: int = _flag(
        8192 * 8192, "largest frame (rows × columns) accepted, checked before decoding"
    )
    max_frames: int = _flag(50_000, "most frames in one uploaded file, checked before decoding")
    fsync: bool = _flag(
        False,
        "flush each uploaded file to disk before it is listed: survives a power cut, "
        "costs upload speed",
    )
    cache_mb: int = _flag(512, "memory bound for decoded frames, in MiB")
    ingest_workers: int = _flag(1, "processes validating uploaded files")
    result_cache_mb: int = _flag(256, "memory bound for rendered (segmented) frames, in MiB")
    ice_hosts: tuple[str, ...] = _flag(
        (),
        "gather ICE host candidates on ADDR only (repeatable; 127.0.0.1 allowed); "
        "default: every interface but loopback",
        flag="--ice-host",
        metavar="ADDR",
    )
    ice_servers: tuple[str, ...] = _flag(
        (),
        "STUN/TURN server (repeatable), e.g. stun:stun.example.org:3478 or "
        "turn:user:password@turn.example.org:3478; none by default",
        flag="--ice-server",
        metavar="URL",
    )
    max_sessions: int = _flag(16, "most streams at once; more are refused")
    max_viewers: int = _flag(
        32, "most viewers of one shared stream (they do not count against --max-sessions)"
    )
    max_fps: float = _flag(30.0, "frame cap per stream")
    video_kbps: int = _flag(4000, "highest video bitrate per stream, in kbit/s")
    max_message_kb: int = _flag(256, "largest WebSocket or data-channel message, in KiB")
    max_updates_per_second: int = _flag(
        60, "stream updates applied per second per session; the excess is merged, latest wins"
    )
    dicomweb: str | None = _flag(
        None,
        "use this DICOMweb service as the library instead of the --uploads folder (which then "
        "holds the local cache), e.g. http://127.0.0.1:8042/dicom-web",
        metavar="URL",
    )
    dicomweb_auth: str | None = _flag(
        None, "HTTP basic auth for --dicomweb", metavar="USER:PASSWORD"
    )
    dicomweb_headers: tuple[str, ...] = _flag(
        (),
        'send this header with every --dicomweb request (repeatable), e.g. "Authorization: '
        'Bearer …"',
        flag="--dicomweb-header",
        metavar='"NAME: VALUE"',
    )
    dicomweb_timeout: float = _flag(
        10.0,
        "seconds any one --dicomweb request may take before the PACS counts as unavailable",
        metavar="SECONDS",
    )
    dicomweb_allow_delete: bool = _flag(
        False,
        "let DELETE /images/{uid} delete the series from the PACS (Orthanc's REST API); "
        "refused with 405 otherwise",
    )

    def __post_init__(self) -> None:
        _check_range("port", self.port, 0, 65535)
        for name in ("max_upload_mb", "max_file_mb", "max_frame_pixels", "max_frames"):
            _check_range(name, getattr(self, name), 1, 1 << 40)
        for name in ("cache_mb", "result_cache_mb"):
            _check_range(name, getattr(self, name), 0, 1 << 20)
        _check_range("ingest_workers", self.ingest_workers, 1, 64)
        _check_range("max_sessions", self.max_sessions, 1, 1000)
        _check_range("max_viewers", self.max_viewers, 1, 1000)
        _check_range("max_fps", self.max_fps, 1, 120)
        _check_range("video_kbps", self.video_kbps, 300, 50_000)
        _check_range("max_message_kb", self.max_message_kb, 1, 16 * 1024)
        _check_range("max_updates_per_second", self.max_updates_per_second, 1, 10_000)
        for address in self.ice_hosts:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"ice host must be an IP address, got {address!r}") from None
        for url in self.ice_servers:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"ice server must be a stun:, turn: or turns: URL, got {url!r}")
        for origin in self.cors_origins:
            if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
                raise ValueError(
                    f"cors origin must look like 'https://host[:port]' with no path, got {origin!r}"
                )
        _check_range("dicomweb_timeout", self.dicomweb_timeout, 0.1, 600)
        self.dicomweb_config()  # raises ValueError naming the bad --dicomweb* value
        if self.dicomweb is None and (self.dicomweb_auth or self.dicomweb_headers):
            raise ValueError("--dicomweb-auth and --dicomweb-header need --dicomweb")
        if self.token is not None and len(self.token) < 16:
            raise ValueError("token must be at least 16 characters long")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give --tls-cert and --tls-key together")
        if not is_loopback(self.host) and self.token is None and not self.allow_unauthenticated:
            raise ValueError(
                f"--host {self.host} is reachable from other machines, and medical images must "
                "not be readable by anyone who can reach it: give --token (or "
                f"{ENV_PREFIX}TOKEN), or --allow-unauthenticated to accept that risk"
            )

    def dicomweb_config(self) -> DicomwebConfig | None:
        """The PACS to use as the library; None for the folder."""
        if self.dicomweb is None:
            return None
        auth = None
        if self.dicomweb_auth is not None:
            user, sep, password = self.dicomweb_auth.partition(":")
            if not sep or not user:
                raise ValueError("dicomweb auth must look like USER:PASSWORD")
            auth = (user, password)
        headers = tuple(parse_header(line) for line in self.dicomweb_headers)
        return DicomwebConfig(
            self.dicomweb, auth=auth, headers=headers, timeout=self.dicomweb_timeout
        )

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * MiB

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * MiB

    @property
    def cache_bytes(self) -> int:
        return self.cache_mb * MiB

    @property
    def result_cache_bytes(self) -> int:
        return self.result_cache_mb * MiB

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_kb * 1024


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value:g}")


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


class _Repeatable(argparse.Action):
    """argparse's "append", except that the first use replaces the default.

    The default of a repeatable flag comes from the environment, and the flag wins: with
    "append", ``MEDIASTREAM_CORS_ORIGIN=a --cors-origin b`` would allow both a and b.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        current = getattr(namespace, self.dest, None)
        if current is None or current is self.default:
            current = []
        setattr(namespace, self.dest, [*current, values])


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser, one flag per `Settings` field; defaults read from `environ`."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="server.py",
        description="Stream DICOM series as live WebRTC video with interactive segmentation.",
        epilog=f"Every flag can also be set as an environment variable {ENV_PREFIX}<FLAG> "
        f"(e.g. {ENV_PREFIX}PORT=8080); repeatable flags take a comma-separated list.",
    )
    for field in dataclasses.fields(Settings):
        flag = field.metadata["flag"] or "--" + field.name.replace("_", "-")
        raw = env.get(_env_name(flag))
        kind = field.type if isinstance(field.type, str) else str(field.type)
        options: dict[str, Any] = {"dest": field.name, "help": field.metadata["help"]}
        if field.metadata["metavar"]:
            options["metavar"] = field.metadata["metavar"]
        if kind == "bool":
            inverted = flag.startswith("--no-")
            from_env = _env_bool(raw) if raw is not None else False
            options["action"] = "store_false" if inverted else "store_true"
            options["default"] = (not from_env) if inverted else (from_env or field.default)
        elif kind.startswith("tuple"):
            options["action"] = _Repeatable
            items = [item.strip() for item in raw.split(",") if item.strip()] if raw else []
            options["default"] = items or None
        else:
            convert = {"int": int, "float": float}.get(kind.split(" ")[0], str)
            if "Path" in kind:
                convert = Path
            options["type"] = convert
            options["default"] = raw if raw is not None else field.default
            if field.default is not None:
                options["help"] += " (default %(default)s)"
        parser.add_argument(flag, **options)
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Parse command-line flags (and environment fallbacks) into `Settings`.

    Exits with status 2 and a usage message on invalid values, like any argparse program.
    """
    parser = build_parser(environ)
    args: dict[str, Any] = vars(parser.parse_args(argv))
    values: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in args.items()
        if value is not None
    }
    try:
        return Settings(**values)
    except ValueError as exc:
        parser.error(str(exc))
