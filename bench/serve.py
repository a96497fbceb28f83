"""`lsrkit bench serve`: the query path through `lsrkit serve` against the same pipelines called
in-process and against BM25 sent straight to the same OpenSearch.

At each concurrency, for `sparse-idf+rerank` and `hybrid+rerank`: queries/s and p50/p99 latency
through the service (a real server in a subprocess, HTTP + JSON), the same pipelines in this
process (threads, same concurrency), and BM25 (opensearch-py `search`, a match query on the
text field) — then an overload phase far past the service's bound: how many 5xx (the target is
none), how many were turned away (429/503), and the longest queue wait the service reported.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lsrkit.bench.common import machine
from lsrkit.core.config import DEFAULT_DATA_DIR, opensearch_url

PIPELINES = {"rerank": "sparse-idf+rerank", "hybrid_rerank": "hybrid+rerank"}
K = 10


def load_queries(dataset: Path, n: int) -> list[str]:
    """The first n queries of a BEIR queries.jsonl (the packaged subset when the folder is absent)."""
    path = Path(dataset) / "queries.jsonl"
    if not path.is_file():
        from lsrkit.quickstart import dataset_dir

        path = dataset_dir() / "queries.jsonl"
    with path.open(encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle]
    return texts[:n]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _phase(call: Callable[[str], Any], queries: list[str], concurrency: int) -> dict[str, Any]:
    """Every query once, `concurrency` at a time: throughput and latency percentiles."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def one(text: str) -> None:
        nonlocal failures
        start = time.perf_counter()
        ok = call(text)
        elapsed = (time.perf_counter() - start) * 1000.0
        with lock:
            latencies.append(elapsed)
            failures += 0 if ok is not False else 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, queries))
    wall = time.perf_counter() - started
    return {
        "qps": round(len(queries) / wall, 2),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "failures": failures,
    }


class _Service:
    """`lsrkit serve` in a subprocess on a free port."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lsrkit.cli", "serve", "--port", str(self.port), "--no-access-log", *args], stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lsrkit serve exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"lsrkit serve did not come up in {timeout:.0f} s")

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _overload(url: str, queries: list[str], concurrency: int, rounds: int) -> dict[str, Any]:
    import httpx

    statuses: list[int] = []
    waits: list[tuple[int, float]] = []
    transport_errors = 0
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        nonlocal transport_errors
        with httpx.Client(timeout=60) as client:
            for n in range(rounds):
                text = queries[(offset * rounds + n) % len(queries)]
                try:
                    response = client.post(url + "/search", json={"text": text, "pipeline": "hybrid+rerank", "k": K})
                except httpx.HTTPError:
                    with lock:
                        transport_errors += 1
                    continue
                with lock:
                    statuses.append(response.status_code)
                    if "x-lsrkit-queue-ms" in response.headers:
                        waits.append((response.status_code, float(response.headers["x-lsrkit-queue-ms"])))

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "concurrency": concurrency,
        "requests": len(statuses) + transport_errors,
        "status_200": statuses.count(200),
        "status_5xx": sum(1 for s in statuses if s >= 500),
        "status_429_503": sum(1 for s in statuses if s in (429, 503)),
        "status_other": sum(1 for s in statuses if s != 200 and s != 429 and s < 500),
        "transport_errors": transport_errors,
        # the longest wait for a slot the service reported, over every answer and over the requests served
        "max_wait_ms": round(max(w for _, w in waits), 1) if waits else None,
        "max_wait_served_ms": round(max((w for s, w in waits if s == 200), default=0.0), 1),
    }


def run(
    *,
    dataset: Path,
    backend_kind: str = "opensearch",
    data_dir: Path = DEFAULT_DATA_DIR,
    url: str | None = None,
    index: str | None = None,
    concurrency: tuple[int, ...] = (1, 4, 16),
    queries: int = 200,
    overload_concurrency: int = 64,
    overload_rounds: int = 4,
    max_queue: int = 32,
    queue_timeout_ms: int = 1000,
    max_in_flight: int | None = None,
) -> dict[str, Any]:
    import httpx

    from lsrkit.core.errors import ConfigError
    from lsrkit.eval_command import default_index
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index
    from lsrkit.jobs import ensure_ingested
    from lsrkit.plugin.opensearch import bm25_query
    from lsrkit.service.served import ServedIndex

    if backend_kind != "opensearch":
        raise ConfigError("bench serve measures BM25 straight to OpenSearch beside the service: --backend opensearch")
    url = opensearch_url(url)
    texts = load_queries(dataset, queries)
    target = Index(index or default_index(dataset), backend=BackendOptions("opensearch", data_dir=data_dir, url=url))
    if index is None:  # the dataset's own index, built like `bench query` builds it
        from lsrkit.evaluation import load_beir

        ensure_ingested(target, load_beir(dataset).corpus, progress=False)
    index = target.name
    in_process_index = ServedIndex(target)
    from lsrkit.plugin.opensearch import client_from_env

    bm25_client = client_from_env(url, ca_certs=os.environ.get("LSRKIT_CA_CERTS"))
    args = ["--backend", "opensearch", "--url", url, "--index", index, "--data-dir", str(data_dir)]
    args += ["--max-queue", str(max_queue), "--queue-timeout-ms", str(queue_timeout_ms)]
    args += ["--max-in-flight", str(max_in_flight)] if max_in_flight else []
    log = Path(tempfile.mkdtemp(prefix="lsrkit-bench-serve-")) / "serve.log"
    service = _Service(args, log)
    local = threading.local()

    def through_service(pipeline: str) -> Callable[[str], bool]:
        def call(text: str) -> bool:
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=60)
            response = local.client.post(service.url + "/search", json={"text": text, "pipeline": pipeline, "k": K})
            return response.status_code == 200

        return call

    def in_process(pipeline: str) -> Callable[[str], bool]:
        def call(text: str) -> bool:
            in_process_index.search(pipeline, text, K, None)
            return True

        return call

    def bm25(text: str) -> bool:
        bm25_client.search(index=index, body={"query": bm25_query(text), "size": K, "_source": ["title", "text"]})
        return True

    try:
        service.wait_ready()
        warm = texts[: min(len(texts), 20)]
        for pipeline in PIPELINES.values():  # warm both sides and the engine's caches
            _phase(through_service(pipeline), warm, 2)
            _phase(in_process(pipeline), warm, 2)
        _phase(bm25, warm, 2)
        by_concurrency: dict[str, dict[str, Any]] = {}
        for c in concurrency:
            row: dict[str, Any] = {}
            for key, pipeline in PIPELINES.items():
                served = _phase(through_service(pipeline), texts, c)
                local_run = _phase(in_process(pipeline), texts, c)
                row.update(
                    {f"{key}_qps": served["qps"], f"{key}_p50_ms": served["p50_ms"], f"{key}_p99_ms": served["p99_ms"], f"{key}_failures": served["failures"]}
                )
                row.update(
                    {f"{key}_inprocess_qps": local_run["qps"], f"{key}_inprocess_p50_ms": local_run["p50_ms"], f"{key}_inprocess_p99_ms": local_run["p99_ms"]}
                )
                row[f"{key}_service_vs_inprocess"] = round(served["qps"] / local_run["qps"], 3) if local_run["qps"] else None
                row[f"{key}_p99_over_p50"] = round(served["p99_ms"] / served["p50_ms"], 2) if served["p50_ms"] else None
            direct = _phase(bm25, texts, c)
            row.update({"bm25_direct_qps": direct["qps"], "bm25_direct_p50_ms": direct["p50_ms"], "bm25_direct_p99_ms": direct["p99_ms"]})
            row["rerank_vs_bm25_qps"] = round(row["rerank_qps"] / direct["qps"], 3) if direct["qps"] else None
            row["hybrid_rerank_vs_bm25_qps"] = round(row["hybrid_rerank_qps"] / direct["qps"], 3) if direct["qps"] else None
            by_concurrency[str(c)] = row
        overload = {**_overload(service.url, texts, overload_concurrency, overload_rounds), "queue_timeout_ms": queue_timeout_ms, "max_queue": max_queue}
        exit_status = service.stop()
        return {
            "backend": "opensearch",
            "index": index,
            "dataset": str(dataset),
            "queries": len(texts),
            "k": K,
            "service_settings": {"max_in_flight": max_in_flight or "cores", "max_queue": max_queue, "queue_timeout_ms": queue_timeout_ms, "workers": 1},
            "by_concurrency": by_concurrency,
            "overload": overload,
            "service_exit_status": exit_status,
            "machine": machine(),
        }
    finally:
        if service.process.poll() is None:
            service.stop()
        in_process_index.close()
        bm25_client.close()
