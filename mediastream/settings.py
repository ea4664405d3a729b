"""Server settings: command-line flags with environment-variable fallbacks.

Every flag ``--some-flag`` may also be given as ``MEDIASTREAM_SOME_FLAG`` in the environment; the
flag wins when both are present. Repeatable flags take a comma-separated list from the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ENV_PREFIX", "Settings", "build_parser", "parse_settings"]

ENV_PREFIX = "MEDIASTREAM_"
MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything `create_app` needs to know; validated on construction."""

    host: str = "127.0.0.1"
    port: int = 8000
    uploads: Path = Path("uploads")
    demo: bool = True
    cors_origins: tuple[str, ...] = ()
    max_upload_mb: int = 2048
    cache_mb: int = 512
    ingest_workers: int = 1
    result_cache_mb: int = 256
    ice_hosts: tuple[str, ...] = ()
    ice_servers: tuple[str, ...] = ()
    max_sessions: int = 16
    max_fps: float = 30.0
    video_kbps: int = 4000

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {self.port}")
        if self.max_upload_mb < 1:
            raise ValueError(f"max_upload_mb must be at least 1, got {self.max_upload_mb}")
        if self.cache_mb < 0:
            raise ValueError(f"cache_mb must be 0 or more, got {self.cache_mb}")
        if not 1 <= self.ingest_workers <= 64:
            raise ValueError(f"ingest_workers must be between 1 and 64, got {self.ingest_workers}")
        if self.result_cache_mb < 0:
            raise ValueError(f"result_cache_mb must be 0 or more, got {self.result_cache_mb}")
        if not 1 <= self.max_sessions <= 1000:
            raise ValueError(f"max_sessions must be between 1 and 1000, got {self.max_sessions}")
        if not 1 <= self.max_fps <= 120:
            raise ValueError(f"max_fps must be between 1 and 120, got {self.max_fps}")
        if not 300 <= self.video_kbps <= 50_000:
            raise ValueError(f"video_kbps must be between 300 and 50000, got {self.video_kbps}")
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

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * MiB

    @property
    def cache_bytes(self) -> int:
        return self.cache_mb * MiB

    @property
    def result_cache_bytes(self) -> int:
        return self.result_cache_mb * MiB


def _env(environ: Mapping[str, str], flag: str) -> str | None:
    return environ.get(ENV_PREFIX + flag.upper().replace("-", "_"))


def _env_bool(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"1", "true", "yes", "on"}


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The command-line parser; defaults come from `environ` where it has a value."""
    env = os.environ if environ is None else environ
    defaults = Settings()

    def default(flag: str, fallback: object) -> object:
        value = _env(env, flag)
        return fallback if value is None else value

    def env_list(flag: str) -> list[str]:
        value = _env(env, flag)
        return [item.strip() for item in value.split(",") if item.strip()] if value else []

    parser = argparse.ArgumentParser(
        prog="server.py",
        description="Stream DICOM series as live WebRTC video with interactive segmentation.",
        epilog=f"Every flag can also be set as an environment variable {ENV_PREFIX}<FLAG> "
        f"(e.g. {ENV_PREFIX}PORT=8080); repeatable flags take a comma-separated list.",
    )
    parser.add_argument(
        "--host",
        default=default("host", defaults.host),
        help="address to listen on (default %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=default("port", defaults.port),
        help="TCP port (default %(default)s)",
    )
    parser.add_argument(
        "--uploads",
        type=Path,
        default=default("uploads", defaults.uploads),
        help="folder holding the stored DICOM library (default %(default)s)",
    )
    parser.add_argument(
        "--no-demo",
        action="store_true",
        default=_env_bool(_env(env, "no-demo")),
        help="do not generate the synthetic demo series when the library is empty",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origins",
        default=None,
        metavar="ORIGIN",
        help="allow cross-origin requests from ORIGIN (repeatable); same-origin only by default",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=int,
        default=default("max-upload-mb", defaults.max_upload_mb),
        help="largest accepted upload request, in MiB (default %(default)s)",
    )
    parser.add_argument(
        "--cache-mb",
        type=int,
        default=default("cache-mb", defaults.cache_mb),
        help="memory bound for decoded frames, in MiB (default %(default)s)",
    )
    parser.add_argument(
        "--ingest-workers",
        type=int,
        default=default("ingest-workers", defaults.ingest_workers),
        help="processes validating uploaded files (default %(default)s)",
    )
    parser.add_argument(
        "--result-cache-mb",
        type=int,
        default=default("result-cache-mb", defaults.result_cache_mb),
        help="memory bound for rendered (segmented) frames, in MiB (default %(default)s)",
    )
    parser.add_argument(
        "--ice-host",
        action="append",
        dest="ice_hosts",
        default=None,
        metavar="ADDR",
        help="gather ICE host candidates on ADDR only (repeatable; 127.0.0.1 allowed); "
        "default: every interface but loopback",
    )
    parser.add_argument(
        "--ice-server",
        action="append",
        dest="ice_servers",
        default=None,
        metavar="URL",
        help="STUN/TURN server (repeatable), e.g. stun:stun.example.org:3478 or "
        "turn:user:password@turn.example.org:3478; none by default",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=default("max-sessions", defaults.max_sessions),
        help="most streams at once; more are refused (default %(default)s)",
    )
    parser.add_argument(
        "--max-fps",
        type=float,
        default=default("max-fps", defaults.max_fps),
        help="frame cap per stream (default %(default)s)",
    )
    parser.add_argument(
        "--video-kbps",
        type=int,
        default=default("video-kbps", defaults.video_kbps),
        help="highest video bitrate per stream in kbit/s (default %(default)s)",
    )
    parser.set_defaults(
        _env_cors_origins=env_list("cors-origin"),
        _env_ice_hosts=env_list("ice-host"),
        _env_ice_servers=env_list("ice-server"),
    )
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Parse command-line flags (and environment fallbacks) into `Settings`.

    Exits with status 2 and a usage message on invalid values, like any argparse program.
    """
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    try:
        return Settings(
            host=args.host,
            port=int(args.port),
            uploads=Path(args.uploads),
            demo=not args.no_demo,
            cors_origins=tuple(args.cors_origins or args._env_cors_origins),
            max_upload_mb=int(args.max_upload_mb),
            cache_mb=int(args.cache_mb),
            ingest_workers=int(args.ingest_workers),
            result_cache_mb=int(args.result_cache_mb),
            ice_hosts=tuple(args.ice_hosts or args._env_ice_hosts),
            ice_servers=tuple(args.ice_servers or args._env_ice_servers),
            max_sessions=int(args.max_sessions),
            max_fps=float(args.max_fps),
            video_kbps=int(args.video_kbps),
        )
    except ValueError as exc:
        parser.error(str(exc))
