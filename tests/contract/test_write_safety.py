"""What one-writer-per-index and exact statistics rest on, on every engine: a compare-and-set of
the index's meta documents, the write lease built on it, and engine errors kept apart from
record errors."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from lsrkit.core import IndexBusyError
from lsrkit.ingest.lease import LEASE_META, Lease, LeaseLostError

from ..conftest import unique_index

pytestmark = pytest.mark.models


@pytest.fixture()
def index(backend):
    spec = unique_index(f"safety-{backend.name}")
    backend.ensure_index(spec)
    yield spec.name
    backend.drop_index(spec.name)


def test_swap_meta_replaces_only_what_it_compared(backend, index):
    assert backend.swap_meta(index, "k", None, {"v": 1})
    assert not backend.swap_meta(index, "k", None, {"v": 2})  # present now: not "absent"
    assert not backend.swap_meta(index, "k", {"v": 0}, {"v": 2})
    assert backend.swap_meta(index, "k", {"v": 1}, {"v": 2}) and backend.get_meta(index, "k") == {"v": 2}
    assert backend.swap_meta(index, "k", {"v": 2}, {}) and backend.swap_meta(index, "k", None, {"v": 3})  # {} reads as absent


def test_racing_swaps_let_exactly_one_writer_win(backend, index):
    if backend.name == "qdrant":
        pytest.skip("Qdrant's collection metadata has no conditional update: swap_meta narrows the race there, the lease documents it")
    backend.swap_meta(index, "counter", None, {"n": 0})
    wins: list[int] = []

    def bump(k: int) -> None:
        for _ in range(40):
            current = backend.get_meta(index, "counter")
            if backend.swap_meta(index, "counter", current, {"n": current["n"] + 1, "by": k}):
                wins.append(k)
                return

    threads = [threading.Thread(target=bump, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend.get_meta(index, "counter")["n"] == len(wins) == 6  # no increment lost


def test_a_held_lease_refuses_a_second_job_naming_the_holder(backend, index):
    with Lease(backend, index, "job-a"):
        with pytest.raises(IndexBusyError, match=r"being written by job-a \(pid \d+ on "):
            Lease(backend, index, "job-b").acquire()
    with Lease(backend, index, "job-b"):  # given back at the end of job-a
        assert backend.get_meta(index, LEASE_META)["job"] == "job-b"


def test_a_lease_that_stopped_renewing_elsewhere_is_taken_over_after_its_timeout(backend, index):
    now = int(time.time() * 1000)
    stopped = {
        "token": "t0",
        "job": "dead-job",
        "host": "another-machine",
        "boot": "b",
        "pidns": "p",
        "pid": 1,
        "since": now,
        "renewed": now,
        "timeout_ms": 1500,
    }
    assert backend.swap_meta(index, LEASE_META, None, stopped)
    with pytest.raises(IndexBusyError, match="dead-job"):
        Lease(backend, index, "new-job").acquire()
    time.sleep(1.6)
    with Lease(backend, index, "new-job"):
        assert backend.get_meta(index, LEASE_META)["job"] == "new-job"


def test_a_holder_whose_process_is_gone_on_this_machine_is_taken_over_at_once(backend, index):
    from lsrkit.ingest.lease import _machine

    now = int(time.time() * 1000)
    gone = {"token": "t0", "job": "killed-job", **_machine(), "pid": 2**22 + 17, "since": now, "renewed": now, "timeout_ms": 600_000}
    assert gone["host"] == socket.gethostname()
    assert backend.swap_meta(index, LEASE_META, None, gone)
    with Lease(backend, index, "resumed-job"):
        assert backend.get_meta(index, LEASE_META)["job"] == "resumed-job"


def test_a_holder_whose_lease_was_taken_over_stops_before_its_next_write(backend, index):
    lease = Lease(backend, index, "slow-job", timeout=2.0)  # renewed every 0.5 s
    lease.acquire()
    try:
        held = backend.get_meta(index, LEASE_META)
        assert backend.swap_meta(index, LEASE_META, held, {**held, "token": "other", "job": "other-job"})
        time.sleep(1.2)  # the renewer finds it changed
        with pytest.raises(LeaseLostError, match="other-job"):
            lease.check()
    finally:
        lease.release()
    assert backend.get_meta(index, LEASE_META)["job"] == "other-job"  # a lost lease is not given back


def test_a_holder_that_cannot_renew_stops_before_another_job_may_take_over(backend, index):
    lease = Lease(backend, index, "cut-off-job", timeout=1.0)
    lease.acquire()
    try:
        lease._renewed -= 0.6  # as if no renewal had reached the engine for 0.6 s (more than half the timeout)
        with pytest.raises(LeaseLostError, match="not renewed"):
            lease.check()
    finally:
        lease.release()
