"""The two commands of the quick start: `make test` brings the system packages, `make run` none."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def make(*args: str, user: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(user or []), "make", "-s", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MAKEFLAGS": ""},
    )


def test_make_test_installs_the_system_packages_first() -> None:
    plan = make("-n", "test").stdout
    assert plan.index("dpkg-query") < plan.index("ruff check")  # deps before anything else


def test_without_root_deps_names_the_missing_packages_and_the_command() -> None:
    # As root, drop to nobody for this one command; otherwise the test runs as it is.
    user = NOBODY if os.geteuid() == 0 else None
    result = make("deps", "SYSTEM_PACKAGES=make no-such-package-here", user=user)
    assert result.returncode != 0
    assert (
        "make test needs these Debian packages: no-such-package-here - install them with "
        "'sudo apt-get install no-such-package-here' and run make test again." in result.stderr
    )


def test_deps_with_everything_installed_does_nothing() -> None:
    result = make("deps", "SYSTEM_PACKAGES=make")  # installed: this test runs under make
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_make_run_needs_no_system_package() -> None:
    plan = make("-n", "run").stdout
    assert "dpkg-query" not in plan and "apt-get" not in plan
    assert "server.py" in plan
