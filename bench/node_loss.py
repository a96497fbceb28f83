"""`lsrkit bench faults` on a multi-node OpenSearch cluster: one node SIGKILLed mid-job or under
query load, and what survived.

The cluster: three nodes made by docker/opensearch-local.sh (`start --nodes 3`) on their own
ports; lsrkit is given every node's URL; each index in 3 shards with 1 replica. Scenarios:
- node_killed_during_ingest: an ingest job with a node other than the elected cluster manager
  SIGKILLed after a quarter of its corpus; once it is back, a second job (more documents, same
  index) with the cluster manager itself killed (an election follows). Each job finishes, or stops non-zero and `--resume` finishes it
  while the node is still down. Audited: lost, duplicated and stale passages, and whether the
  corpus statistics equal a fresh count.
- node_killed_during_delete: per kill (a node other than the cluster manager, then the cluster
  manager), a delete job of a quarter of the documents with the node killed once the job's first
  batch of deletes is visible (its later batches still to go); run again (the node still down)
  if it stopped non-zero; the node brought back; audited alike.
- node_killed_under_serve: `lsrkit serve` on the cluster answering `hybrid+rerank` queries from
  four clients while a node other than the cluster manager, then the cluster manager, is killed
  and brought back. Counted per phase: answers 200, 503 for the engine's sake (with or without
  Retry-After), 429, other 5xx (a 503 the service gave for a failure of its own counts here),
  and requests left unanswered (a transport error or a 30 s timeout); the service is never
  restarted. A request is counted in the phase it was sent in.
The client's node list is shuffled (opensearch-py), so which node "the URL names first" means
nothing to it: the node that matters is the elected cluster manager.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsrkit.bench.faults import (
    RUNNER,
    LocalOpenSearch,
    Outcome,
    finish,
    lifecycle_outcome,
    spawn_delete,
    spawn_ingest,
    wait_for_checkpoint,
)
from lsrkit.factory import job_state_dir
from lsrkit.plugin.opensearch import client_from_env

SPREAD = ("--shards", "3", "--replicas", "1")


class LocalCluster(LocalOpenSearch):
    """Nodes on ports port..port+nodes-1 (node-0, node-1, …), through the project's runner script."""

    def __init__(self, port: int, nodes: int = 3, heap: str = "384m") -> None:
        super().__init__(port)
        self.nodes = nodes
        self.env["OPENSEARCH_HEAP"] = heap
        self.url = ",".join(f"http://127.0.0.1:{port + i}" for i in range(nodes))

    def _run(self, *command: str) -> str:
        return subprocess.run(["bash", str(RUNNER), *command], env=self.env, check=True, capture_output=True, text=True).stdout.strip()

    def _client(self, timeout: float = 60):  # type: ignore[no-untyped-def]
        return client_from_env(self.url, timeout=timeout)

    def start(self) -> None:
        self._run("start", "--nodes", str(self.nodes))

    def manager(self) -> int:
        """The node elected cluster manager (its loss forces an election)."""
        client = self._client()
        try:
            return int(client.cat.cluster_manager(format="json")[0]["node"].removeprefix("node-"))
        finally:
            client.close()

    def not_manager(self) -> int:
        return next(i for i in range(self.nodes) if i != self.manager())

    def holding_a_primary_of(self, index: str) -> int:
        client = self._client()
        try:
            shards = client.cat.shards(index=index, format="json")
        finally:
            client.close()
        return int(next(s["node"] for s in shards if s["prirep"] == "p" and s["node"]).removeprefix("node-"))

    def fresh(self, index: str) -> str:
        """`index` dropped with its meta documents (a kept cluster may hold an earlier run's)."""
        from lsrkit.plugin.opensearch import OpenSearchBackend

        backend = OpenSearchBackend(self._client())
        try:
            backend.drop_index(index)
        finally:
            backend.close()
        return index

    def kill_node(self, node: int) -> None:
        self._run("kill-node", str(node))

    def revive(self, node: int) -> None:
        """The node back and every shard copy assigned again (green)."""
        self._run("start-node", str(node))
        client = self._client(timeout=30)
        try:
            deadline = time.time() + 300
            while True:
                # the health API's own wait: a `timeout` parameter is taken for the client's own
                # unless the client's is given
                health = client.transport.perform_request(
                    "GET", "/_cluster/health", params={"wait_for_status": "green", "timeout": "10s"}, ignore=(408,), timeout=30
                )
                if health.get("status") == "green":
                    return
                if time.time() > deadline:
                    raise TimeoutError(f"the cluster is not green 300 s after node {node} came back: {health}")
                # a copy whose allocation failed 5 times (e.g. its old shard lock still held on a
                # busy node) is not tried again by itself: what an operator does, done here
                client.transport.perform_request("POST", "/_cluster/reroute", params={"retry_failed": "true"})
        finally:
            client.close()


def _documents(dataset: Path, start: int, n: int) -> list[dict[str, Any]]:
    with (Path(dataset) / "corpus.jsonl").open(encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(start + n), handle)][start:]
    return [json.loads(line) for line in lines]


def _job_with_a_node_killed(source: Path, data_dir: Path, index: str, cluster: LocalCluster, manager: bool) -> dict[str, Any]:
    """An ingest job of `source` with a node (the elected cluster manager, or another) killed once
    a quarter of it is written; the job's exit; resumed (the node still down) when it stopped
    non-zero; the node brought back."""
    process = spawn_ingest(source, data_dir, index, "opensearch", cluster.url, *SPREAD)
    documents = sum(1 for _ in source.open(encoding="utf-8"))
    reached = wait_for_checkpoint(job_state_dir(data_dir, index), documents // 4, process, source=source)
    node = cluster.manager() if manager else cluster.not_manager()
    cluster.kill_node(node)
    running = process.poll() is None  # still running once the node was dead
    process.wait(timeout=900)
    notes: dict[str, Any] = {
        "killed_node": node,
        "killed_after_ordinal": reached["next_ordinal"],
        "running_after_kill": running,
        "exit_code": process.returncode,
    }
    if process.returncode != 0:
        notes["resumed_from"] = finish(spawn_ingest(source, data_dir, index, "opensearch", cluster.url, *SPREAD, resume=True))["resumed_from"]
    cluster.revive(node)
    return notes


KILLS = ("other_node", "cluster_manager")  # which node each kill takes, in turn
DELETE_BATCH = 5  # documents per step of a delete job in the delete scenario


def node_killed_during_ingest(dataset: Path, work: Path, cluster: LocalCluster, n: int = 300, kills: tuple[str, ...] = KILLS) -> Outcome:
    """One job of n documents per kill (the same index, each job adding its own documents)."""
    started = time.time()
    name = cluster.fresh("node-lost-ingest")
    data_dir, state = work / name, job_state_dir(work / name, name)
    written: list[dict[str, Any]] = []
    notes: dict[str, Any] = {}
    for turn, label in enumerate(kills):
        docs = _documents(dataset, turn * n, n)
        source = work / f"{name}-{label}.jsonl"
        source.write_text("".join(json.dumps(d) + "\n" for d in docs))
        notes[label] = _job_with_a_node_killed(source, data_dir, name, cluster, manager=label == "cluster_manager")
        written += docs
    return _audited("node_killed_during_ingest", cluster, name, written, state, started, notes)


def node_killed_during_delete(dataset: Path, work: Path, cluster: LocalCluster, n: int = 300, kills: tuple[str, ...] = KILLS) -> Outcome:
    """n documents ingested once; per kill, a delete job of n // 4 of them in batches of
    DELETE_BATCH (many steps: the kill lands while it runs)."""
    started = time.time()
    name = cluster.fresh("node-lost-delete")
    data_dir, state = work / name, job_state_dir(work / name, name)
    docs = _documents(dataset, 0, n)
    source = work / f"{name}.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in docs))
    finish(spawn_ingest(source, data_dir, name, "opensearch", cluster.url, *SPREAD))
    notes: dict[str, Any] = {}
    share = n // 4
    for turn, label in enumerate(kills):
        gone = [d["_id"] for d in docs[turn * share : (turn + 1) * share]]
        notes[label] = _delete_with_a_node_killed(gone, data_dir, name, cluster, manager=label == "cluster_manager")
    return _audited("node_killed_during_delete", cluster, name, docs[len(kills) * share :], state, started, notes)


def _delete_with_a_node_killed(gone: list[str], data_dir: Path, index: str, cluster: LocalCluster, manager: bool) -> dict[str, Any]:
    """A delete job of `gone` with a node killed once its first deletes are searchable (the
    index's own refresh, no forced one); run again (the node still down) when it stopped non-zero;
    the node brought back, whatever happened. `running_after_kill`: the job was still running once
    the node was dead."""
    node = cluster.manager() if manager else cluster.not_manager()
    client = cluster._client()
    process, killed = None, False
    try:
        before = int(client.count(index=index)["count"])
        process = spawn_delete(gone, data_dir, index, cluster.url, "--batch", str(DELETE_BATCH))
        deadline, at_kill, waited_for = time.time() + 300, before, "timeout"
        while time.time() < deadline:
            if process.poll() is not None:
                waited_for = "job exited"
                break
            at_kill = int(client.count(index=index)["count"])
            if at_kill < before:
                waited_for = "deletes seen"
                break
            time.sleep(0.05)
        cluster.kill_node(node)
        killed = True
        running = process.poll() is None
        out, _ = process.communicate(timeout=900)
        notes: dict[str, Any] = {
            "killed_node": node,
            "waited_for": waited_for,
            "passages_before": before,
            "passages_at_kill": at_kill,
            "running_after_kill": running,
            "exit_code": process.returncode,
        }
        if process.returncode != 0:
            notes["output"] = out.decode(errors="replace").strip()[-500:]
            rerun = spawn_delete(gone, data_dir, index, cluster.url, "--batch", str(DELETE_BATCH))  # the node still down
            rerun_out, _ = rerun.communicate(timeout=900)
            notes.update(rerun_exit_code=rerun.returncode, rerun=rerun_out.decode(errors="replace").strip().splitlines()[-1] if rerun_out else "")
        return notes
    finally:
        client.close()
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if killed:
            cluster.revive(node)  # the scenarios after this one need every node


def _audited(scenario: str, cluster: LocalCluster, name: str, final: list[dict[str, Any]], state: Path, started: float, notes: dict[str, Any]) -> Outcome:
    return lifecycle_outcome(scenario, cluster.url, name, final, state, started, notes)


@dataclass
class _Tally:
    """The answers of one phase of the serve scenario."""

    status_200: int = 0
    status_503: int = 0  # the engine could not answer ("engine_unavailable"): acceptable with Retry-After
    status_503_without_retry_after: int = 0
    status_5xx: int = 0  # never acceptable: any other 5xx, and a 503 the service gave for its own failure
    status_429: int = 0  # the service's admission control: more requests in flight than it takes
    status_other: int = 0
    unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, status: int, retry_after: bool, error: str | None = None) -> None:
        if status == 200:
            self.status_200 += 1
        elif status == 503 and error == "engine_unavailable":
            self.status_503 += 1
            self.status_503_without_retry_after += not retry_after
        elif status >= 500:  # the service's own failures answer 503 too ("internal", "unavailable")
            self.status_5xx += 1
        elif status == 429:
            self.status_429 += 1
        else:
            self.status_other += 1

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "lock"}


LOGGED_503 = ("answered 503", "unexpected error on")  # the service's log lines of a 503: an error it handled, or one it did not


def _logged_503s(log: Path, limit: int = 5) -> list[str]:
    """The service's log lines of the 503s it answered (the first `limit`): the engine's errors
    and its own."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [line.strip()[:300] for line in lines if any(marker in line for marker in LOGGED_503)][:limit]


def _error_code(response: Any) -> str | None:
    """The `error` of the service's JSON error body (None for a body that is not one)."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def node_killed_under_serve(
    dataset: Path, work: Path, cluster: LocalCluster, n: int = 120, clients: int = 4, phase_seconds: float = 8.0, kills: tuple[str, ...] = KILLS
) -> Outcome:
    import httpx

    from lsrkit.bench.serve import _Service, load_queries

    started = time.time()
    name = cluster.fresh("node-lost-serve")
    data_dir = work / name
    docs = _documents(dataset, 0, n)
    source = work / f"{name}.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in docs))
    command = ["--backend", "opensearch", "--index", name, "--data-dir", str(data_dir), "--url", cluster.url, *SPREAD, "--json"]
    subprocess.run(
        [sys.executable, "-m", "lsrkit.cli", "ingest", str(source), *command], check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    queries = load_queries(dataset, 50)
    service = _Service(["--backend", "opensearch", "--url", cluster.url, "--index", name, "--data-dir", str(data_dir)], work / f"{name}.log")
    phases: dict[str, _Tally] = {}
    current: list[_Tally] = []  # the phase a request is counted in: the one it was sent in
    stop = threading.Event()

    def client_loop(offset: int) -> None:
        with httpx.Client(timeout=30) as client:
            for turn in itertools.count(offset, clients):
                if stop.is_set():
                    return
                tally = current[-1]
                try:
                    response = client.post(service.url + "/search", json={"text": queries[turn % len(queries)], "pipeline": "hybrid+rerank", "k": 10})
                except httpx.HTTPError:
                    with tally.lock:
                        tally.unanswered += 1
                    time.sleep(0.2)  # a service gone must not turn into a busy loop of failures
                    continue
                with tally.lock:
                    tally.count(response.status_code, "retry-after" in response.headers, _error_code(response))

    def phase(label: str, seconds: float = 0.0) -> None:
        phases[label] = _Tally()
        current.append(phases[label])
        time.sleep(seconds)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    killed: dict[str, int] = {}
    try:
        service.wait_ready()
        phase("all_nodes")
        for thread in threads:
            thread.start()
        time.sleep(phase_seconds)
        for label in kills:
            killed[label] = cluster.manager() if label == "cluster_manager" else cluster.not_manager()
            cluster.kill_node(killed[label])
            phase(f"{label}_down", phase_seconds)
            phase(f"{label}_returning")
            cluster.revive(killed[label])
            phase(f"{label}_back", phase_seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        service_exit = service.stop()
    total = {key: sum(p.as_dict()[key] for p in phases.values()) for key in _Tally().as_dict()}
    notes = {
        "killed_nodes": killed,
        "phases": {label: tally.as_dict() for label, tally in phases.items()},
        "status_503": total["status_503"],
        "status_503_without_retry_after": total["status_503_without_retry_after"],
        "recovered_without_restart": all(phases[f"{label}_back"].status_200 > 0 for label in killed),
        "clients_still_running": sum(t.is_alive() for t in threads),
        "service_exit_code": service_exit,
        "service_503_reasons": _logged_503s(work / f"{name}.log"),
    }
    outcome = _audited("node_killed_under_serve", cluster, name, docs, job_state_dir(data_dir, name), started, notes)
    outcome.status_5xx, outcome.unanswered = total["status_5xx"], total["unanswered"]
    return outcome
