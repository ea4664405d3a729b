"""Command-line flags, environment fallbacks and validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mediastream.settings import Settings, parse_settings

ROOT = Path(__file__).resolve().parent.parent


def test_defaults() -> None:
    settings = parse_settings([], environ={})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.uploads) == ("127.0.0.1", 8000, Path("uploads"))
    assert settings.demo and settings.cors_origins == ()
    assert settings.max_upload_bytes == 2048 * 1024 * 1024


def test_flags() -> None:
    settings = parse_settings(
        [
            "--host=0.0.0.0",
            "--token=correct-horse-battery-staple",
            "--port=9000",
            "--uploads=/tmp/x",
            "--no-demo",
            "--cors-origin=https://a.example",
            "--cors-origin=http://b.example:8080",
            "--max-upload-mb=10",
            "--cache-mb=64",
        ],
        environ={},
    )
    assert settings.host == "0.0.0.0" and settings.port == 9000
    assert settings.token == "correct-horse-battery-staple"
    assert settings.uploads == Path("/tmp/x") and not settings.demo
    assert settings.cors_origins == ("https://a.example", "http://b.example:8080")
    assert settings.max_upload_mb == 10 and settings.cache_bytes == 64 * 1024 * 1024


def test_environment_fallbacks_and_flag_precedence() -> None:
    env = {
        "MEDIASTREAM_PORT": "8123",
        "MEDIASTREAM_NO_DEMO": "1",
        "MEDIASTREAM_CORS_ORIGIN": "https://a.example, https://b.example",
        "MEDIASTREAM_CACHE_MB": "32",
    }
    settings = parse_settings([], environ=env)
    assert settings.port == 8123 and not settings.demo and settings.cache_mb == 32
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert parse_settings(["--port=9"], environ=env).port == 9


@pytest.mark.parametrize(
    "argv",
    [
        ["--port=70000"],
        ["--port=abc"],
        ["--max-upload-mb=0"],
        ["--cors-origin=a.example"],
        ["--token=short"],
        ["--tls-cert=cert.pem"],
        ["--ice-host=example.org"],
    ],
)
def test_invalid_values_exit_with_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_settings(argv, environ={})
    assert exc.value.code == 2
    assert "server.py: error:" in capsys.readouterr().err


def test_invalid_environment_value_is_reported() -> None:
    with pytest.raises(SystemExit):
        parse_settings([], environ={"MEDIASTREAM_PORT": "eighty"})


def test_server_help_runs() -> None:
    result = subprocess.run(
        [sys.executable, "server.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for flag in ("--host", "--port", "--uploads", "--no-demo", "--cors-origin", "--max-upload-mb"):
        assert flag in result.stdout


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_reachable_host_needs_a_token(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings([f"--host={host}"], environ={})
    assert "--token" in capsys.readouterr().err
    token = parse_settings([f"--host={host}"], environ={"MEDIASTREAM_TOKEN": "x" * 20})
    assert token.token == "x" * 20
    assert parse_settings([f"--host={host}", "--allow-unauthenticated"], environ={}).token is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_loopback_host_needs_no_token(host: str) -> None:
    assert parse_settings([f"--host={host}"], environ={}).host == host


@pytest.mark.parametrize(
    ("flag", "field", "from_env", "given"),
    [
        ("cors-origin", "cors_origins", "https://env.example", "https://flag.example"),
        ("ice-host", "ice_hosts", "10.0.0.1", "127.0.0.1"),
        ("ice-server", "ice_servers", "stun:env.example:3478", "stun:flag.example:3478"),
    ],
)
def test_a_repeatable_flag_replaces_its_environment_value(
    flag: str, field: str, from_env: str, given: str
) -> None:
    env = {"MEDIASTREAM_" + flag.upper().replace("-", "_"): from_env}
    assert getattr(parse_settings([], environ=env), field) == (from_env,)
    assert getattr(parse_settings([f"--{flag}", given], environ=env), field) == (given,)
    repeated = parse_settings([f"--{flag}", given, f"--{flag}", from_env], environ=env)
    assert getattr(repeated, field) == (given, from_env)


def test_dicomweb_flags_and_their_environment_variables() -> None:
    env = {
        "MEDIASTREAM_DICOMWEB": "http://127.0.0.1:8042/dicom-web",
        "MEDIASTREAM_DICOMWEB_AUTH": "alice:s3cret:with-colon",
        "MEDIASTREAM_DICOMWEB_HEADER": "X-Site: north",
        "MEDIASTREAM_DICOMWEB_ALLOW_DELETE": "1",
    }
    settings = parse_settings([], environ=env)
    config = settings.dicomweb_config()
    assert config is not None
    assert config.url == "http://127.0.0.1:8042/dicom-web"
    assert config.orthanc_root == "http://127.0.0.1:8042"
    assert config.auth == ("alice", "s3cret:with-colon")
    assert config.headers == (("X-Site", "north"),)
    assert settings.dicomweb_allow_delete
    flags = parse_settings(
        ["--dicomweb-header", "Authorization: Bearer abc", "--dicomweb-header", "X-B: 2"],
        environ=env,
    ).dicomweb_config()
    assert flags is not None
    assert flags.headers == (("Authorization", "Bearer abc"), ("X-B", "2"))
    assert parse_settings([], environ={}).dicomweb_config() is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dicomweb", "ftp://pacs/dicom-web"], "http:// or https:// URL"),
        (["--dicomweb", "http://pacs/dw", "--dicomweb-header", "no colon"], "Name: value"),
        (["--dicomweb", "http://pacs/dw", "--dicomweb-auth", "nopassword"], "USER:PASSWORD"),
        (["--dicomweb-auth", "a:b"], "need --dicomweb"),
        (["--dicomweb", "http://pacs/dw", "--dicomweb-timeout", "0"], "dicomweb_timeout"),
    ],
)
def test_bad_dicomweb_flags_are_refused_by_name(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_settings(argv, environ={})
    assert message in capsys.readouterr().err
