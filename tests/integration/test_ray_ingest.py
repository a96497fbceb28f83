"""Ingest on a local Ray cluster (2 CPUs) into the CI OpenSearch (and its three-node cluster): the
same index as the local job, and nothing lost or counted twice when a worker or the driver is
killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lsrkit.bench import faults
from lsrkit.factory import BackendOptions
from lsrkit.index import Index
from lsrkit.ingest import read_dead_letters
from lsrkit.jobs import is_ingested

pytestmark = pytest.mark.models


CORPUS = 150  # documents: ~19 blocks of 8, room for a kill after the first and three more after it


def _corpus(mini_docs: list[dict], path: Path, n: int = CORPUS) -> tuple[Path, list[dict]]:
    docs = mini_docs[:n]
    lines = [json.dumps(d) for d in docs]
    lines.insert(5, "{broken json")
    lines.insert(70, json.dumps({"_id": "nonstring", "text": 42}))
    lines.insert(90, json.dumps(docs[0]))  # a duplicate id
    path.write_text("\n".join(lines) + "\n")
    return path, docs


def _ingest(source: Path, data_dir: Path, index: str, url: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "lsrkit.cli",
        "ingest",
        str(source),
        "--backend",
        "opensearch",
        "--url",
        url,
        "--index",
        index,
        "--data-dir",
        str(data_dir),
        "--json",
        *extra,
    ]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, start_new_session=True
    )


def _done(process: subprocess.Popen[str]) -> dict:
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _state(url: str, index: str, sparse_encoder, *, drop: bool = True) -> dict:
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    backend = OpenSearchBackend(client_from_env(url), vocab=sparse_encoder.vocab)
    try:
        backend.flush(index)
        ids = sorted(h["_id"] for h in backend.client.search(index=index, body={"query": {"match_all": {}}, "size": 1000, "_source": False})["hits"]["hits"])
        stats = backend.get_meta(index, "idf") or {}
        return {
            "ids": ids,
            "vectors": backend.fetch_multivectors(index, ids),
            "codec": backend.get_meta(index, "multivector"),
            "statistics": {k: stats.get(k) for k in ("n_docs", "ids", "counts")},
        }
    finally:
        if drop:
            backend.drop_index(index)
        backend.close()


# one write batch for every job of this module: the codec is calibrated on the first batch, so jobs
# compared byte for byte must cut the corpus alike (8 documents a block: many blocks from few documents)
BATCH = ("--write-batch", "8")


@pytest.fixture(scope="module")
def local_job(tmp_path_factory, opensearch_url, mini_docs, sparse_encoder):
    """The reference both tests compare with: the local job on the same corpus, run once."""
    folder = tmp_path_factory.mktemp("ray-local")
    source, _ = _corpus(mini_docs, folder / "corpus.jsonl")
    index = f"local-{uuid.uuid4().hex[:8]}"
    try:
        summary = _done(_ingest(source, folder / "data", index, opensearch_url, *BATCH))
        yield source, summary, folder / "data" / "state" / index, _state(opensearch_url, index, sparse_encoder, drop=False)
    finally:
        _drop(opensearch_url, index, sparse_encoder)


def _drop(url: str, index: str, sparse_encoder) -> None:
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    backend = OpenSearchBackend(client_from_env(url), vocab=sparse_encoder.vocab)
    try:
        backend.drop_index(index)  # with its meta documents
    finally:
        backend.close()


@pytest.mark.cluster
def test_ray_ingest_on_the_cluster_equals_the_local_ingest(tmp_path, opensearch_cluster_url, sparse_encoder, local_job):
    """The Ray job writes a 3-shard, 1-replica index on the three-node cluster (the driver and every
    worker given all nodes); the local job wrote one shard on the single node: the same index.
    Skipped without a cluster (docker/opensearch-local.sh start --nodes 3), failed without one in CI."""
    source, local_summary, local_state, clean = local_job
    ray = f"ray-{uuid.uuid4().hex[:8]}"
    cluster = ("--shards", "3", "--replicas", "1")
    try:
        ray_summary = _done(_ingest(source, tmp_path / "ray", ray, opensearch_cluster_url, "--runner", "ray", "--workers", "2", *cluster, *BATCH))
        assert {k: ray_summary[k] for k in ("documents", "passages_written", "rejected")} == {
            k: local_summary[k] for k in ("documents", "passages_written", "rejected")
        }
        dead = {(d["position"], d["reason"]) for d in read_dead_letters(tmp_path / "ray" / "state" / ray / "dead-letter.jsonl")}
        assert dead == {(d["position"], d["reason"]) for d in read_dead_letters(local_state / "dead-letter.jsonl")}
        assert len(dead) == 3
        # eval, tune and bench reuse the index a Ray job finished, as they reuse a local job's
        with Index(ray, backend=BackendOptions("opensearch", url=opensearch_cluster_url, data_dir=tmp_path / "ray")) as built:
            assert is_ingested(built, source)
            assert (built.backend.client.indices.get_settings(index=ray)[ray]["settings"]["index"]["number_of_shards"]) == "3"
        assert _state(opensearch_cluster_url, ray, sparse_encoder, drop=False) == clean
    finally:  # the cluster outlives the test: leave no index behind, whatever failed
        _drop(opensearch_cluster_url, ray, sparse_encoder)


def _block_writers() -> list[int]:
    """The pids of the Ray actors writing blocks (Ray names an actor's process after its class)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"BlockWriter" in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _checkpoint(state: Path) -> dict:
    path = state / "ray-checkpoint.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _wait(condition, process: subprocess.Popen[str], timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None and not condition():
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()[1][-3000:]


def _write_block(url: str, index: str, on: bool) -> None:
    from opensearchpy import OpenSearch

    OpenSearch(hosts=[url]).indices.put_settings(index=index, body={"index.blocks.write": on})


def test_a_worker_killed_and_the_driver_killed_lose_and_duplicate_nothing(tmp_path, opensearch_url, mini_docs, sparse_encoder, local_job):
    """A worker's process is SIGKILLed from outside after the first block (Ray restarts the actor and
    retries its block), a write block is set and lifted, then the driver is SIGKILLed (with its
    cluster) after more blocks and run again with --resume: the index ends as the local job's."""
    source, _, _, clean = local_job
    docs = mini_docs[:CORPUS]
    index = f"ray-faults-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "data" / "state" / index
    first = _ingest(source, tmp_path / "data", index, opensearch_url, "--runner", "ray", "--workers", "2", *BATCH)
    _wait(lambda: len(_checkpoint(state).get("done", [])) >= 1 and bool(_block_writers()), first)
    _write_block(opensearch_url, index, True)  # the actors ride out a write block lifted within their retry policy
    time.sleep(3)
    _write_block(opensearch_url, index, False)
    victim = _block_writers()[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = len(_checkpoint(state).get("done", []))
    _wait(lambda: len(_checkpoint(state).get("done", [])) >= killed_at + 3, first)  # the job went on past the dead worker
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    _done(_ingest(source, tmp_path / "data", index, opensearch_url, "--runner", "ray", "--workers", "2", *BATCH, "--resume"))
    faulted = _state(opensearch_url, index, sparse_encoder, drop=False)
    # passages, token-vector bytes, codec and statistics: as the local job without faults (compared
    # part by part: pytest's diff of two large dicts of bytes runs for many minutes)
    differ = [part for part in clean if faulted[part] != clean[part]]
    assert not differ, f"the faulted Ray job's {differ} differ from the local job's"
    final = {d["_id"]: d for d in docs}
    audit = faults.audit_lifecycle(opensearch_url, index, list(final.values()))
    assert (audit["stale"], audit["lost"], audit["duplicated"]) == (0, 0, 0), audit
    assert audit["statistics_exact"], audit
    assert len(read_dead_letters(state / "dead-letter.jsonl")) == 3  # each bad record once, across the kill
    _state(opensearch_url, index, sparse_encoder)  # drops it


def test_a_killed_drivers_worker_writes_nothing_once_the_resumed_job_took_the_lease(tmp_path, opensearch_url, mini_docs):
    """The interleaving behind the test above's flaky runs, in order, in this process (the actor
    class without Ray): a driver dies with a block handed out, its change listed open and not yet
    journaled; the resumed job takes the lease over and finishes the open changes (none journaled);
    only then does the dead driver's worker — still running: Ray starts each worker in its own
    process group, so the driver's SIGKILL spares it for seconds — journal and write the block.
    Those passages were counted by no one, and the resumed job's rerun of the block found them
    stored and took them for counted ones (-old +new on equal passages): stored, never counted.
    The worker must find its driver's lease gone and write nothing."""
    from dataclasses import asdict

    from lsrkit.core.config import BatchPolicy
    from lsrkit.core.types import Document, passage_text
    from lsrkit.encoders.idf import DocFreqCounter
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index
    from lsrkit.ingest.lease import Lease, LeaseLostError
    from lsrkit.ingest.retry import RetryPolicy
    from lsrkit.ingest.statistics import Change, CorpusStatistics
    from lsrkit.ray_ingest import BlockWriter, change_id

    name = f"ray-orphan-{uuid.uuid4().hex[:8]}"
    options = BackendOptions("opensearch", data_dir=tmp_path, url=opensearch_url)
    index = Index(name, backend=options)
    try:
        index.ingest(mini_docs[:2], progress=False)  # the index, its manifest and codec
        tokenizer = index.document_encoders()[0].model.tokenizer
        statistics = CorpusStatistics(index.backend, name, tokenizer)  # the drivers'

        def worker(run: str, lease: Lease) -> BlockWriter:
            return BlockWriter(
                options={**asdict(options), "data_dir": str(tmp_path)},
                index=name,
                models=asdict(index.models()),
                job="ray|the job",
                run=run,
                codec={"representation": index.representation, "new": False},
                threads=1,
                policy={"batch": asdict(BatchPolicy()), "retry": asdict(RetryPolicy())},
                lease=lease.token,
            )

        block = [Document(d["_id"], d["text"], d.get("title", "")) for d in mini_docs[2:6]]
        stopped = Lease(index.backend, name, "the killed driver", timeout=1.0).acquire()
        orphan = worker("run-1", stopped)
        statistics.journal.open([change_id("run-1", 2)])  # block 2 handed out
        stopped.abandon()  # the driver is killed: its lease is renewed no more
        time.sleep(1.2)
        resumed = Lease(index.backend, name, "the resumed driver").acquire()  # taken over
        statistics.finish_open()
        with pytest.raises(LeaseLostError):
            orphan.block(2, block)
        index.backend.flush(name)
        assert index.backend.read_documents(name, [d.id for d in block]) == [] and statistics.journal.get(change_id("run-1", 2)) is None
        result = worker("run-2", resumed).block(2, block)  # the resumed run's block 2
        statistics.apply(Change(**result["change"]), result["written"])
        resumed.release()
        index.backend.flush(name)
        stored = index.backend.read_documents(name, [d["_id"] for d in mini_docs[:6]])
        fresh = DocFreqCounter(len(tokenizer.vocab))
        fresh.add(tokenizer.token_ids([passage_text(h.title, h.text) for h in stored], add_special_tokens=False))
        stats = index.backend.get_meta(name, "idf") or {}
        assert len(stored) > 2 and {k: stats.get(k) for k in ("n_docs", "ids", "counts")} == fresh.state()
        assert statistics.journal.open_changes() == []  # no entry left for a later job to count again
    finally:
        index.drop()
        index.close()


def test_qdrant_edge_stays_on_the_local_path(tmp_path, mini_docs):
    source, _ = _corpus(mini_docs, tmp_path / "corpus.jsonl", n=5)
    cmd = [sys.executable, "-m", "lsrkit.cli", "ingest", str(source), "--backend", "edge", "--data-dir", str(tmp_path), "--runner", "ray"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "local runner" in result.stderr


def test_a_ray_job_on_an_index_another_job_writes_is_refused(tmp_path, opensearch_url, mini_docs, sparse_encoder):
    from lsrkit.ingest.lease import Lease
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    source, _ = _corpus(mini_docs, tmp_path / "corpus.jsonl", n=20)
    index = f"ray-leased-{uuid.uuid4().hex[:8]}"
    backend = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    try:
        with Lease(backend, index, "a local job"):
            process = _ingest(source, tmp_path / "data", index, opensearch_url, "--runner", "ray")
            _, err = process.communicate(timeout=600)
        assert process.returncode == 2 and "being written by a local job" in " ".join(err.split())
        assert not (tmp_path / "data" / "state" / index / "ray-checkpoint.json").exists()
    finally:
        backend.drop_index(index)
        backend.close()
