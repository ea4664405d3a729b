"""The library's on-disk index: a JSON-lines journal of stored instances.

Start-up reads the journal and trusts an entry only while its file still has the recorded size
and modification time; every other file is re-read from its header. So a missing, stale or
half-written journal costs a rescan, never a wrong listing. Ingest appends one line (no fsync:
a line lost in a crash just means that file is re-read at the next start); `rewrite` compacts
the journal atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from mediastream.dicom.series import InstanceRecord

__all__ = ["INDEX_NAME", "IndexJournal"]

INDEX_NAME = ".index.jsonl"
_VERSION = 1

log = logging.getLogger(__name__)


class IndexJournal:
    """Append-only index of `InstanceRecord`s at `path`; callers serialise writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0  # lines in the file (as of the last read, rewrite or append)
        self._lock = threading.Lock()

    def read(self) -> dict[str, InstanceRecord]:
        """Records by relative path, the last line for a path winning; bad lines are skipped."""
        records: dict[str, InstanceRecord] = {}
        self.lines = 0
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return records
        except OSError as exc:
            log.warning("cannot read index %s (%s); rescanning", self.path, exc)
            return records
        bad = 0
        lines = text.splitlines()
        self.lines = len(lines)
        for line in lines:
            try:
                entry = json.loads(line)
                if entry.pop("v") != _VERSION:
                    raise ValueError("index version")
                record = InstanceRecord.from_json(entry)
            except (ValueError, KeyError, TypeError, AttributeError):
                bad += 1
                continue
            records[record.path] = record
        if bad:
            log.info("index %s: ignored %d unreadable lines", self.path, bad)
        return records

    def append(self, record: InstanceRecord) -> None:
        """Add one line. The file is opened per call: no handle outlives the call."""
        line = _line(record)
        with self._lock:
            try:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line)
                self.lines += 1
            except OSError as exc:  # the files are the truth; the index only saves a rescan
                log.warning("cannot append to index %s: %s", self.path, exc)

    def rewrite(self, records: Iterable[InstanceRecord]) -> None:
        """Replace the journal with exactly `records`, atomically."""
        temp = self.path.with_name(self.path.name + ".tmp")
        with self._lock:
            try:
                count = 0
                with temp.open("w", encoding="utf-8") as f:
                    for record in records:
                        f.write(_line(record))
                        count += 1
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temp, self.path)
                self.lines = count
            except OSError as exc:
                log.warning("cannot rewrite index %s: %s", self.path, exc)
                temp.unlink(missing_ok=True)


def _line(record: InstanceRecord) -> str:
    return json.dumps({"v": _VERSION, **record.to_json()}, separators=(",", ":")) + "\n"
