"""`lsrkit quickstart`: the main job end to end on a small real corpus shipped with lsrkit.

Ingests scifact-mini into Qdrant Edge (a local folder), runs its judged queries through the
inference-free sparse first stage alone and with the MaxSim rerank, prints nDCG@10 for both.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from typing import Any

from lsrkit.evaluation import evaluate_pipeline, load_beir
from lsrkit.factory import BackendOptions, ModelChoice, build_pipeline, document_encoders, idf_query_encoder, open_backend
from lsrkit.jobs import ensure_ingested

INDEX = "scifact-mini"


def dataset_dir() -> Path:
    return Path(str(resources.files("lsrkit") / "data" / "scifact-mini"))


def run_quickstart(data_dir: Path, *, progress: bool | None = None, fresh: bool = False) -> dict[str, Any]:
    dataset = load_beir(dataset_dir())
    backend = open_backend(BackendOptions(kind="edge", data_dir=data_dir))
    state_dir = data_dir / "state" / INDEX
    models = ModelChoice()
    sparse, multivector = document_encoders(models)
    started = time.perf_counter()
    ingested = 0
    try:
        summary = ensure_ingested(backend, INDEX, dataset.corpus, state_dir, (sparse, multivector), reingest=fresh, progress=progress)
        ingested = summary.documents if summary else sum(1 for _ in dataset.corpus.open())
        ingest_seconds = time.perf_counter() - started
        idf = idf_query_encoder(backend, INDEX, models.sparse)
        sparse_only = evaluate_pipeline("sparse-idf", build_pipeline("sparse-idf", backend, INDEX, idf_encoder=idf, multivector=None), dataset)
        reranked = evaluate_pipeline(
            "sparse-idf+rerank", build_pipeline("sparse-idf+rerank", backend, INDEX, idf_encoder=idf, multivector=multivector), dataset
        )
        example_query = next(iter(dataset.queries.values()))
        pipeline = build_pipeline("sparse-idf+rerank", backend, INDEX, idf_encoder=idf, multivector=multivector, k=10)
        hits = pipeline.search(example_query, k=3).hits
        return {
            "backend": "edge",
            "data_dir": str(data_dir),
            "docs_ingested": ingested,
            "index_points": backend.count(INDEX),
            "ingest_seconds": round(ingest_seconds, 2),
            "queries": len(dataset.queries),
            "ndcg10_sparse": round(sparse_only.metrics["ndcg10"], 4),
            "ndcg10_rerank": round(reranked.metrics["ndcg10"], 4),
            "query_ms_p50": round(reranked.latency_ms["total"]["p50"], 2),
            "query_ms_p50_sparse": round(sparse_only.latency_ms["total"]["p50"], 2),
            "example": {"query": example_query, "hits": [{"id": h.id, "score": round(h.score, 4), "title": h.title} for h in hits]},
        }
    finally:
        backend.close()
