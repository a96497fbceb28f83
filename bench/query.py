"""`lsrkit bench query`: query latency of the sparse pipelines relative to BM25 on the same engine.

Same index, same queries, warm (every pipeline runs the query set once before it is timed);
the latency of a query is end to end: query encoding, engine round trips, rerank (the
candidates' compact token vectors read from the engine every time). On OpenSearch the rerank
is also set against k-NN's lateInteractionScore (bench/late_interaction.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from lsrkit.bench.common import DEFAULT_DATASET, machine


def run(
    *, dataset: Path = DEFAULT_DATASET, backend_kind: str = "opensearch", data_dir: Path = Path(".lsrkit"), url: str | None = None, rounds: int = 2
) -> dict[str, Any]:
    from lsrkit.eval_command import default_index
    from lsrkit.evaluation import load_beir
    from lsrkit.index import Index
    from lsrkit.jobs import ensure_ingested

    data = load_beir(dataset)
    index = default_index(dataset)
    target = Index(index, backend=backend_kind, data_dir=data_dir, url=url)  # type: ignore[arg-type]
    backend = target.backend
    try:
        ensure_ingested(target, data.corpus, progress=False)
        # the fused pipelines too (not in the targets): what the best-quality setups cost
        pipelines = {name: target.pipeline(name, k=10) for name in ("bm25", "sparse-idf", "sparse-idf+rerank", "hybrid", "hybrid+rerank")}
        queries = list(data.queries.values())
        samples: dict[str, list[float]] = {name: [] for name in pipelines}
        stages: dict[str, dict[str, list[float]]] = {name: {} for name in pipelines}
        for pipeline in pipelines.values():  # warm every pipeline on the whole query set
            for text in queries:
                pipeline.search(text, k=10)
        for _ in range(rounds):  # interleave pipelines so drift hits all of them alike
            for text in queries:
                for name, pipeline in pipelines.items():
                    start = time.perf_counter()
                    result = pipeline.search(text, k=10)
                    samples[name].append((time.perf_counter() - start) * 1000)
                    for stage, ms in result.timings_ms.items():
                        stages[name].setdefault(stage, []).append(ms)
        p50 = {name: float(np.percentile(v, 50)) for name, v in samples.items()}
        peer: dict[str, Any] = {}
        if backend_kind == "opensearch":
            from lsrkit.bench.late_interaction import compare

            peer = compare(backend, index, data, target.idf_encoder(), target.query_multivector_encoder(), kappa=pipelines["sparse-idf+rerank"].settings.kappa)
        p95 = {name: float(np.percentile(v, 95)) for name, v in samples.items()}
        return {
            "backend": backend.name,
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
            # OpenSearch k-NN's lateInteractionScore on the same candidates and query vectors
            **({"late_interaction": peer} if peer else {}),
            "machine": machine(),
        }
    finally:
        target.close()
