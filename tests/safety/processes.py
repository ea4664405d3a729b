"""Processes seen through /proc: a server's descendants (its upload-validation workers) and
their peak memory.

The in-process tests host the server in the test process itself, so "the server's processes"
are this process and its descendants (the multiprocessing fork server, its validation workers,
the resource tracker).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    """Every living process below `pid`, parents before children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in sorted(children.get(todo.pop(0), [])):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def validation_workers() -> list[int]:
    """This process's upload-validation workers: the children of its multiprocessing fork
    server (a per-process singleton, so only workers of live pools)."""

    # A forked worker inherits the fork server's command line: it is the one whose parent
    # has that command line too.
    def forked(pid: int | None) -> bool:
        return pid is not None and "multiprocessing.forkserver" in command_line(pid)

    return [pid for pid in descendants(os.getpid()) if forked(pid) and forked(_parent_of(pid))]


def _status_kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class PeakMemory:
    """Peak resident memory of this process and its descendants since `reset` (Linux only).

    Writing 5 to /proc/PID/clear_refs resets the process's high-water mark (VmHWM) to its
    current resident size, so `growth` is how far each process climbed above its resident size
    at `reset`. Where the reset is not permitted, growth counts from the earlier peak (a weaker
    measure, never a false alarm). Processes started after `reset` count from zero.
    """

    baseline: dict[int, int]

    @classmethod
    def reset(cls) -> PeakMemory:
        baseline: dict[int, int] = {}
        for pid in [os.getpid(), *descendants(os.getpid())]:
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                pass
            hwm = _status_kib(pid, "VmHWM")
            if hwm is not None:
                baseline[pid] = hwm
        return cls(baseline)

    def growth(self) -> dict[int, int]:
        """Bytes each process peaked above its baseline."""
        peaks: dict[int, int] = {}
        for pid in [os.getpid(), *descendants(os.getpid())]:
            hwm = _status_kib(pid, "VmHWM")
            if hwm is not None:
                peaks[pid] = (hwm - self.baseline.get(pid, 0)) * 1024
        return peaks

    def largest_growth(self) -> int:
        return max(self.growth().values(), default=0)
