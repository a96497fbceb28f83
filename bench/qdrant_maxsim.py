"""Qdrant's own MaxSim beside lsrkit's rerank, on Qdrant Edge.

The engine scores multivectors itself (a dense multivector field, MaxSim comparator), but stores
at least a byte per dimension: its `uint8` datatype takes raw integers with no scale or offset,
so a float token vector keeps its scores only as float16 (768 B a token of 384 dims) — lsrkit's
codes take 16–24 B per original token (`pool3-1bit`, the default `pool2-rot1bit-d360`). This measures what that storage would buy in
speed: the same κ sparse candidates of the same queries, with the same query token vectors,
scored by the engine (float16 copies of the pooled token vectors the codes were made from, an
exact search restricted to the candidates' ids) and by lsrkit (codes read from the payload,
decoded and scored here). Quality: nDCG@10 of each pure MaxSim ranking, max-passage per document.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MULTIVECTOR = "tokens"


def compare(backend: Any, index: str, dataset: Any, idf: Any, multivector: Any, *, queries: int = 20, kappa: int = 100) -> dict[str, Any]:
    import qdrant_edge as qe

    from lsrkit.core.config import RerankSettings
    from lsrkit.evaluation import score_run
    from lsrkit.plugin import aggregate_passages, index_codec, search_sparse
    from lsrkit.plugin.codec import pool_tokens
    from lsrkit.plugin.qdrant_layout import point_id
    from lsrkit.plugin.rerank import MaxSimReranker

    codec = index_codec(backend, index)
    qids = sorted(q for q in dataset.queries if q in dataset.qrels)[:queries]
    candidates = {q: search_sparse(backend, index, idf.encode_queries([dataset.queries[q]])[0], kappa) for q in qids}
    passages = {h.id: f"{h.title} {h.text}".strip() for hits in candidates.values() for h in hits}
    ids = sorted(passages)
    factor = codec.representation.pool
    vectors = {i: pool_tokens(mv.vectors, factor) if factor > 1 else mv.vectors for i, mv in zip(ids, multivector.encode_documents([passages[i] for i in ids]))}
    params = qe.EdgeVectorParams(
        size=codec.dim,
        distance=qe.Distance.Dot,
        multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
        datatype=qe.VectorStorageDatatype.Float16,
    )
    reranker = MaxSimReranker(RerankSettings(kappa=kappa, k=kappa))
    with tempfile.TemporaryDirectory(prefix="lsrkit-qdrant-maxsim-") as folder:
        shard = qe.EdgeShard.create(str(Path(folder) / "shard"), qe.EdgeConfig(vectors={MULTIVECTOR: params}, sparse_vectors=None))
        try:
            for start in range(0, len(ids), 64):
                batch = ids[start : start + 64]
                shard.update(qe.UpdateOperation.upsert_points([qe.Point(point_id(i), {MULTIVECTOR: vectors[i].tolist()}, {"id": i}) for i in batch]))
            shard.flush()
            ours_ms: list[float] = []
            engine_ms: list[float] = []
            runs: dict[str, dict[str, dict[str, float]]] = {"lsrkit": {}, "engine": {}}
            for timed in (False, True):  # one untimed pass warms both sides
                for qid in qids:
                    hits = candidates[qid]
                    by_point = {point_id(h.id): h for h in hits}
                    query = multivector.encode_queries([dataset.queries[qid]])[0].vectors
                    start_ours = time.perf_counter()
                    stored = backend.fetch_multivectors(index, [h.id for h in hits])
                    ours = reranker.rerank(query, hits, {i: codec.decode(b) for i, b in stored.items()})
                    middle = time.perf_counter()
                    request = qe.QueryRequest(
                        limit=len(hits),
                        query=qe.Query.Nearest(query.tolist(), using=MULTIVECTOR),
                        filter=qe.Filter(must=[qe.HasIdCondition(set(by_point))]),
                        params=qe.SearchParams(exact=True),
                        with_payload=False,
                    )
                    scored = shard.query(request)
                    end = time.perf_counter()
                    if timed:
                        ours_ms.append((middle - start_ours) * 1000)
                        engine_ms.append((end - middle) * 1000)
                    theirs = [by_point[str(p.id)].evolve(score=float(p.score)) for p in scored]
                    runs["lsrkit"][qid] = {h.id: h.score for h in aggregate_passages(ours)}
                    runs["engine"][qid] = {h.id: h.score for h in aggregate_passages(theirs)}
        finally:
            shard.close()
    qrels = {q: dataset.qrels[q] for q in qids}
    ours_p50, engine_p50 = float(np.percentile(ours_ms, 50)), float(np.percentile(engine_ms, 50))
    return {
        "queries": len(qids),
        "kappa": kappa,
        "passages_indexed": len(ids),
        "representation": codec.name,
        "lsrkit_bytes_per_token": codec.representation.bytes_per_token(codec.dim) / max(1, factor),
        "engine_bytes_per_token": 2 * codec.dim / max(1, factor),
        "lsrkit_rerank_p50_ms": round(ours_p50, 2),
        "engine_maxsim_p50_ms": round(engine_p50, 2),
        "ratio_engine_vs_lsrkit": round(engine_p50 / ours_p50, 2),
        "ndcg10_lsrkit": round(score_run(runs["lsrkit"], qrels)["ndcg10"], 4),
        "ndcg10_engine": round(score_run(runs["engine"], qrels)["ndcg10"], 4),
    }
