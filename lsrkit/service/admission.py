"""A bounded queue in front of the blocking work: at most `max_in_flight` calls run (in a thread
pool of that size), at most `max_queue` wait, none waits longer than the queue timeout. Past
either bound the caller is turned away at once (Overloaded), never queued without limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from lsrkit.core.errors import LsrError

T = TypeVar("T")


class Overloaded(LsrError):
    """The service is at its bound (queue full, or a request waited past the queue timeout)."""

    def __init__(self, reason: str, waited_ms: float) -> None:
        super().__init__(reason)
        self.waited_ms = waited_ms


class Admission:
    """Admits blocking calls into a thread pool, a bounded number at a time."""

    def __init__(self, max_in_flight: int, max_queue: int, queue_timeout_ms: int) -> None:
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_ms / 1000.0
        self.pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="lsrkit-serve")
        self._slots = asyncio.Semaphore(max_in_flight)
        self.waiting = 0
        self.in_flight = 0

    async def run(self, call: Callable[[], T], on_wait: Callable[[float], None] | None = None) -> T:
        """`call()` in the pool once a slot is free; Overloaded when none frees in time or too
        many already wait. `on_wait` receives the time waited (ms), admitted or not."""
        started = time.perf_counter()
        if self._slots.locked():
            if self.waiting >= self.max_queue:
                self._report(on_wait, started)
                raise Overloaded(f"{self.waiting} requests already wait for {self.max_in_flight} slots (--max-queue {self.max_queue})", 0.0)
            self.waiting += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), self.queue_timeout_s)
            except TimeoutError:
                waited = self._report(on_wait, started)
                raise Overloaded(f"no slot freed within the queue timeout ({self.queue_timeout_s * 1000:.0f} ms)", waited) from None
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        waited = self._report(on_wait, started)
        if waited > self.queue_timeout_s * 1000.0:  # the loop was late to hand over the slot: the bound holds all the same
            self._slots.release()
            raise Overloaded(f"no slot freed within the queue timeout ({self.queue_timeout_s * 1000:.0f} ms)", waited)
        self.in_flight += 1
        future = asyncio.get_running_loop().run_in_executor(self.pool, call)
        future.add_done_callback(self._release)  # when the call ends, not when its caller gives up
        return await asyncio.shield(future)

    def _release(self, _: object) -> None:
        self.in_flight -= 1
        self._slots.release()

    @staticmethod
    def _report(on_wait: Callable[[float], None] | None, started: float) -> float:
        waited = (time.perf_counter() - started) * 1000.0
        if on_wait is not None:
            on_wait(waited)
        return waited

    def close(self) -> None:
        self.pool.shutdown(wait=True)
