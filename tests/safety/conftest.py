"""Fixtures for the "safe by default" proofs: the web and streaming fixtures, fuzz settings.

The WebRTC tests here need the same private network namespace as tests/streaming (`make pytest`
provides it); they ask for `loopback_only` explicitly, so the HTTP-only tests also run without.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.netns import require_loopback_namespace
from tests.streaming.conftest import make_server, series_root, series_uid
from tests.web.conftest import make_client

# Fixtures re-exported from the web and streaming suites, and this folder's own.
__all__ = [
    "fuzz_settings",
    "loopback_only",
    "make_client",
    "make_server",
    "series_root",
    "series_uid",
]

# SAFETY_FUZZ_EXPLORE=<factor> runs every fuzz test with that many times more examples and a
# fresh random seed each run, to hunt for new failures; by default the examples are derived from
# the test's name, so a run is repeatable and CI never flakes on a newly drawn example.
_EXPLORE = float(os.environ.get("SAFETY_FUZZ_EXPLORE", "0") or 0)


def fuzz_settings(max_examples: int) -> settings:
    """Hypothesis settings for a fuzz test that drives a live server through fixtures.

    The server fixtures are function-scoped on purpose: one server per test lives through all of
    its examples, which is what "the server stays alive" means.
    """
    return settings(
        max_examples=round(max_examples * _EXPLORE) if _EXPLORE else max_examples,
        derandomize=not _EXPLORE,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
        print_blob=True,
    )


@pytest.fixture
def loopback_only() -> None:
    """WebRTC only inside a namespace where loopback is the only interface (see Makefile)."""
    require_loopback_namespace("These tests")
