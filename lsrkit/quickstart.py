"""`lsrkit quickstart`: the main job end to end on a small real corpus shipped with lsrkit.

Ingests scifact-mini into Qdrant Edge (a local folder), runs its judged queries through the
inference-free sparse first stage alone and with the MaxSim rerank, prints nDCG@10 for both, and
shows one query's hits: which are judged relevant, and where the rerank moved them from.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

from lsrkit.evaluation import evaluate_pipeline, load_beir
from lsrkit.factory import BackendOptions
from lsrkit.index import Index
from lsrkit.jobs import ensure_ingested

INDEX = "scifact-mini"
FIRST_STAGE, RERANKED = "sparse-idf", "sparse-idf+rerank"


def dataset_dir() -> Path:
    return Path(str(resources.files("lsrkit") / "data" / "scifact-mini"))


def run_quickstart(data_dir: Path, *, progress: bool | None = None, fresh: bool = False, shown: int = 5) -> dict[str, Any]:
    dataset = load_beir(dataset_dir())
    started = time.perf_counter()
    with Index(INDEX, backend=BackendOptions("edge", data_dir=data_dir)) as index:
        summary = ensure_ingested(index, dataset.corpus, reingest=fresh, progress=progress)
        ingested = summary.documents if summary else sum(1 for _ in dataset.corpus.open())
        ingest_seconds = time.perf_counter() - started
        sparse_only = evaluate_pipeline(FIRST_STAGE, index.pipeline(FIRST_STAGE), dataset)
        reranked = evaluate_pipeline(RERANKED, index.pipeline(RERANKED), dataset)
        query_id, example_query = next(iter(dataset.queries.items()))
        relevant = {doc for doc, grade in dataset.qrels.get(query_id, {}).items() if grade > 0}
        depth = index.pipeline(RERANKED).settings.kappa  # the candidates the rerank sees
        first_ranks = {hit.id: rank for rank, hit in enumerate(index.search(example_query, pipeline=FIRST_STAGE, k=depth), 1)}
        hits = index.search(example_query, pipeline=RERANKED, k=shown)
        return {
            "backend": "edge",
            "data_dir": str(data_dir),
            "docs_ingested": ingested,
            "index_points": index.count(),
            "ingest_seconds": round(ingest_seconds, 2),
            "queries": len(dataset.queries),
            "ndcg10_sparse": round(sparse_only.metrics["ndcg10"], 4),
            "ndcg10_rerank": round(reranked.metrics["ndcg10"], 4),
            "query_ms_p50": round(reranked.latency_ms["total"]["p50"], 2),
            "query_ms_p50_sparse": round(sparse_only.latency_ms["total"]["p50"], 2),
            "example": {
                "query": example_query,
                "relevant": sorted(relevant),
                "first_stage_depth": depth,
                "hits": [
                    {"id": h.id, "score": round(h.score, 4), "title": h.title, "relevant": h.id in relevant, "first_stage_rank": first_ranks.get(h.id)}
                    for h in hits
                ],
            },
        }
