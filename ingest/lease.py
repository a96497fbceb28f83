"""One writer per index: a lease kept with the index, in the engine's meta store.

A job (an ingest, local or on Ray, or a delete) takes the lease before it touches the index or its
state folder, renews it from a background thread, and gives it back when it ends. Another job
finds it held and is refused with the holder named. A holder that died stops renewing: once
`timeout` seconds have passed since its last renewal, the next job takes the lease over (and, as
every job does first, finishes what the stopped one left open in the engine's journal:
ingest/statistics.py); on the holder's own machine (same host name, boot id and pid namespace) a
holder whose process is gone is taken over at once. Every change of the lease is a compare-and-set
(`Backend.swap_meta`): on OpenSearch and Edge two jobs racing for it cannot both win (a Qdrant
server has no conditional update: there the window is narrowed, not closed). A holder stops
before its next write when it finds its lease taken, or when no renewal reached the engine for
half the timeout. Expiry is judged on the reader's clock: keep the machines' clocks within a
small part of `timeout`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from lsrkit.core.config import DEFAULT_LEASE_SECONDS
from lsrkit.core.errors import IndexBusyError, LsrError
from lsrkit.plugin.base import Backend

LEASE_META = "lease"


class LeaseLostError(IndexBusyError):
    """The job's lease was taken over (it stopped renewing for longer than the timeout)."""


def _now_ms() -> int:
    # integers: a lease is compared as a whole (compare-and-set), and a float may not come back
    # from an engine's JSON bit for bit
    return int(time.time() * 1000)


def describe(holder: Mapping[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(holder.get("since", 0)) / 1000))
    return f"{holder.get('job', '?')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {since})"


def _machine() -> dict[str, str]:
    """What tells this process's machine and pid namespace apart (containers share a boot id)."""
    boot = Path("/proc/sys/kernel/random/boot_id")
    try:
        pids = os.readlink("/proc/self/ns/pid")
    except OSError:
        pids = ""
    return {"host": socket.gethostname(), "boot": boot.read_text().strip() if boot.is_file() else "", "pidns": pids}


def _died_here(holder: Mapping[str, Any]) -> bool:
    """The holder ran on this machine and its process is gone."""
    here = _machine()
    if not here["boot"] or not here["pidns"] or any(holder.get(k) != v for k, v in here.items()):
        return False
    try:
        os.kill(int(holder.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


class Lease:
    """The write lease of one index, held by this process for one job."""

    def __init__(self, backend: Backend, index: str, job: str, *, timeout: float = DEFAULT_LEASE_SECONDS) -> None:
        self.backend, self.index, self.job, self.timeout = backend, index, job, timeout
        self.token = uuid.uuid4().hex
        self._held: dict[str, Any] | None = None
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._swap = threading.Lock()  # the renewer and release never swap at once
        self._renewed = time.monotonic()  # the last renewal the engine acknowledged

    def acquire(self) -> Lease:
        for _ in range(20):  # a lost race re-reads: the winner is then named
            current = self.backend.get_meta(self.index, LEASE_META) or {}
            if current.get("token") and not self._expired(current) and not _died_here(current):
                raise IndexBusyError(
                    f"index {self.index!r} is being written by {describe(current)}: one job writes an index at a time "
                    f"(a holder that stopped is taken over {self.timeout:g} s after its last renewal)"
                )
            now = _now_ms()
            mine = {
                "token": self.token,
                "job": self.job,
                **_machine(),
                "pid": os.getpid(),
                "since": now,
                "renewed": now,
                "timeout_ms": int(self.timeout * 1000),
            }
            if self.backend.swap_meta(self.index, LEASE_META, current or None, mine):
                self._held, self._renewed = mine, time.monotonic()
                self._renewer = threading.Thread(target=self._renew_loop, name="lsrkit-lease", daemon=True)
                self._renewer.start()
                return self
        raise IndexBusyError(f"index {self.index!r}: could not take its write lease (other jobs keep changing it)")

    def check(self) -> None:
        """Raise LeaseLostError when another job took the lease over, or when no renewal reached
        the engine for half the timeout (before another job may take it over): called before
        each write."""
        if not self._lost and self._held is not None and time.monotonic() - self._renewed > self.timeout / 2:
            self._lost = f"index {self.index!r}: this job's write lease was not renewed for {self.timeout / 2:g} s (the engine unreachable?)"
        if self._lost:
            raise LeaseLostError(self._lost)

    def abandon(self) -> None:
        """Stop renewing without giving the lease back (a writer may still be running: the lease
        then expires on its own)."""
        self._stop.set()
        self._held = None

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
        with self._swap:
            if self._held is not None and not self._lost:
                try:
                    self.backend.swap_meta(self.index, LEASE_META, self._held, {})
                except LsrError:
                    pass  # the engine is gone: the lease expires on its own
            self._held = None

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    # -- internals -----------------------------------------------------------------------------
    @staticmethod
    def _expired(holder: Mapping[str, Any]) -> bool:
        return _now_ms() - int(holder.get("renewed", 0)) > int(holder.get("timeout_ms", DEFAULT_LEASE_SECONDS * 1000))

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.timeout / 4):
            with self._swap:
                if self._held is None or self._lost:
                    return
                renewed = {**self._held, "renewed": _now_ms()}
                try:
                    if self.backend.swap_meta(self.index, LEASE_META, self._held, renewed):
                        self._held, self._renewed = renewed, time.monotonic()
                        continue
                    current = self.backend.get_meta(self.index, LEASE_META) or {}
                    if current.get("token") == self.token:  # a renewal the engine applied but did not acknowledge
                        self._held, self._renewed = dict(current), time.monotonic()
                        continue
                    self._lost = f"index {self.index!r}: this job's write lease was taken over by {describe(current)}; it stopped before its next write"
                    return
                except LsrError:
                    continue  # check() stops the job once renewals fail for half the timeout


__all__ = ["DEFAULT_LEASE_SECONDS", "LEASE_META", "Lease", "LeaseLostError", "describe"]
