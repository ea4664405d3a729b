"""The frame cache: LRU order, byte bound, oversize frames, per-instance discard."""

from __future__ import annotations

import numpy as np
import pytest

from mediastream.dicom.cache import FrameCache
from mediastream.dicom.display import PreparedFrame


def frame(nbytes: int) -> PreparedFrame:
    return PreparedFrame(np.zeros(nbytes - 512, dtype=np.uint8), None)  # nbytes adds 512


def test_least_recently_used_frames_are_evicted_first() -> None:
    cache = FrameCache(3000)
    for i in range(3):
        cache.put(("1.1", 0, i), frame(1000))
    assert cache.get(("1.1", 0, 0)) is not None  # now the most recent
    cache.put(("1.1", 0, 3), frame(1000))
    assert cache.get(("1.1", 0, 1)) is None
    assert all(cache.get(("1.1", 0, i)) is not None for i in (0, 2, 3))
    assert cache.bytes_used == 3000 and len(cache) == 3


def test_the_byte_bound_holds_for_mixed_sizes() -> None:
    cache = FrameCache(10_000)
    rng = np.random.default_rng(1)
    for i in range(200):
        cache.put(("1.2", 0, i), frame(int(rng.integers(600, 4000))))
        assert cache.bytes_used <= 10_000
    assert cache.bytes_used > 10_000 - 4000  # only evicts what it must


def test_a_frame_larger_than_the_cache_is_not_kept() -> None:
    cache = FrameCache(1000)
    cache.put(("1.3", 0, 0), frame(900))
    cache.put(("1.3", 0, 1), frame(5000))
    assert cache.get(("1.3", 0, 1)) is None and cache.get(("1.3", 0, 0)) is not None


def test_replacing_a_key_keeps_the_accounting_right() -> None:
    cache = FrameCache(5000)
    cache.put(("1.4", 0, 0), frame(1000))
    cache.put(("1.4", 0, 0), frame(2000))
    assert cache.bytes_used == 2000 and len(cache) == 1


def test_discard_instances_and_clear() -> None:
    cache = FrameCache(10_000)
    for sop in ("1.5.1", "1.5.2"):
        for i in range(2):
            cache.put((sop, 0, i), frame(1000))
    cache.discard_instances(["1.5.1"])
    assert len(cache) == 2 and cache.bytes_used == 2000
    assert cache.get(("1.5.1", 0, 0)) is None and cache.get(("1.5.2", 0, 1)) is not None
    cache.clear()
    assert len(cache) == 0 and cache.bytes_used == 0


def test_zero_capacity_disables_and_negative_is_an_error() -> None:
    cache = FrameCache(0)
    cache.put(("1.6", 0, 0), frame(600))
    assert len(cache) == 0
    with pytest.raises(ValueError, match="capacity_bytes must be 0 or more, got -1"):
        FrameCache(-1)
