"""The in-engine peer of lsrkit's rerank: OpenSearch k-NN's `lateInteractionScore` rescoring.

Both rerank the same κ sparse candidates of the same queries with the same query token vectors:
lsrkit reads the candidates' compact codes from doc values and scores them here; the peer
scores float token vectors kept in `_source` (as its documentation asks: an `object` field,
`enabled: false`) inside a `script_score` over the candidates' ids. The peer is given two sets
of document vectors: the very vectors lsrkit's codes stand for (the codes decoded to floats:
the same scores up to lsrkit's 7-bit rounding of the query for its integer GEMM, so near-equal
nDCG@10, and the latency compared at equal quality), and the encoder's
float vectors before pooling and quantization (what compression costs a pure MaxSim). Latency
is the rerank step alone on each side (lsrkit: fetch + decode + MaxSim; peer: its search round
trip); quality is nDCG@10 of the pure MaxSim rankings (no interpolation), max-passage per
document.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

SCRIPT = "lateInteractionScore(params.query_vectors, params.field, params._source, params.space_type)"
PEER_FIELDS = {"late_interaction": "decoded", "late_interaction_float": "float"}  # result key: field


def has_late_interaction(client: Any) -> bool:
    return any(p.get("component") == "opensearch-knn" for p in client.cat.plugins(format="json"))


def compare(backend: Any, index: str, dataset: Any, idf: Any, multivector: Any, *, queries: int = 20, kappa: int = 50) -> dict[str, Any]:
    from opensearchpy import helpers

    from lsrkit.core.config import RerankSettings
    from lsrkit.evaluation import score_run
    from lsrkit.plugin import aggregate_passages, index_codec, search_sparse
    from lsrkit.plugin.codec import as_floats
    from lsrkit.plugin.rerank import MaxSimReranker

    client = backend.client
    if not has_late_interaction(client):
        return {"skipped": "the OpenSearch node has no k-NN plugin (docker/opensearch-local.sh installs it)"}
    qids = sorted(q for q in dataset.queries if q in dataset.qrels)[:queries]
    candidates = {q: search_sparse(backend, index, idf.encode_queries([dataset.queries[q]])[0], kappa) for q in qids}
    passages = {h.id: f"{h.title} {h.text}".strip() for hits in candidates.values() for h in hits}
    ids = sorted(passages)
    codec = index_codec(backend, index)
    floats = dict(zip(ids, (mv.vectors for mv in multivector.encode_documents([passages[i] for i in ids]))))
    decoded = {i: as_floats(codec.decode(b)) for i, b in backend.fetch_multivectors(index, ids).items()}
    peer = f"{index}-late-interaction"
    client.indices.delete(index=peer, ignore_unavailable=True)
    fields = {field: {"type": "object", "enabled": False} for field in PEER_FIELDS.values()}
    client.indices.create(index=peer, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": {"properties": fields}})
    try:
        actions = ({"_index": peer, "_id": i, "_source": {"float": np.round(floats[i], 5).tolist(), "decoded": np.round(decoded[i], 5).tolist()}} for i in ids)
        # float vectors as JSON are ~0.6 MB a passage: small bulks stay under a small heap's request breaker
        helpers.bulk(client, actions, chunk_size=4, max_chunk_bytes=16 * 1024 * 1024, request_timeout=120)
        client.indices.refresh(index=peer)
        reranker = MaxSimReranker(RerankSettings(kappa=kappa, k=kappa))
        lsrkit_ms: list[float] = []
        peer_ms: dict[str, list[float]] = {key: [] for key in PEER_FIELDS}
        runs: dict[str, dict[str, dict[str, float]]] = {"lsrkit": {}, **{key: {} for key in PEER_FIELDS}}
        for timed in (False, True):  # one untimed pass warms both sides
            for qid in qids:
                hits = candidates[qid]
                by_id = {h.id: h for h in hits}
                query = multivector.encode_queries([dataset.queries[qid]])[0].vectors
                start = time.perf_counter()
                stored = backend.fetch_multivectors(index, [h.id for h in hits])
                ours = reranker.rerank(query, hits, {i: codec.decode(b) for i, b in stored.items()})
                if timed:
                    lsrkit_ms.append((time.perf_counter() - start) * 1000)
                runs["lsrkit"][qid] = {h.id: h.score for h in aggregate_passages(ours)}
                for key, field in PEER_FIELDS.items():
                    params = {"query_vectors": query.tolist(), "space_type": "innerproduct", "field": field}
                    body = {
                        "size": len(hits),
                        "_source": False,
                        "query": {"script_score": {"query": {"ids": {"values": list(by_id)}}, "script": {"source": SCRIPT, "params": params}}},
                    }
                    start = time.perf_counter()
                    response = client.search(index=peer, body=body, request_timeout=120)
                    if timed:
                        peer_ms[key].append((time.perf_counter() - start) * 1000)
                    theirs = [by_id[item["_id"]].evolve(score=float(item["_score"])) for item in response["hits"]["hits"]]
                    runs[key][qid] = {h.id: h.score for h in aggregate_passages(theirs)}
        qrels = {q: dataset.qrels[q] for q in qids}
        ours_p50 = float(np.percentile(lsrkit_ms, 50))
        result: dict[str, Any] = {
            "queries": len(qids),
            "kappa": kappa,
            "passages_indexed": len(ids),
            "representation": codec.name,
            "lsrkit_rerank_p50_ms": round(ours_p50, 2),
            "ndcg10_lsrkit": round(score_run(runs["lsrkit"], qrels)["ndcg10"], 4),
        }
        for key, field in PEER_FIELDS.items():
            theirs_p50 = float(np.percentile(peer_ms[key], 50))
            result[key] = {
                "document_vectors": field,
                "p50_ms": round(theirs_p50, 2),
                "speedup_of_lsrkit": round(theirs_p50 / ours_p50, 1),
                "ndcg10": round(score_run(runs[key], qrels)["ndcg10"], 4),
            }
        return result
    finally:
        client.indices.delete(index=peer, ignore_unavailable=True)
