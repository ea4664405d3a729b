"""The player: decides which picture a session's track shows next, and when.

* A client change (`show`) re-renders the current slice at once — it never waits for the play
  clock. For evolving algorithms (snakes) a preview of the new starting contour goes out first,
  then the contour as it converges, then the final result.
* The play clock advances one slice per ``image_delay`` (drift-free); at 0 it advances as soon as
  the track has sent the previous slice, with the next slice rendered ahead in a worker.
* Latest wins: rendering runs in worker threads and a result that a newer change has superseded
  is dropped; an evolution is abandoned between chunks.
* While nothing changes, the last picture is sent again now and then, so the video encoder can
  refine a still image (and a late decoder catches up).
* When the library cannot be reached (a PACS that is down), the client is told once
  (``library_unavailable``), the last picture stays, and the same slice is tried again every
  `RETRY_SECONDS` until it renders: the stream resumes by itself, where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from mediastream.dicom.errors import LibraryError, LibraryUnavailable
from mediastream.streaming.render import RenderedFrame, Renderer
from mediastream.streaming.state import StreamState
from mediastream.streaming.track import FrameSlot, Picture

__all__ = ["RETRY_SECONDS", "Player", "RefreshPolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")

ErrorSink = Callable[[str, str, "int | None"], None]
RETRY_SECONDS = 1.0  # how often a slice the library could not supply is tried again


class RefreshPolicy:
    """How often a still picture is sent again: often right after it changed, rarely later."""

    def __init__(self, fast: float = 0.1, fast_for: float = 2.0, slow: float = 1.0) -> None:
        self.fast, self.fast_for, self.slow = fast, fast_for, slow

    def next_after(self, now: float, changed_at: float) -> float:
        return now + (self.fast if now - changed_at < self.fast_for else self.slow)


class Player:
    def __init__(
        self,
        *,
        renderer: Renderer,
        executor: Executor,
        slot: FrameSlot,
        state: StreamState,
        on_error: ErrorSink,
        refresh: RefreshPolicy | None = None,
    ) -> None:
        self._renderer = renderer
        self._executor = executor
        self._slot = slot
        self._state = state
        self._seq: int | None = None
        self._generation = 0
        self._live = True  # the next render answers a client change
        self._wake = asyncio.Event()
        self._on_error = on_error
        self._refresh = refresh or RefreshPolicy()
        self._last: Picture | None = None
        self._changed_at = 0.0
        self._prefetch: tuple[Any, asyncio.Future[RenderedFrame]] | None = None
        self._reported: set[tuple[str, int, str, str]] = set()  # errors the client was told
        self._outage = False  # the library was unreachable at the last render
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def seq(self) -> int | None:
        return self._seq

    def show(self, state: StreamState, seq: int | None) -> None:
        """Switch to `state` (an accepted client update) and re-render the current slice now."""
        self._state, self._seq = state, seq
        self._generation += 1
        self._live = True
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="player")

    async def stop(self) -> None:
        """Stop producing pictures; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._prefetch is not None:
            self._prefetch[1].cancel()
            self._prefetch = None

    # -- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        tick: float | None = None  # when the play clock next advances
        clock: tuple[bool, float] | None = None  # (playing, image_delay) the tick was set for
        while not self._slot.closed:  # the track ended (e.g. the peer left): nothing to show
            self._wake.clear()
            self.follow_series()
            generation, state, seq, live = self._generation, self._state, self._seq, self._live
            self._live = False
            available = await self._render(state, seq, generation, live)
            if generation != self._generation:
                continue  # superseded while rendering: show the newer state at once
            if not available:  # keep the last picture; try this slice again (or a change)
                await self._idle(loop.time() + RETRY_SECONDS)
                continue

            if (state.playing, state.image_delay) != clock:
                clock = (state.playing, state.image_delay)
                tick = loop.time() + state.image_delay if state.playing else None
            if state.playing:
                self._start_prefetch(self._renderer.next_state(state, self._shown()))

            advance = await self._idle(tick)
            if advance and tick is not None:
                # Drift-free clock; after falling behind, start again from now.
                tick = max(tick + state.image_delay, loop.time())
                # Never skip a slice the viewer has not been sent — but a client change does not
                # wait for it: it is rendered at once and replaces the unsent picture.
                if await self._until_taken(generation):
                    self._state = self._renderer.next_state(self._state, self._shown())

    def _shown(self) -> RenderedFrame | None:
        """The last picture put out (tracking follows its region)."""
        return None if self._last is None else self._last.frame

    def follow_series(self) -> None:
        """Take in a change of the series' length: instances may arrive while it streams."""
        try:
            count = self._renderer.frame_count(self._state.series)
        except LibraryError:
            return  # deleted: the session is being closed
        if count != self._state.frame_count:
            self._state = self._state.resized(count)

    async def _idle(self, tick: float | None) -> bool:
        """Wait for a change (False) or the play clock (True); refresh the picture meanwhile."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if tick is not None and now >= tick:
                return True
            refresh_at = self._refresh.next_after(now, self._changed_at)
            deadline = refresh_at if tick is None else min(tick, refresh_at)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, deadline - now))
                return False
            except TimeoutError:
                pass
            if (tick is None or loop.time() < tick) and self._last is not None:
                self._slot.put(self._last)

    async def _render(
        self, state: StreamState, seq: int | None, generation: int, live: bool
    ) -> bool:
        """Render `state` and show it; False when the library could not be reached."""
        try:
            if live and self._renderer.evolves(state):
                await self._evolve(state, seq, generation)
            else:
                frame = await self._final(state)
                if generation == self._generation:
                    self._put(frame, seq)
            self._outage = False  # back: a later outage is news again
        except LibraryUnavailable as exc:
            if live or not self._outage:  # once per outage (and in answer to a change)
                self._on_error(exc.code, str(exc), seq)
            self._outage = True
            return False
        except LibraryError as exc:  # e.g. a compressed frame that does not decode
            self._report(state, exc.code, str(exc), seq, live)
        except ValueError as exc:  # parameters that do not fit this image (centre outside…)
            self._report(state, "invalid_params", str(exc), seq, live)
        except Exception:  # a bug must not kill the stream silently
            if self._report(
                state, "render_failed", "The server failed to render this slice.", seq, live
            ):
                log.exception("rendering slice %d failed", state.index)
        return True

    def _report(
        self, state: StreamState, code: str, detail: str, seq: int | None, live: bool
    ) -> bool:
        """Tell the client a slice cannot be shown: once per slice and error while it plays
        (a looping series would repeat it every pass), and always in answer to a change."""
        key = (state.series, state.index, code, detail)
        if not live and key in self._reported:
            return False
        self._reported.add(key)
        self._on_error(code, detail, seq)
        return True

    async def _evolve(self, state: StreamState, seq: int | None, generation: int) -> None:
        preview = await self._worker(self._renderer.preview, state)
        if generation != self._generation:
            return
        self._put(preview, seq)
        chunks = self._renderer.evolution(state)
        while generation == self._generation:
            # The next step is computed while the previous picture waits for its frame slot;
            # then each step is shown: the contour moves at the frame cap.
            frame = await self._worker(next, chunks, None)
            if frame is None or not await self._until_taken(generation):
                return
            self._put(frame, seq)

    async def _until_taken(self, generation: int) -> bool:
        """Wait until the track took the last picture; False if a newer state came first."""
        if generation != self._generation:
            return False
        taken = asyncio.ensure_future(self._slot.wait_taken())
        changed = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({taken, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            taken.cancel()
            changed.cancel()
        return generation == self._generation

    async def _final(self, state: StreamState) -> RenderedFrame:
        hit = self._renderer.cached(state)
        if hit is not None:
            return hit
        if self._prefetch is not None and self._prefetch[0] == self._renderer.key(state):
            future = self._prefetch[1]
            self._prefetch = None
            return await future
        return await self._worker(self._renderer.final, state)

    def _start_prefetch(self, state: StreamState) -> None:
        try:
            key = self._renderer.key(state)
        except LibraryError:
            return  # the series changed meanwhile; the next render reports it
        if (self._prefetch is not None and self._prefetch[0] == key) or self._renderer.cached(
            state
        ):
            return
        if self._prefetch is not None:
            self._prefetch[1].cancel()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._renderer.final, state)
        # A prefetch nobody awaits must not log "exception was never retrieved".
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._prefetch = (key, future)

    def _put(self, frame: RenderedFrame, seq: int | None) -> None:
        picture = Picture(frame, seq)
        self._slot.put(picture)
        self._last = picture
        self._changed_at = asyncio.get_running_loop().time()

    async def _worker(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
