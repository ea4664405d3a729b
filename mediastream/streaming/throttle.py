"""Per-session update rate limit: a token bucket, and merging of updates that exceed it.

A client dragging a slider may send updates faster than anyone can see them. Up to `rate`
updates per second (in bursts of up to `rate`) are applied at once; the excess is merged into
one pending update — later values win, ``params`` merge — that is applied as soon as the bucket
allows. Rendering is latest-wins anyway; this bounds the validation and reply traffic a single
client can cause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["TokenBucket", "merge_updates"]


class TokenBucket:
    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self._clock = clock
        self._tokens = rate
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> bool:
        """Take a token if one is available."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until a token is available."""
        self._refill()
        return max(0.0, (1 - self._tokens) / self.rate)


def merge_updates(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """One update with the effect of `earlier` followed by `later`."""
    merged = {**earlier, **later}
    if "params" in earlier and "params" in later and "algorithm" not in later:
        first, second = earlier["params"], later["params"]
        if isinstance(first, Mapping) and isinstance(second, Mapping):
            merged["params"] = {**first, **second}
    return merged
