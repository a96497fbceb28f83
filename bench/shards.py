"""`lsrkit bench shards`: one corpus in 1 and in N primary shards of the same OpenSearch cluster.

Each shard scores BM25 with its own term statistics (OpenSearch's default query_then_fetch), so
a corpus split over shards can rank differently from one shard, most on small or skewed corpora.
lsrkit's sparse runs use the corpus statistics lsrkit keeps itself (rank_feature scores carry no
per-shard statistics), so only the BM25 run and the pipelines that fuse it can move.

For each shard count the index `<dataset>-<N>shards` is built (or reused: an earlier `lsrkit
ingest` of the same corpus into that name, local or Ray, counts), every pipeline runs the test
queries once for quality (nDCG@10 per query, Recall@100), then the pipelines of every index are
timed interleaved query by query (warm, k=10). Each count's nDCG@10 is set against the first
count's with the paired bootstrap interval (95 %) of the per-query differences: a difference whose
interval excludes 0 is one that sampling alone does not explain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lsrkit.bench.common import machine, time_pipelines
from lsrkit.core.config import DEFAULT_DATA_DIR
from lsrkit.core.errors import ConfigError

PIPELINES = ("bm25", "sparse-idf", "hybrid", "hybrid+rerank")


def run(
    *,
    dataset: Path,
    url: str | None = None,
    shards: tuple[int, ...] = (1, 3),
    replicas: int = 1,
    pipelines: tuple[str, ...] = PIPELINES,
    data_dir: Path = DEFAULT_DATA_DIR,
    rounds: int = 2,
) -> dict[str, Any]:
    from lsrkit.eval_command import default_index
    from lsrkit.evaluation import bootstrap_interval, load_beir, per_query_ndcg10, run_queries, score_run
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index
    from lsrkit.jobs import ensure_ingested

    data = load_beir(dataset)
    options = BackendOptions("opensearch", data_dir=data_dir, url=url)
    indexes = {n: Index(f"{default_index(dataset)}-{n}shards", backend=options, shards=n, replicas=replicas) for n in shards}
    try:
        built: dict[str, Any] = {}
        for n, target in indexes.items():
            _refuse_other_layout(target, n, replicas)  # before anything is ingested or dropped
            summary = ensure_ingested(target, data.corpus, progress=False)
            stored = target.backend.spec(target.name)
            built[str(n)] = {"index": target.name, "primary_shards": stored.shards, "replicas": stored.replicas, "passages": target.count()}
            built[str(n)]["ingest_seconds"] = round(summary.seconds, 1) if summary else None
        quality: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in pipelines}
        timed: dict[str, Any] = {}
        for n, target in indexes.items():
            for name in pipelines:
                pipeline = target.pipeline(name)
                ranked, _ = run_queries(pipeline, data.queries, k=100)
                quality[name][n] = {"metrics": score_run(ranked, data.qrels), "per_query": per_query_ndcg10(ranked, data.qrels)}
                timed[f"{name}@{n}"] = pipeline
        samples, _ = time_pipelines(timed, list(data.queries.values()), rounds=rounds)
        first = shards[0]
        report: dict[str, Any] = {}
        for name in pipelines:
            report[name] = {}
            for n in shards:
                metrics, per_query = quality[name][n]["metrics"], quality[name][n]["per_query"]
                latency = samples[f"{name}@{n}"]
                entry: dict[str, Any] = {
                    "ndcg10": round(metrics["ndcg10"], 4),
                    "recall100": round(metrics["recall100"], 4),
                    "p50_ms": round(float(np.percentile(latency, 50)), 2),
                    "p99_ms": round(float(np.percentile(latency, 99)), 2),
                }
                if n != first:
                    base = quality[name][first]["per_query"]
                    deltas = [per_query[q] - base[q] for q in base]
                    low, high = bootstrap_interval(deltas)
                    entry["ndcg10_delta_vs_1st"] = round(float(np.mean(deltas)), 4)
                    entry["delta_interval95"] = [round(low, 4), round(high, 4)]
                    entry["queries_ndcg10_changed"] = sum(1 for d in deltas if abs(d) > 1e-9)
                    entry["outside_interval"] = not (low <= 0.0 <= high)
                report[name][str(n)] = entry
        return {
            "dataset": str(dataset),
            "queries": len(data.queries),
            "nodes": int(indexes[first].backend.client.cluster.health()["number_of_nodes"]),  # type: ignore[attr-defined]
            "indexes": built,
            "pipelines": report,
            "rounds": rounds,
            "machine": machine(),
        }
    finally:
        for target in indexes.values():
            target.close()


def _refuse_other_layout(target: Any, shards: int, replicas: int) -> None:
    """A kept index of the bench's name made with another layout is refused, not rebuilt: it may be
    the only copy of an ingest the user ran under that name."""
    from lsrkit.core.errors import IndexMissingError

    try:
        stored = target.backend.spec(target.name)
    except IndexMissingError:
        return
    if (stored.shards, stored.replicas) != (shards, replicas):
        raise ConfigError(
            f"index {target.name!r} has {stored.shards} shards and {stored.replicas} replicas, not {shards} and {replicas}: "
            "delete it from the cluster first (the bench builds `<dataset>-<N>shards` itself)"
        )
