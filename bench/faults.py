"""`lsrkit bench faults`: ingestion jobs under real failures, and what survived.

Scenarios (each on real engines, each audited against the records it should have written):
- malformed: a corpus with ~1 % bad records (bad JSON, no id, empty or non-string text,
  duplicate ids, a 5 MB text) into Qdrant Edge;
- ingest_killed_edge / ingest_killed_opensearch: the ingest process SIGKILLed mid-run, then
  resumed with --resume;
- opensearch_killed: the OpenSearch node SIGKILLed (by its own pid) mid-ingest, restarted, the
  job resumed;
- update_delete_opensearch_killed: an update job (documents shrunk, documents added) and a delete
  job, the node SIGKILLed during each, restarted, the jobs run again: stale, lost and duplicated
  passages and whether the corpus statistics equal a fresh count;
- bulk_429: a node with a one-slot write queue and parallel writers, so OpenSearch itself
  answers 429; rejected items are retried alone;
- bad_inputs: ids that collided before every passage had a `#<n>` suffix, a lone surrogate, a
  CSV row that is not UTF-8, into Qdrant Edge;
- write_block_lifted / write_block_never_lifted: OpenSearch's write block set on the index
  mid-job, lifted after 12 s (ridden out) or never (the job stops non-zero, resumed once lifted);
- second_ingest_refused / second_delete_refused: a second job or a delete on an index a job is
  writing; lease_holder_killed: the lease's holder SIGKILLed, taken over from another machine
  (its own UTS namespace) only after the lease timeout;
- node_killed_during_ingest / node_killed_during_delete / node_killed_under_serve: one node of a
  three-node cluster SIGKILLed (bench/node_loss.py), the cluster on ports port-20..port-18.
Every scenario reports lost, duplicated and stale passages and wrongly dead-lettered records.
Needs the repository checkout (docker/opensearch-local.sh) for the OpenSearch scenarios.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsrkit.bench.common import machine
from lsrkit.factory import job_state_dir
from lsrkit.plugin.opensearch import node_urls

RUNNER = Path(__file__).resolve().parents[1] / "docker" / "opensearch-local.sh"


@dataclass
class Outcome:
    scenario: str
    records_valid: int
    records_indexed: int
    duplicates: int
    lost: int
    dead_lettered: int
    retried_429: int = 0
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    wrongly_dead_lettered: int = 0  # dead letters beyond the bad records the scenario put in
    stale: int = 0  # passages stored that the final corpus does not have (or not with that text)
    status_5xx: int | None = None  # under query load: answers 5xx other than 503 (never acceptable)
    unanswered: int | None = None  # under query load: requests without an answer


# -- corpora ---------------------------------------------------------------------------------------
def make_corpus(dataset: Path, n: int, path: Path, malformed_rate: float = 0.0, seed: int = 7) -> tuple[list[dict[str, Any]], int]:
    """The first n documents of a BEIR corpus, with ~malformed_rate bad records mixed in."""
    lines = (Path(dataset) / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    docs = [json.loads(line) for line in lines]
    rng = random.Random(seed)
    bad_kinds = [
        lambda d: "{" + json.dumps(d)[:40],  # truncated JSON
        lambda d: json.dumps({"title": d["title"], "text": d["text"]}),  # no id
        lambda d: json.dumps({"_id": d["_id"] + "-empty", "text": "  "}),  # empty text
        lambda d: json.dumps({"_id": d["_id"] + "-num", "text": 12345}),  # non-string text
        lambda d: json.dumps(d),  # duplicate id
        lambda d: json.dumps({"_id": d["_id"] + "-huge", "text": "lorem " * 850_000}),  # 5 MB
    ]
    n_bad = max(len(bad_kinds), round(n * malformed_rate)) if malformed_rate > 0 else 0
    out = [json.dumps(d) for d in docs]
    for k in range(n_bad):
        out.insert(rng.randrange(1, len(out)), bad_kinds[k % len(bad_kinds)](docs[rng.randrange(len(docs))]))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return docs, n_bad


def expected_passages(docs: list[dict[str, Any]]) -> set[str]:
    from lsrkit.core import Document
    from lsrkit.encoders.registry import resolve
    from lsrkit.encoders.text import TextTokenizer
    from lsrkit.ingest import Chunker

    resolved = resolve("splade-tiny")
    chunker = Chunker(TextTokenizer(resolved.directory, resolved.spec.max_length).tokenizer)
    return {p.id for d in docs for p in chunker.split(Document(d["_id"], d["text"], d.get("title", "")))}


# -- audits -----------------------------------------------------------------------------------------
@dataclass
class Audit:
    count: int  # passages stored
    duplicates: int  # stored twice under one passage id
    lost: int  # expected, not stored
    stale: int  # stored, not expected


def audit_edge(data_dir: Path, index: str, expected: set[str]) -> Audit:
    """A point id is derived from its passage id: Edge cannot hold a passage twice, so a point
    beyond the expected ones is stale."""
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    backend = QdrantEdgeBackend(data_dir)
    try:
        count = backend.count(index)
        present = backend.existing_ids(index, sorted(expected))
    finally:
        backend.close()
    return Audit(count, 0, len(expected - present), count - len(present))


def wrongly_dead_lettered(state_dir: Path, bad_records: int) -> int:
    """Dead letters beyond the bad records put in, and any of the engine's write stage (no
    scenario has a record the engine should refuse)."""
    from lsrkit.ingest import read_dead_letters

    path = state_dir / "dead-letter.jsonl"
    entries = read_dead_letters(path) if path.exists() else []
    return max(0, len(entries) - bad_records) + sum(1 for e in entries if e.get("stage") == "write")


def audit_opensearch(url: str, index: str, expected: set[str]) -> Audit:
    from opensearchpy import OpenSearch, helpers

    client = OpenSearch(hosts=node_urls(url), timeout=60)
    client.indices.refresh(index=index)
    ids = [hit["_source"]["id"] for hit in helpers.scan(client, index=index, query={"query": {"match_all": {}}}, _source=["id"])]
    client.close()
    return Audit(len(ids), len(ids) - len(set(ids)), len(expected - set(ids)), len(set(ids) - expected))


def dead_letters(state_dir: Path) -> int:
    path = state_dir / "dead-letter.jsonl"
    return sum(1 for line in path.read_text().splitlines() if line.strip()) if path.exists() else 0


# -- processes --------------------------------------------------------------------------------------
class LocalOpenSearch:
    """A throwaway node on its own port, through the project's runner script."""

    def __init__(self, port: int, extra_settings: str = "") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "OPENSEARCH_PORT": str(port), "OPENSEARCH_EXTRA_SETTINGS": extra_settings, "OPENSEARCH_HEAP": "384m"}

    def _script(self, command: str) -> str:
        return subprocess.run(["bash", str(RUNNER), command], env=self.env, check=True, capture_output=True, text=True).stdout.strip()

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        subprocess.run(["bash", str(RUNNER), "stop"], env=self.env, capture_output=True)

    def wipe(self) -> None:
        subprocess.run(["bash", str(RUNNER), "wipe"], env=self.env, capture_output=True)

    def kill(self) -> int:
        pid = int(self._script("pid"))
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        return pid


def spawn_ingest(
    source: Path, data_dir: Path, index: str, backend: str, url: str | None, *extra: str, resume: bool = False, host: str | None = None
) -> subprocess.Popen[bytes]:
    """The CLI's ingest in its own process; `host`: as if run on another machine (its own UTS
    namespace with that host name: the write lease tells machines apart by name and boot id)."""
    cmd = [
        sys.executable,
        "-m",
        "lsrkit.cli",
        "ingest",
        str(source),
        "--backend",
        backend,
        "--index",
        index,
        "--data-dir",
        str(data_dir),
        "--write-batch",
        "8",
        "--no-multivector",
        "--json",
    ]
    if url:
        cmd += ["--url", url]
    cmd += list(extra)
    if resume:
        cmd.append("--resume")
    if host:
        cmd = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def wait_for_checkpoint(state_dir: Path, ordinal: int, process: subprocess.Popen[bytes], timeout: float = 300, source: Path | None = None) -> dict[str, Any]:
    """The job's checkpoint once it is past `ordinal` (of the job reading `source`, when given: a
    job's predecessor on the same index leaves its own checkpoint until the job's first batch)."""
    path = state_dir / "checkpoint.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError("ingest ended before the fault: " + (process.stdout.read().decode()[-2000:] if process.stdout else ""))
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except ValueError:
                data = {}
            if data.get("next_ordinal", 0) >= ordinal and (source is None or str(source.resolve()) in data.get("job", "")):
                return data
        time.sleep(0.05)
    raise TimeoutError(f"no checkpoint past {ordinal} within {timeout}s")


def finish(process: subprocess.Popen[bytes], timeout: float = 900) -> dict[str, Any]:
    out, _ = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"ingest failed ({process.returncode}): {out.decode()[-3000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


# -- scenarios --------------------------------------------------------------------------------------
def malformed(dataset: Path, work: Path, n: int = 600) -> Outcome:
    started = time.time()
    docs, n_bad = make_corpus(dataset, n, work / "malformed.jsonl", malformed_rate=0.01)
    finish(spawn_ingest(work / "malformed.jsonl", work / "malformed", "m", "edge", None))
    expected = expected_passages(docs)
    audit = audit_edge(work / "malformed" / "edge", "m", expected)
    state = job_state_dir(work / "malformed", "m")
    return Outcome(
        "malformed",
        len(expected),
        audit.count,
        audit.duplicates,
        audit.lost,
        dead_letters(state),
        0,
        time.time() - started,
        {"documents_valid": len(docs), "bad_records": n_bad},
        wrongly_dead_lettered(state, n_bad),
        audit.stale,
    )


def ingest_killed(dataset: Path, work: Path, backend: str, url: str | None, n: int = 300) -> Outcome:
    started = time.time()
    name = f"killed-{backend}"
    docs, n_bad = make_corpus(dataset, n, work / f"{name}.jsonl", malformed_rate=0.01, seed=11)
    data_dir = work / name
    process = spawn_ingest(work / f"{name}.jsonl", data_dir, name, backend, url)
    at = wait_for_checkpoint(job_state_dir(data_dir, name), n // 4, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    summary = finish(spawn_ingest(work / f"{name}.jsonl", data_dir, name, backend, url, resume=True))
    expected = expected_passages(docs)
    audit = audit_edge(data_dir / "edge", name, expected) if backend == "edge" else audit_opensearch(url or "", name, expected)
    return Outcome(
        f"ingest_killed_{backend}",
        len(expected),
        audit.count,
        audit.duplicates,
        audit.lost,
        dead_letters(job_state_dir(data_dir, name)),
        0,
        time.time() - started,
        {"killed_after_ordinal": at["next_ordinal"], "resumed_from": summary["resumed_from"], "bad_records": n_bad},
        wrongly_dead_lettered(job_state_dir(data_dir, name), n_bad),
        audit.stale,
    )


def opensearch_killed(dataset: Path, work: Path, node: LocalOpenSearch, n: int = 300) -> Outcome:
    started = time.time()
    name = "os-killed"
    docs, _ = make_corpus(dataset, n, work / f"{name}.jsonl", seed=13)
    data_dir = work / name
    process = spawn_ingest(work / f"{name}.jsonl", data_dir, name, "opensearch", node.url)
    at = wait_for_checkpoint(job_state_dir(data_dir, name), n // 4, process)
    pid = node.kill()
    process.wait(timeout=600)  # the job retries with backoff, then stops with the error
    first_exit = process.returncode
    node.start()
    summary = finish(spawn_ingest(work / f"{name}.jsonl", data_dir, name, "opensearch", node.url, resume=True))
    expected = expected_passages(docs)
    audit = audit_opensearch(node.url, name, expected)
    return Outcome(
        "opensearch_killed",
        len(expected),
        audit.count,
        audit.duplicates,
        audit.lost,
        dead_letters(job_state_dir(data_dir, name)),
        0,
        time.time() - started,
        {"killed_pid": pid, "killed_after_ordinal": at["next_ordinal"], "job_exit_code_while_down": first_exit, "resumed_from": summary["resumed_from"]},
        wrongly_dead_lettered(job_state_dir(data_dir, name), 0),
        audit.stale,
    )


def spawn_delete(ids: list[str], data_dir: Path, index: str, url: str, *extra: str) -> subprocess.Popen[bytes]:
    (data_dir / "delete-ids.txt").write_text("\n".join(ids) + "\n")
    cmd = [sys.executable, "-m", "lsrkit.cli", "delete", "--index", index, "--backend", "opensearch", "--url", url, "--data-dir", str(data_dir)]
    return subprocess.Popen([*cmd, "--from", str(data_dir / "delete-ids.txt"), *extra, "--json"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def audit_lifecycle(url: str, index: str, final: list[dict[str, Any]]) -> dict[str, Any]:
    """Stale (stored, not in the final corpus), lost, duplicated passages, and whether the stored
    corpus statistics equal those counted afresh over the final corpus's passages."""
    from opensearchpy import OpenSearch, helpers

    from lsrkit.core import Document
    from lsrkit.core.types import passage_text
    from lsrkit.encoders.idf import DocFreqCounter
    from lsrkit.encoders.registry import resolve
    from lsrkit.encoders.text import TextTokenizer
    from lsrkit.ingest import Chunker

    resolved = resolve("splade-tiny")
    tokenizer = TextTokenizer(resolved.directory, resolved.spec.max_length)
    passages = [p for d in final for p in Chunker(tokenizer.tokenizer).split(Document(d["_id"], d["text"], d.get("title", "")))]
    expected = DocFreqCounter(len(tokenizer.vocab))
    expected.add(tokenizer.token_ids([passage_text(p.title, p.text) for p in passages], add_special_tokens=False))
    client = OpenSearch(hosts=node_urls(url), timeout=60)
    client.indices.refresh(index=index)
    stored = [(h["_source"]["id"], h["_source"]["text"]) for h in helpers.scan(client, index=index, query={"query": {"match_all": {}}}, _source=["id", "text"])]
    statistics = client.get(index="lsrkit-meta", id=f"{index}/idf")["_source"]["value"]
    client.close()
    want = {p.id: p.text for p in passages}
    ids = [i for i, _ in stored]
    return {
        "passages_expected": len(want),
        "passages_stored": len(stored),
        "stale": sum(1 for i, text in stored if want.get(i) != text),
        "lost": len(set(want) - set(ids)),
        "duplicated": len(ids) - len(set(ids)),
        "statistics_exact": {k: statistics.get(k) for k in ("n_docs", "ids", "counts")} == expected.state(),
    }


def update_delete_killed(dataset: Path, work: Path, node: LocalOpenSearch, n: int = 200) -> Outcome:
    """An index of n documents; an update job (half of them shrunk, as many new) with the node
    SIGKILLed mid-run, restarted, the job resumed; then a delete job with the node killed while it
    runs, restarted, the delete run again."""
    started = time.time()
    name = "lifecycle"
    lines = (Path(dataset) / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    first = [json.loads(line) for line in lines[:n]]
    shrunk = [{**d, "text": d["text"][:160]} for d in first[: n // 2]]
    new = [json.loads(line) for line in lines[n : n + n // 2]]
    data_dir = work / name
    (work / "v1.jsonl").write_text("".join(json.dumps(d) + "\n" for d in first))
    (work / "v2.jsonl").write_text("".join(json.dumps(d) + "\n" for d in shrunk + new))
    finish(spawn_ingest(work / "v1.jsonl", data_dir, name, "opensearch", node.url))
    process = spawn_ingest(work / "v2.jsonl", data_dir, name, "opensearch", node.url)
    at = wait_for_checkpoint(job_state_dir(data_dir, name), len(shrunk + new) // 4, process, source=work / "v2.jsonl")
    node.kill()
    process.wait(timeout=600)
    update_exit = process.returncode
    node.start()
    finish(spawn_ingest(work / "v2.jsonl", data_dir, name, "opensearch", node.url, resume=True))
    gone = [d["_id"] for d in first[n // 4 : n // 4 + n // 2]]  # half shrunk ones, half untouched ones
    process = spawn_delete(gone, data_dir, name, node.url)
    time.sleep(random.Random(5).uniform(2.0, 4.0))  # the delete is loading its tokenizer or deleting
    node.kill()
    process.wait(timeout=600)
    delete_exit = process.returncode
    node.start()
    rerun = spawn_delete(gone, data_dir, name, node.url)
    out, _ = rerun.communicate(timeout=600)
    final = {d["_id"]: d for d in first}
    final.update({d["_id"]: d for d in shrunk + new})
    for doc in gone:
        final.pop(doc, None)
    audit = audit_lifecycle(node.url, name, list(final.values()))
    return Outcome(
        "update_delete_opensearch_killed",
        audit["passages_expected"],
        audit["passages_stored"],
        audit["duplicated"],
        audit["lost"],
        dead_letters(job_state_dir(data_dir, name)),
        0,
        time.time() - started,
        {
            "statistics_exact": audit["statistics_exact"],
            "update_killed_after_ordinal": at["next_ordinal"],
            "update_exit_code_while_down": update_exit,
            "delete_exit_code_while_down": delete_exit,
            "delete_rerun_exit_code": rerun.returncode,
            "delete_rerun": out.decode().strip().splitlines()[-1] if out else "",
        },
        wrongly_dead_lettered(job_state_dir(data_dir, name), 0),
        audit["stale"],
    )


def bulk_429(dataset: Path, node: LocalOpenSearch, writers: int = 6, n: int = 240) -> Outcome:
    """Parallel writers against a node whose write pool has one thread and a one-slot queue."""
    from lsrkit.core import IndexSpec
    from lsrkit.encoders import SparseDocEncoder
    from lsrkit.plugin import EncodedRecord
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    started = time.time()
    docs = [json.loads(line) for line in (Path(dataset) / "corpus.jsonl").read_text().splitlines()[:n]]
    encoder = SparseDocEncoder("splade-tiny")
    vectors = encoder.encode_documents([f"{d['title']} {d['text']}" for d in docs])
    records = [EncodedRecord(d["_id"], d["_id"], d["text"], v, d["title"]) for d, v in zip(docs, vectors)]
    backend = OpenSearchBackend(client_from_env(node.url), vocab=encoder.vocab, max_retries_429=30, initial_backoff=0.1, max_backoff=2.0)
    spec = IndexSpec("bulk-429", multivector_dim=None)
    backend.ensure_index(spec, recreate=True)
    results = []
    lock = threading.Lock()

    def writer(part: list[EncodedRecord]) -> None:
        for i in range(0, len(part), 4):  # many small bulks, so requests pile up in the queue
            result = backend.write(spec.name, part[i : i + 4])
            with lock:
                results.append(result)

    threads = [threading.Thread(target=writer, args=(records[k::writers],)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = sum(len(r.failed) for r in results)
    # the helper retries 429s without counting them: the node's own count of rejections says how many there were
    stats = backend.client.nodes.stats(metric="thread_pool")
    retried = sum(n["thread_pool"]["write"]["rejected"] for n in stats["nodes"].values())
    backend.close()
    audit = audit_opensearch(node.url, spec.name, {r.id for r in records})
    return Outcome(
        "bulk_429", len(records), audit.count, audit.duplicates, audit.lost, failed, retried, time.time() - started, {"writers": writers}, failed, audit.stale
    )


def _write_block(url: str, index: str, on: bool) -> None:
    """Set or lift OpenSearch's write block on the index, as an operator (or a full disk) does."""
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=node_urls(url), timeout=30)
    client.indices.put_settings(index=index, body={"index.blocks.write": on})
    client.close()


def _last_line(process: subprocess.Popen[bytes]) -> str:
    out = process.stdout.read().decode() if process.stdout else ""
    return " ".join(out.split())[-400:]


def lifecycle_outcome(scenario: str, url: str, name: str, docs: list[dict[str, Any]], state: Path, started: float, notes: dict[str, Any]) -> Outcome:
    audit = audit_lifecycle(url, name, docs)
    notes = {**notes, "statistics_exact": audit["statistics_exact"]}
    return Outcome(
        scenario,
        audit["passages_expected"],
        audit["passages_stored"],
        audit["duplicated"],
        audit["lost"],
        dead_letters(state),
        0,
        time.time() - started,
        notes,
        wrongly_dead_lettered(state, 0),
        audit["stale"],
    )


def write_block(dataset: Path, work: Path, node: LocalOpenSearch, *, lifted_after: float | None = 12.0, n: int = 240) -> Outcome:
    """A write block set on the index mid-job. Lifted after `lifted_after` s: the job rides it out
    (nothing dead-lettered, nothing lost). Never lifted (None): the job stops non-zero once its
    retries run out (--retry-for 6); lifted, then --resume finishes exactly."""
    started = time.time()
    name = "blocked-lifted" if lifted_after else "blocked-forever"
    docs, _ = make_corpus(dataset, n, work / f"{name}.jsonl", seed=17)
    data_dir, state = work / name, job_state_dir(work / name, name)
    extra = () if lifted_after else ("--retry-for", "6")
    process = spawn_ingest(work / f"{name}.jsonl", data_dir, name, "opensearch", node.url, *extra)
    at = wait_for_checkpoint(state, n // 4, process)
    _write_block(node.url, name, True)
    notes: dict[str, Any] = {"blocked_after_ordinal": at["next_ordinal"]}
    if lifted_after:
        time.sleep(lifted_after)
        _write_block(node.url, name, False)
        summary = finish(process)
        notes["retried_bulks"] = summary["retried"]
    else:
        process.wait(timeout=600)
        notes["exit_code_while_blocked"] = process.returncode
        notes["error"] = _last_line(process)
        # the job may pass a batch or two between the checkpoint seen above and the block taking hold
        notes["checkpoint_at_stop"] = json.loads((state / "checkpoint.json").read_text())["next_ordinal"]
        _write_block(node.url, name, False)
        notes["resumed_from"] = finish(spawn_ingest(work / f"{name}.jsonl", data_dir, name, "opensearch", node.url, resume=True))["resumed_from"]
    return lifecycle_outcome("write_block_lifted" if lifted_after else "write_block_never_lifted", node.url, name, docs, state, started, notes)


def second_writer(dataset: Path, work: Path, node: LocalOpenSearch, *, kind: str, n: int = 200) -> Outcome:
    """While a job writes the index, a second job (`kind` "ingest": another source, same state
    folder) or a delete starts on it: refused with the holder named, the first job unharmed."""
    started = time.time()
    name = f"second-{kind}"
    docs, _ = make_corpus(dataset, n, work / f"{name}.jsonl", seed=19)
    data_dir, state = work / name, job_state_dir(work / name, name)
    (work / f"{name}-other.jsonl").write_text("".join(json.dumps({**d, "_id": f"other-{d['_id']}"}) + "\n" for d in docs[:20]))
    process = spawn_ingest(work / f"{name}.jsonl", data_dir, name, "opensearch", node.url)
    wait_for_checkpoint(state, n // 4, process)
    if kind == "ingest":
        second = spawn_ingest(work / f"{name}-other.jsonl", data_dir, name, "opensearch", node.url)
    else:
        second = spawn_delete([d["_id"] for d in docs[:10]], data_dir, name, node.url)
    second.wait(timeout=600)
    refused = {"second_exit_code": second.returncode, "second_error": _last_line(second), "first_running_then": process.poll() is None}
    finish(process)
    return lifecycle_outcome(f"second_{kind}_refused", node.url, name, docs, state, started, refused)


def lease_holder_killed(dataset: Path, work: Path, node: LocalOpenSearch, *, timeout: float = 30.0, n: int = 200) -> Outcome:
    """The job holding the lease is SIGKILLed; the same job resumed from another machine (its own
    host name) is refused while the lease is fresh, and takes it over once `timeout` s passed."""
    started = time.time()
    name = "lease-killed"
    docs, _ = make_corpus(dataset, n, work / f"{name}.jsonl", seed=23)
    data_dir, state = work / name, job_state_dir(work / name, name)
    lease = ("--lease-timeout", str(timeout))
    process = spawn_ingest(work / f"{name}.jsonl", data_dir, name, "opensearch", node.url, *lease)
    at = wait_for_checkpoint(state, n // 4, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = time.time()
    early = spawn_ingest(work / f"{name}.jsonl", data_dir, name, "opensearch", node.url, *lease, resume=True, host="another-machine")
    early.wait(timeout=600)
    notes: dict[str, Any] = {"killed_after_ordinal": at["next_ordinal"], "early_exit_code": early.returncode, "early_after_s": round(time.time() - killed, 1)}
    notes["early_error"] = _last_line(early)
    time.sleep(max(0.0, killed + timeout + 1 - time.time()))
    summary = finish(spawn_ingest(work / f"{name}.jsonl", data_dir, name, "opensearch", node.url, *lease, resume=True, host="another-machine"))
    notes.update(taken_over_after_s=round(time.time() - killed, 1), resumed_from=summary["resumed_from"])
    return lifecycle_outcome("lease_holder_killed", node.url, name, docs, state, started, notes)


def bad_inputs(dataset: Path, work: Path, n: int = 60) -> Outcome:
    """On Qdrant Edge: a long document `x` and a short one `x#1` (ids that collided when a short
    document kept its id), a text with a lone surrogate (JSON), a CSV row that is not UTF-8: the
    two bad records dead-lettered, every valid passage indexed once."""
    started = time.time()
    lines = (Path(dataset) / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line) for line in lines[:n]]
    x = {"_id": "x", "title": "", "text": " ".join(d["text"] for d in docs[:6])}
    x1 = {"_id": "x#1", "title": "", "text": "a short document whose id is the second passage id of the long document x"}
    jsonl = [json.dumps(d) for d in [*docs, x, x1]]
    jsonl.insert(10, '{"_id": "surrogate", "text": "a lone \\ud800 surrogate"}')
    (work / "inputs.jsonl").write_text("\n".join(jsonl) + "\n", encoding="utf-8")
    rows = [json.loads(line) for line in lines[n : n + 20]]
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["_id", "title", "text"])
    writer.writerows([d["_id"], d["title"], d["text"]] for d in rows)
    good = table.getvalue().encode("utf-8").split(b"\n")
    (work / "inputs.csv").write_bytes(b"\n".join([*good[:6], b"latin1,,caf\xe9 au lait", *good[6:]]))  # one row in Latin-1
    data_dir, state = work / "inputs", job_state_dir(work / "inputs", "inputs")
    finish(spawn_ingest(work / "inputs.jsonl", data_dir, "inputs", "edge", None))
    dead_jsonl, wrong = dead_letters(state), wrongly_dead_lettered(state, 1)
    finish(spawn_ingest(work / "inputs.csv", data_dir, "inputs", "edge", None))
    dead_csv, wrong = dead_letters(state), wrong + wrongly_dead_lettered(state, 1)
    expected = expected_passages([*docs, x, x1, *rows])
    audit = audit_edge(data_dir / "edge", "inputs", expected)
    notes = {
        "dead_lettered_jsonl": dead_jsonl,
        "dead_lettered_csv": dead_csv,
        "bad_records": 2,
        "passages_of_x": sum(1 for p in expected if p.startswith("x#") and p != "x#1#0"),
    }
    return Outcome(
        "bad_inputs", len(expected), audit.count, audit.duplicates, audit.lost, dead_jsonl + dead_csv, 0, time.time() - started, notes, wrong, audit.stale
    )


SCENARIOS: tuple[str, ...] = (
    "malformed",
    "bad_inputs",
    "ingest_killed_edge",
    "ingest_killed_opensearch",
    "opensearch_killed",
    "update_delete_opensearch_killed",
    "write_block_lifted",
    "write_block_never_lifted",
    "second_ingest_refused",
    "second_delete_refused",
    "lease_holder_killed",
    "bulk_429",
)
CLUSTER_SCENARIOS = ("node_killed_during_ingest", "node_killed_during_delete", "node_killed_under_serve")  # bench/node_loss.py
SCENARIOS += CLUSTER_SCENARIOS


def run(*, dataset: Path, port: int = 9280, scenarios: list[str] | None = None) -> dict[str, Any]:
    wanted = scenarios or list(SCENARIOS)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="lsrkit-faults-") as tmp:
        work = Path(tmp)
        if "malformed" in wanted:
            outcomes.append(malformed(dataset, work))
        if "bad_inputs" in wanted:
            outcomes.append(bad_inputs(dataset, work))
        if "ingest_killed_edge" in wanted:
            outcomes.append(ingest_killed(dataset, work, "edge", None))
        needs_node = set(SCENARIOS[3:-4]) & set(wanted)  # ingest_killed_opensearch … lease_holder_killed
        if needs_node:
            node = LocalOpenSearch(port)
            node.wipe()
            node.start()
            try:
                if "ingest_killed_opensearch" in wanted:
                    outcomes.append(ingest_killed(dataset, work, "opensearch", node.url))
                if "opensearch_killed" in wanted:
                    outcomes.append(opensearch_killed(dataset, work, node))
                if "update_delete_opensearch_killed" in wanted:
                    outcomes.append(update_delete_killed(dataset, work, node))
                if "write_block_lifted" in wanted:
                    outcomes.append(write_block(dataset, work, node))
                if "write_block_never_lifted" in wanted:
                    outcomes.append(write_block(dataset, work, node, lifted_after=None))
                for kind in ("ingest", "delete"):
                    if f"second_{kind}_refused" in wanted:
                        outcomes.append(second_writer(dataset, work, node, kind=kind))
                if "lease_holder_killed" in wanted:
                    outcomes.append(lease_holder_killed(dataset, work, node))
            finally:
                node.stop()
                node.wipe()
        if "bulk_429" in wanted:
            node = LocalOpenSearch(port + 10, "-Ethread_pool.write.size=1 -Ethread_pool.write.queue_size=1")
            node.wipe()
            node.start()
            try:
                outcomes.append(bulk_429(dataset, node))
            finally:
                node.stop()
                node.wipe()
        if set(CLUSTER_SCENARIOS) & set(wanted):
            outcomes += _on_a_cluster(dataset, work, port - 20, [w for w in wanted if w in CLUSTER_SCENARIOS])
    return {"scenarios": {o.scenario: {k: v for k, v in asdict(o).items() if v is not None} for o in outcomes}, "machine": machine()}


def _on_a_cluster(dataset: Path, work: Path, port: int, wanted: list[str]) -> list[Outcome]:
    from lsrkit.bench import node_loss

    cluster = node_loss.LocalCluster(port)
    cluster.wipe()
    cluster.start()
    scenario: dict[str, Callable[[Path, Path, node_loss.LocalCluster], Outcome]] = {
        "node_killed_during_ingest": node_loss.node_killed_during_ingest,
        "node_killed_during_delete": node_loss.node_killed_during_delete,
        "node_killed_under_serve": node_loss.node_killed_under_serve,
    }
    try:
        return [scenario[name](dataset, work, cluster) for name in wanted]
    finally:
        cluster.stop()
        cluster.wipe()
