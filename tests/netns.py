"""The network rule for tests that open WebRTC: only inside a namespace where loopback is all."""

from __future__ import annotations

import socket

import pytest


def require_loopback_namespace(what: str) -> None:
    """Fail (not skip) unless the only network interface is loopback (see `make pytest`)."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        pytest.fail(
            f"{what} open WebRTC connections and must run in a private network namespace with "
            f"only loopback (found interfaces {interfaces}); run them with `make pytest`.",
            pytrace=False,
        )
