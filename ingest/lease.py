"""One writer per index: a lease kept with the index, in the engine's meta store.

A job (an ingest, local or on Ray, or a delete) takes the lease before it touches the index or its
state folder, renews it from a background thread, and gives it back when it ends. Another job
finds it held and is refused with the holder named. A holder that died stops renewing: once
`timeout` seconds have passed since its last renewal, the next job takes the lease over (and
finishes the stopped job's journal, as a resumed job does); on the holder's own machine (same host
name and boot id) a holder whose process is gone is taken over at once. Every change of the lease is a
compare-and-set (`Backend.swap_meta`), so two jobs racing for it cannot both win; a holder that
finds its lease taken stops before its next write. Expiry is judged on the reader's clock: keep
the machines' clocks within a small part of `timeout`.
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

from lsrkit.core.errors import IndexBusyError, LsrError
from lsrkit.plugin.base import Backend

LEASE_META = "lease"
DEFAULT_LEASE_SECONDS = 60.0


class LeaseLostError(IndexBusyError):
    """The job's lease was taken over (it stopped renewing for longer than the timeout)."""


def describe(holder: Mapping[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(holder.get("since", 0))))
    return f"{holder.get('job', '?')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {since})"


def _machine() -> dict[str, str]:
    boot = Path("/proc/sys/kernel/random/boot_id")
    return {"host": socket.gethostname(), "boot": boot.read_text().strip() if boot.is_file() else ""}


def _died_here(holder: Mapping[str, Any]) -> bool:
    """The holder ran on this machine and its process is gone."""
    here = _machine()
    if not here["boot"] or holder.get("host") != here["host"] or holder.get("boot") != here["boot"]:
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

    def acquire(self) -> Lease:
        for _ in range(20):  # a lost race re-reads: the winner is then named
            current = self.backend.get_meta(self.index, LEASE_META) or {}
            if current.get("token") and not self._expired(current) and not _died_here(current):
                raise IndexBusyError(
                    f"index {self.index!r} is being written by {describe(current)}: one job writes an index at a time "
                    f"(a holder that stopped is taken over {self.timeout:g} s after its last renewal)"
                )
            now = time.time()
            mine = {
                "token": self.token,
                "job": self.job,
                **_machine(),
                "pid": os.getpid(),
                "since": now,
                "renewed": now,
                "timeout": self.timeout,
            }
            if self.backend.swap_meta(self.index, LEASE_META, current or None, mine):
                self._held = mine
                self._renewer = threading.Thread(target=self._renew_loop, name="lsrkit-lease", daemon=True)
                self._renewer.start()
                return self
        raise IndexBusyError(f"index {self.index!r}: could not take its write lease (other jobs keep changing it)")

    def check(self) -> None:
        """Raise LeaseLostError when another job took the lease over (called before each write)."""
        if self._lost:
            raise LeaseLostError(self._lost)

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
        return time.time() - float(holder.get("renewed", 0)) > float(holder.get("timeout", DEFAULT_LEASE_SECONDS))

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.timeout / 4):
            with self._swap:
                if self._held is None or self._lost:
                    return
                renewed = {**self._held, "renewed": time.time()}
                try:
                    if self.backend.swap_meta(self.index, LEASE_META, self._held, renewed):
                        self._held = renewed
                    else:
                        current = self.backend.get_meta(self.index, LEASE_META) or {}
                        self._lost = f"index {self.index!r}: this job's write lease was taken over by {describe(current)}; it stopped before its next write"
                        return
                except LsrError:
                    if time.time() - float(self._held["renewed"]) > self.timeout:
                        self._lost = f"index {self.index!r}: the engine was unreachable for longer than the lease timeout ({self.timeout:g} s)"
                        return


__all__ = ["DEFAULT_LEASE_SECONDS", "LEASE_META", "Lease", "LeaseLostError", "describe"]
