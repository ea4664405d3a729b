"""Natural batching of calls to an executor.

Every job handed to a thread or process pool costs hand-offs between threads (and a pipe round
trip for processes), each of which must win the GIL back from the event loop. When many small
jobs arrive at once — an upload of a hundred files — those hand-offs cost more than the work.
A `Batcher` keeps at most `slots` batches in flight; calls that arrive meanwhile wait and go out
together as the next batch. A lone call still goes out at once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor
from typing import Any, TypeVar

__all__ = ["Batcher", "run_calls"]

T = TypeVar("T")
Call = tuple[Callable[..., Any], tuple[Any, ...]]


def run_calls(calls: list[Call]) -> list[tuple[bool, Any]]:
    """Run a batch of calls; each outcome is (True, result) or (False, exception).

    Module-level and importing nothing heavy, so process pools can run it cheaply.
    """
    outcomes: list[tuple[bool, Any]] = []
    for func, args in calls:
        try:
            outcomes.append((True, func(*args)))
        except Exception as exc:  # handed back to the caller's await
            outcomes.append((False, exc))
    return outcomes


class Batcher:
    """Batched calls to `executor`; a broken executor (a worker process died) fails the batch
    it was running and, given `restart`, is replaced by a fresh one for the next calls."""

    def __init__(
        self,
        executor: Executor,
        slots: int = 1,
        *,
        restart: Callable[[], Executor] | None = None,
    ) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.executor = executor
        self._restart = restart
        self._slots = slots
        self._pending: list[tuple[Call, asyncio.Future[Any]]] = []

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` in the executor, batched with other calls; return its result."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(((func, args), future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._pending and self._slots > 0:
            batch, self._pending = self._pending, []
            self._slots -= 1
            calls = [call for call, _ in batch]
            loop = asyncio.get_running_loop()
            try:
                try:
                    job = loop.run_in_executor(self.executor, run_calls, calls)
                except BrokenExecutor:
                    if self._restart is None:
                        raise
                    self._replace()
                    job = loop.run_in_executor(self.executor, run_calls, calls)
            except Exception as exc:  # e.g. shut down: this batch fails, later ones may not
                self._slots += 1
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            job.add_done_callback(functools.partial(self._finished, batch=batch))

    def _replace(self) -> None:
        assert self._restart is not None
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._restart()

    def _finished(
        self, done: asyncio.Future[list[tuple[bool, Any]]], *, batch: list[tuple[Call, Any]]
    ) -> None:
        self._slots += 1
        failure = None if done.cancelled() else done.exception()
        if isinstance(failure, BrokenExecutor) and self._restart is not None:
            self._replace()
        for index, (_, future) in enumerate(batch):
            if future.done():  # its caller was cancelled
                continue
            if done.cancelled():
                future.cancel()
            elif failure is not None:  # the executor itself failed (e.g. a worker died)
                future.set_exception(failure)
            else:
                ok, value = done.result()[index]
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        self._dispatch()
