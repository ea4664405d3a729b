"""A thread-safe LRU cache of prepared frames, bounded by bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from mediastream.dicom.display import PreparedFrame

__all__ = ["FailureMemo", "FrameCache", "FrameKey"]

# (SOP Instance UID, when the instance was stored, frame within the instance): the stored time
# keeps a frame decoded from a since-deleted file from answering for a re-uploaded one.
FrameKey = tuple[str, int, int]


class FrameCache:
    """Least-recently-used prepared frames whose `nbytes` sum stays within `capacity_bytes`.

    A capacity of 0 disables caching; a frame larger than the capacity is not kept.
    """

    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes < 0:
            raise ValueError(f"capacity_bytes must be 0 or more, got {capacity_bytes}")
        self.capacity_bytes = capacity_bytes
        self._entries: OrderedDict[FrameKey, PreparedFrame] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: FrameKey) -> PreparedFrame | None:
        with self._lock:
            frame = self._entries.get(key)
            if frame is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return frame

    def put(self, key: FrameKey, frame: PreparedFrame) -> None:
        size = frame.nbytes
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            if size > self.capacity_bytes:
                return
            self._entries[key] = frame
            self._bytes += size
            while self._bytes > self.capacity_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes

    def discard_instances(self, sop_instance_uids: Iterable[str]) -> None:
        """Drop every cached frame of these instances."""
        gone = set(sop_instance_uids)
        with self._lock:
            for key in [k for k in self._entries if k[0] in gone]:
                self._bytes -= self._entries.pop(key).nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class FailureMemo:
    """Why frames failed to decode, so a failing frame is decoded (and logged) once.

    A frame that cannot be decoded now cannot be decoded later either: its file is immutable
    under its key. Bounded to the `capacity` most recent failures.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._reasons: OrderedDict[FrameKey, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: FrameKey) -> str | None:
        with self._lock:
            return self._reasons.get(key)

    def put(self, key: FrameKey, reason: str) -> bool:
        """Remember a failure; False if it was known already (another thread decoded the same
        frame at the same time), so only the first one is logged."""
        with self._lock:
            known = key in self._reasons
            self._reasons[key] = reason
            while len(self._reasons) > self.capacity:
                self._reasons.popitem(last=False)
            return not known

    def discard_instances(self, sop_instance_uids: Iterable[str]) -> None:
        gone = set(sop_instance_uids)
        with self._lock:
            for key in [k for k in self._reasons if k[0] in gone]:
                del self._reasons[key]
