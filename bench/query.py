"""`lsrkit bench query`: query latency of the sparse pipelines relative to BM25 on the same engine.

Same index, same queries, warm (every pipeline runs the query set once before it is timed);
the latency of a query is end to end: query encoding, engine round trips, rerank. On OpenSearch
the candidates' codes come from the adapter's CodeCache once it holds them (checked against the
engine's digests); the rerank is also timed reading every candidate's codes from the engine (no
cache: what the cache saves), the cache's hit rate is measured on the test queries after the
*train* queries alone filled it (traffic it has not seen), and the rerank is set against k-NN's
lateInteractionScore (bench/late_interaction.py). On Qdrant Edge it is set against the engine's
own MaxSim (bench/qdrant_maxsim.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from lsrkit.bench.common import machine, time_pipelines
from lsrkit.core.config import DEFAULT_DATA_DIR


def run(
    *, dataset: Path, backend_kind: str = "opensearch", index: str | None = None, data_dir: Path = DEFAULT_DATA_DIR, url: str | None = None, rounds: int = 2
) -> dict[str, Any]:
    from lsrkit.eval_command import default_index
    from lsrkit.evaluation import load_beir
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index
    from lsrkit.jobs import ensure_ingested

    data = load_beir(dataset)
    named_by_user = index is not None
    index = index or default_index(dataset)
    target = Index(index, backend=BackendOptions(backend_kind, data_dir=data_dir, url=url))  # type: ignore[arg-type]
    backend = target.backend
    try:
        ensure_ingested(target, data.corpus, progress=False, named_by_user=named_by_user)
        # the fused pipelines too (not in the targets): what the best-quality setups cost
        pipelines = {name: target.pipeline(name) for name in ("bm25", "sparse-idf", "sparse-idf+rerank", "hybrid", "hybrid+rerank")}
        uncached = _without_cache(target) if backend_kind == "opensearch" else None
        if uncached is not None:
            pipelines[UNCACHED] = uncached.pipeline("sparse-idf+rerank")
        queries = list(data.queries.values())
        samples, stages = time_pipelines(pipelines, queries, rounds=rounds)
        p50 = {name: float(np.percentile(v, 50)) for name, v in samples.items()}
        peer: dict[str, Any] = {}
        cache: dict[str, Any] = {}
        if uncached is not None:
            uncached.close()
            cache = {
                "bytes_held": backend.code_cache.bytes_held,  # type: ignore[attr-defined]
                # the timed queries ran before (warm pass): every candidate held, the most the cache saves
                "saves_on_repeated_queries": round(1 - p50["sparse-idf+rerank"] / p50[UNCACHED], 3),
                "unseen_queries": _unseen_queries(dataset, index, url),
            }
        if backend_kind == "edge":
            from lsrkit.bench import qdrant_maxsim

            peer = qdrant_maxsim.compare(
                backend, index, data, target.idf_encoder(), target.query_multivector_encoder(), kappa=pipelines["sparse-idf+rerank"].settings.kappa
            )
        if backend_kind == "opensearch":
            from lsrkit.bench.late_interaction import compare

            peer = compare(backend, index, data, target.idf_encoder(), target.query_multivector_encoder(), kappa=pipelines["sparse-idf+rerank"].settings.kappa)
        p95 = {name: float(np.percentile(v, 95)) for name, v in samples.items()}
        return {
            "backend": backend.name,
            "index": index,
            "shards": target.spec().shards,
            "replicas": target.spec().replicas,
            "dataset": str(dataset),
            "queries": len(queries),
            "rounds": rounds,
            "kappa": pipelines["sparse-idf+rerank"].settings.kappa,
            "p50_ms": {k: round(v, 2) for k, v in p50.items()},
            "p95_ms": {k: round(v, 2) for k, v in p95.items()},
            # where each pipeline's time goes (p50 of each stage on its own; they need not sum to the total's p50)
            "stage_p50_ms": {name: {stage: round(float(np.percentile(v, 50)), 2) for stage, v in by_stage.items()} for name, by_stage in stages.items()},
            "ratio_sparse_vs_bm25": round(p50["sparse-idf"] / p50["bm25"], 3),
            "ratio_rerank_vs_bm25": round(p50["sparse-idf+rerank"] / p50["bm25"], 3),
            "ratio_hybrid_vs_bm25": round(p50["hybrid"] / p50["bm25"], 3),
            "ratio_hybrid_rerank_vs_bm25": round(p50["hybrid+rerank"] / p50["bm25"], 3),
            **({"ratio_rerank_without_cache_vs_bm25": round(p50[UNCACHED] / p50["bm25"], 3), "code_cache": cache} if cache else {}),
            # on the same candidates and query vectors: OpenSearch k-NN's lateInteractionScore,
            # or Qdrant's own MaxSim (Edge)
            **({"late_interaction" if backend_kind == "opensearch" else "engine_maxsim": peer} if peer else {}),
            "machine": machine(),
        }
    finally:
        target.close()


UNCACHED = "sparse-idf+rerank (every code read from the engine)"


def _without_cache(target: Any) -> Any:
    """The same index through an adapter that keeps no codes."""
    from lsrkit.index import Index
    from lsrkit.plugin.code_cache import CodeCache
    from lsrkit.plugin.opensearch import OpenSearchBackend

    backend = OpenSearchBackend(target.backend.client, vocab=target.backend.vocab, code_cache=CodeCache(0))
    return Index(target.name, backend=backend)


def _unseen_queries(dataset: Path, index: str, url: str | None) -> dict[str, Any]:
    """The cache as traffic it has not seen meets it: a fresh adapter whose cache only the train
    queries filled, on the test queries, against the same pass without a cache (interleaved)."""
    from lsrkit.evaluation import load_beir
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index

    try:
        train = list(load_beir(dataset, split="train").queries.values())
    except Exception as exc:  # noqa: BLE001 - a dataset without a train split: nothing to warm with
        return {"skipped": f"no train split to warm the cache with ({exc})"}
    test = list(load_beir(dataset).queries.values())
    with Index(index, backend=BackendOptions("opensearch", url=url)) as fresh:
        pipeline = fresh.pipeline("sparse-idf+rerank")
        for text in train:
            pipeline.search(text, k=10)
        cache = fresh.backend.code_cache  # type: ignore[attr-defined]
        before = (cache.found, cache.looked_up)
        uncached = _without_cache(fresh)
        plain = uncached.pipeline("sparse-idf+rerank")
        latencies: dict[str, list[float]] = {"cached": [], "uncached": []}
        for text in test:
            for name, each in (("cached", pipeline), ("uncached", plain)):
                start = time.perf_counter()
                each.search(text, k=10)
                latencies[name].append((time.perf_counter() - start) * 1000)
        uncached.close()
        return {
            "warmed_by_train_queries": len(train),
            "test_queries": len(test),
            "hit_rate": round((cache.found - before[0]) / max(1, cache.looked_up - before[1]), 4),
            "bytes_held": cache.bytes_held,
            "p50_ms": round(float(np.percentile(latencies["cached"], 50)), 2),
            "p50_ms_without_cache": round(float(np.percentile(latencies["uncached"], 50)), 2),
        }
