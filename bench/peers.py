"""`lsrkit bench peers`: lsrkit's two-stage pipelines against token-level multivector retrieval,
on the same token encoder's vectors, in one run on one machine.

Systems, each over the passages the ingest job cuts the corpus into, ranked per document by its
best passage, on the split's queries:
- lsrkit on Qdrant Edge: `sparse-idf+rerank`, `hybrid+rerank` and their pruned variants, as
  shipped (tuned settings, the default token-vector codes);
- PLAID (fast-plaid, in its own environment: bench/plaid_worker.py) built from the float token
  vectors, at nbits 2 and 4 and a sweep of (n_ivf_probe, n_full_scores), fast-plaid's defaults
  (nbits 4, 8 probes, 4096 full scores) among them;
- MUVERA: fastembed's fixed-dimensional encodings (its default k_sim 5, dim_proj 16, r_reps 20)
  in a Qdrant Edge dense field; alone, and with the engine's MaxSim over float16 token vectors
  of its top MUVERA_CANDIDATES (a prefetch, one query: what Qdrant recommends);
- exhaustive float MaxSim over every passage: the quality ceiling.
Latency is per query, one at a time, after a warm-up, on the very calls whose rankings are scored
(lsrkit at k=DEPTH documents, the others at PASSAGE_DEPTH passages): lsrkit's end to end; the
others' as the query's token encoding (measured alone, `encode_ms`) plus the search, per query.
Bytes per passage: what each keeps to answer, allocated on disk (lsrkit: the Edge index, texts
included; PLAID: its index folder; MUVERA + MaxSim: the Edge shard; MUVERA alone: its float32
encodings, its HNSW graph not counted; exhaustive: float16 token vectors).
Build seconds: lsrkit's from the corpus (its encoders included, when this run built the index);
the peers' from token vectors already encoded (`token_encode_seconds`, once for all of them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lsrkit.bench.common import machine
from lsrkit.core.config import DEFAULT_DATA_DIR

LSRKIT_SYSTEMS = ("sparse-idf+rerank", "hybrid+rerank", "sparse-idf+rerank-pruned", "hybrid+rerank-pruned")
PLAID_SETTINGS: dict[str, Any] = {
    "nbits": [2, 4],
    "search": [
        {"n_ivf_probe": 4, "n_full_scores": 256},
        {"n_ivf_probe": 8, "n_full_scores": 1024},
        {"n_ivf_probe": 8, "n_full_scores": 4096},
        {"n_ivf_probe": 16, "n_full_scores": 4096},
        {"n_ivf_probe": 32, "n_full_scores": 8192},
    ],
}
PLAID_DEFAULT = "plaid-nbits4-ivf8-full4096"  # fast-plaid's create and search defaults
MUVERA_CANDIDATES = 200  # the passages MUVERA's FDE search hands to the MaxSim rescoring
DEPTH = 100  # documents per ranking (recall@100)
PASSAGE_DEPTH = 200  # passages the token-level systems return, collapsed to DEPTH documents
PEERS_ENV = Path(__file__).resolve().parents[1] / ".venv-peers"

FloatArray = npt.NDArray[np.float32]


def run(
    *,
    dataset: Path,
    data_dir: Path = DEFAULT_DATA_DIR,
    split: str = "test",
    queries: int | None = None,
    plaid: bool = True,
    peers_env: Path = PEERS_ENV,
    plaid_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    from lsrkit.eval_command import default_index
    from lsrkit.evaluation import load_beir
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index
    from lsrkit.jobs import ensure_ingested

    data = load_beir(dataset, split)
    qids = [q for q in data.queries if q in data.qrels][:queries]
    texts = {q: data.queries[q] for q in qids}
    index = default_index(dataset)
    systems: dict[str, dict[str, Any]] = {}
    with Index(index, backend=BackendOptions("edge", data_dir=data_dir)) as target:
        start = time.perf_counter()
        built = ensure_ingested(target, data.corpus, progress=False)
        lsrkit_build = round(time.perf_counter() - start, 1) if built is not None else None
        passages = _passages(data.corpus, target.idf_encoder().tokenizer.tokenizer)
        stored_bytes = target.backend.disk_bytes(index)
        idf, multivector = target.idf_encoder(), target.query_multivector_encoder()
        lsrkit_encode = [_timed(lambda t=t: (idf.encode_queries([t]), multivector.encode_queries([t])))[1] for t in texts.values()]
        for name in LSRKIT_SYSTEMS:
            pipeline = target.pipeline(name)
            for text in texts.values():  # warm-up pass, untimed
                pipeline.search(text, k=DEPTH)
            timed = {q: _timed(lambda q=q, p=pipeline: p.search(texts[q], k=DEPTH)) for q in qids}  # the metrics come from the timed calls
            ranking = {q: {h.id: h.score for h in result.hits} for q, (result, _) in timed.items()}
            systems[f"lsrkit {name}"] = _row(ranking, data.qrels, [ms for _, ms in timed.values()], lsrkit_encode, stored_bytes, len(passages), lsrkit_build)
        vectors_name = f"{index}-{multivector.fingerprint}-{_ids_digest(passages)}"
        doc_vectors, token_encode_seconds = _token_vectors(passages, multivector, data_dir / "bench-peers" / f"{vectors_name}.npz")
        encoded = [_timed(lambda t=t: multivector.encode_queries([t])[0].vectors) for t in texts.values()]
    query_vectors = [v for v, _ in encoded]
    encode_ms = [ms for _, ms in encoded]
    doc_of = [p.doc_id for p in passages]

    ranked, search_ms = _exhaustive(doc_vectors, query_vectors)
    float16_bytes = sum(v.shape[0] * v.shape[1] * 2 for v in doc_vectors)
    systems["exhaustive float MaxSim"] = _peer_row(ranked, search_ms, encode_ms, doc_of, qids, data.qrels, float16_bytes, len(passages), 0.0)
    systems.update(_muvera(doc_vectors, query_vectors, encode_ms, doc_of, qids, data.qrels))
    plaid_note = None
    if plaid:
        plaid_dir = data_dir / "bench-peers" / f"plaid-{vectors_name}"  # its indexes, kept for the next run on these vectors
        systems.update(_plaid(doc_vectors, query_vectors, encode_ms, doc_of, qids, data.qrels, peers_env, plaid_settings or PLAID_SETTINGS, plaid_dir))
    else:
        plaid_note = "not run (--no-plaid)"

    best = max((n for n in systems if n.startswith("lsrkit ")), key=lambda n: systems[n]["ndcg10"])
    return {
        "dataset": str(dataset),
        "split": split,
        "queries": len(qids),
        "passages": len(passages),
        "documents": len(set(doc_of)),
        "tokens_per_passage": round(sum(len(v) for v in doc_vectors) / len(doc_vectors), 1),
        "token_encode_seconds": token_encode_seconds,
        "method": __doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        "systems": systems,
        "lsrkit_best": best,
        **_speedup(systems, best),
        **({"plaid": plaid_note} if plaid_note else {}),
        "machine": machine(),
    }


def _timed(call: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = call()
    return value, (time.perf_counter() - start) * 1000


def _passages(corpus: Path, tokenizer: Any) -> list[Any]:
    """The corpus cut as the ingest job cuts it (its chunker, window and overlap)."""
    from lsrkit.core.types import Document
    from lsrkit.ingest.chunking import Chunker

    chunker = Chunker(tokenizer)
    out = []
    with corpus.open(encoding="utf-8") as handle:
        for line in handle:
            raw = json.loads(line)
            out.extend(chunker.split(Document(str(raw["_id"]), str(raw.get("text") or ""), str(raw.get("title") or ""))))
    return out


def _ids_digest(passages: Sequence[Any]) -> str:
    import hashlib

    return hashlib.blake2b("\n".join(p.id for p in passages).encode(), digest_size=6).hexdigest()


def _token_vectors(passages: Sequence[Any], encoder: Any, cache: Path) -> tuple[list[FloatArray], float | None]:
    """Float token vectors of every passage, encoded once and kept (float16) in `cache` (named by
    the passages' ids); the seconds the encoding took, None when read from the cache."""
    from lsrkit.core.types import passage_text

    if cache.is_file():
        with np.load(cache) as stored:
            ends = np.cumsum(stored["lengths"])
            rows = stored["rows"].astype(np.float32)
            return [rows[end - n : end] for end, n in zip(ends.tolist(), stored["lengths"].tolist())], None
    start = time.perf_counter()
    vectors: list[FloatArray] = []
    for first in range(0, len(passages), 64):
        batch = passages[first : first + 64]
        vectors.extend(mv.vectors.astype(np.float16).astype(np.float32) for mv in encoder.encode_documents([passage_text(p.title, p.text) for p in batch]))
    cache.parent.mkdir(parents=True, exist_ok=True)
    seconds = round(time.perf_counter() - start, 1)
    np.savez(cache, rows=np.concatenate(vectors).astype(np.float16), lengths=np.asarray([len(v) for v in vectors]))
    return vectors, seconds


def _exhaustive(doc_vectors: Sequence[FloatArray], query_vectors: Sequence[FloatArray]) -> tuple[list[list[tuple[int, float]]], list[float]]:
    """Float MaxSim of every query against every passage: one matmul over all passages' tokens."""
    rows = np.concatenate(doc_vectors)
    lengths = np.asarray([len(v) for v in doc_vectors])
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    ranked, millis = [], []
    for query in [*query_vectors[:3], *query_vectors]:  # the first three warm up, untimed
        start = time.perf_counter()
        scores = np.maximum.reduceat(rows @ query.T, starts, axis=0).sum(axis=1)
        top = np.argsort(-scores)[:PASSAGE_DEPTH]
        millis.append((time.perf_counter() - start) * 1000)
        ranked.append([(int(i), float(scores[i])) for i in top])
    return ranked[3:], millis[3:]


def _muvera(
    doc_vectors: Sequence[FloatArray], query_vectors: Sequence[FloatArray], encode_ms: Sequence[float], doc_of: Sequence[str], qids: Sequence[str], qrels: Any
) -> dict[str, dict[str, Any]]:
    """MUVERA alone and with the engine's MaxSim over its candidates, in one Qdrant Edge shard."""
    import qdrant_edge as qe
    from fastembed.postprocess.muvera import Muvera

    dim = int(doc_vectors[0].shape[1])
    muvera = Muvera(dim=dim)
    start = time.perf_counter()
    fde = [np.asarray(muvera.process_document(v), dtype=np.float32) for v in doc_vectors]  # fastembed returns float64
    fde_seconds = time.perf_counter() - start
    config = qe.EdgeConfig(
        vectors={
            "fde": qe.EdgeVectorParams(size=muvera.embedding_size, distance=qe.Distance.Dot),
            "tokens": qe.EdgeVectorParams(
                size=dim,
                distance=qe.Distance.Dot,
                multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                datatype=qe.VectorStorageDatatype.Float16,
                # it only rescores the prefetched candidates: no graph (Qdrant's advice for a rerank field)
                hnsw_config=qe.HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10000),
            ),
        },
        sparse_vectors=None,
    )
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="lsrkit-muvera-") as folder:
        shard = qe.EdgeShard.create(str(Path(folder) / "shard"), config)
        try:
            start = time.perf_counter()
            for first in range(0, len(doc_vectors), 64):
                points = [qe.Point(i, {"fde": fde[i].tolist(), "tokens": doc_vectors[i].tolist()}, {}) for i in range(first, min(first + 64, len(doc_vectors)))]
                shard.update(qe.UpdateOperation.upsert_points(points))
            shard.flush()
            shard.optimize()
            build = fde_seconds + time.perf_counter() - start
            disk = _folder_bytes(Path(folder))
            fde_bytes = len(doc_vectors) * muvera.embedding_size * 4
            for label, rerank in (("MUVERA", False), (f"MUVERA + MaxSim rerank of {MUVERA_CANDIDATES}", True)):
                ranked, millis = [], []
                for query in [*query_vectors[:3], *query_vectors]:
                    begin = time.perf_counter()
                    request = _muvera_request(qe, muvera.process_query(query), query, rerank)
                    scored = shard.query(request)
                    millis.append((time.perf_counter() - begin) * 1000)
                    ranked.append([(int(p.id), float(p.score)) for p in scored])
                # MUVERA alone needs only its encodings: the token vectors' share of the shard is not its cost
                size = disk if rerank else fde_bytes
                rows[label] = _peer_row(ranked[3:], millis[3:], encode_ms, doc_of, qids, qrels, size, len(doc_vectors), build)
        finally:
            shard.close()
    return rows


def _muvera_request(qe: Any, fde: Any, tokens: FloatArray, rerank: bool) -> Any:
    nearest = qe.Query.Nearest(np.asarray(fde, dtype=np.float32).tolist(), using="fde")
    if not rerank:
        return qe.QueryRequest(limit=PASSAGE_DEPTH, query=nearest, with_payload=False)
    prefetch = qe.Prefetch(query=nearest, limit=MUVERA_CANDIDATES)
    return qe.QueryRequest(
        prefetches=[prefetch], limit=min(MUVERA_CANDIDATES, PASSAGE_DEPTH), query=qe.Query.Nearest(tokens.tolist(), using="tokens"), with_payload=False
    )


def _plaid(
    doc_vectors: Sequence[FloatArray],
    query_vectors: Sequence[FloatArray],
    encode_ms: Sequence[float],
    doc_of: Sequence[str],
    qids: Sequence[str],
    qrels: Any,
    peers_env: Path,
    settings: Mapping[str, Any],
    index_dir: Path,
) -> dict[str, dict[str, Any]]:
    """PLAID in its own environment (made by scripts/setup-peers-env.sh when missing), its indexes
    built in (or reused from) `index_dir`."""
    python = peers_env / "bin" / "python"
    if not python.is_file():
        script = Path(__file__).resolve().parents[1] / "scripts" / "setup-peers-env.sh"
        subprocess.run(["bash", str(script), str(peers_env)], check=True, stdout=sys.stderr)  # --json owns stdout
    with tempfile.TemporaryDirectory(prefix="lsrkit-plaid-") as folder:
        vectors = Path(folder) / "vectors.npz"
        np.savez(
            vectors,
            doc_tokens=np.concatenate(doc_vectors),
            doc_lengths=np.asarray([len(v) for v in doc_vectors]),
            query_tokens=np.concatenate(query_vectors),
            query_lengths=np.asarray([len(v) for v in query_vectors]),
        )
        output = Path(folder) / "plaid.json"
        worker = Path(__file__).with_name("plaid_worker.py")
        command = [str(python), str(worker), "--vectors", str(vectors), "--settings", json.dumps(settings), "--index-dir", str(index_dir)]
        subprocess.run(
            [*command, "--top-k", str(PASSAGE_DEPTH), "--output", str(output)], check=True, stdout=sys.stderr, env={**os.environ, "PYTHONWARNINGS": "ignore"}
        )
        report = json.loads(output.read_text())
    rows = {}
    for label, built in report["indexes"].items():
        for setting, result in built["searches"].items():
            ranked = [[(int(i), float(s)) for i, s in ranking] for ranking in result["ranked"]]
            rows[f"plaid-{label}-{setting}"] = {
                **_peer_row(ranked, result["search_ms"], encode_ms, doc_of, qids, qrels, built["bytes"], len(doc_vectors), built["build_seconds"]),
                "settings": {"nbits": built["nbits"], "n_ivf_probe": result["n_ivf_probe"], "n_full_scores": result["n_full_scores"]},
                "build": {key: built[key] for key in ("kmeans_seconds", "kmeans_reused", "kept_from_an_earlier_run")},
            }
    return rows


def _peer_row(
    ranked: Sequence[Sequence[tuple[int, float]]],
    search_ms: Sequence[float],
    encode_ms: Sequence[float],
    doc_of: Sequence[str],
    qids: Sequence[str],
    qrels: Any,
    size: int,
    passages: int,
    build: float | None,
) -> dict[str, Any]:
    ranking = {q: _documents(r, doc_of) for q, r in zip(qids, ranked)}
    total = [e + s for e, s in zip(encode_ms, search_ms)]
    return _row(ranking, qrels, total, encode_ms, size, passages, None if build is None else round(build, 1))


def _documents(ranked: Sequence[tuple[int, float]], doc_of: Sequence[str]) -> dict[str, float]:
    """Passages (row numbers) → documents scored by their best passage, the DEPTH best."""
    best: dict[str, float] = {}
    for row, score in ranked:
        doc = doc_of[row]
        if doc not in best or score > best[doc]:
            best[doc] = score
    return dict(sorted(best.items(), key=lambda item: -item[1])[:DEPTH])


def _row(
    ranking: Mapping[str, Mapping[str, float]],
    qrels: Any,
    total_ms: Sequence[float],
    encode_ms: Sequence[float],
    size: int | None,
    passages: int,
    build: float | None,
) -> dict[str, Any]:
    from lsrkit.evaluation import score_run

    metrics = score_run(ranking, {q: qrels[q] for q in ranking})
    return {
        "ndcg10": round(metrics["ndcg10"], 4),
        "recall100": round(metrics["recall100"], 4),
        "p50_ms": round(float(np.percentile(total_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(total_ms, 99)), 2),
        "encode_ms": round(float(np.percentile(encode_ms, 50)), 2),
        "bytes_per_passage": None if size is None else round(size / passages, 1),
        "build_seconds": build,
        "min_documents_returned": min((len(docs) for docs in ranking.values()), default=0),  # recall@100 is over at most this many
        "ranking": {q: list(docs)[:DEPTH] for q, docs in ranking.items()},
    }


def _speedup(systems: Mapping[str, Mapping[str, Any]], best: str) -> dict[str, Any]:
    """lsrkit's best pipeline against the fastest PLAID setting of at least its nDCG@10 (else
    PLAID's best-quality setting, said so)."""
    plaid = {n: s for n, s in systems.items() if n.startswith("plaid-")}
    if not plaid:
        return {"speedup_vs_plaid_at_equal_ndcg": None}
    target = systems[best]["ndcg10"]
    reaching = [n for n, s in plaid.items() if s["ndcg10"] >= target]
    peer = min(reaching, key=lambda n: plaid[n]["p50_ms"]) if reaching else max(plaid, key=lambda n: plaid[n]["ndcg10"])
    ratio = round(plaid[peer]["p50_ms"] / systems[best]["p50_ms"], 2)
    return {
        "speedup_vs_plaid_at_equal_ndcg": ratio if reaching else None,
        "speedup_vs_plaid_best_ndcg": None if reaching else ratio,
        "plaid_compared": peer,
        "plaid_reaches_lsrkit_ndcg": bool(reaching),
        "plaid_best_ndcg10": max(s["ndcg10"] for s in plaid.values()),
        "plaid_default": PLAID_DEFAULT if PLAID_DEFAULT in plaid else None,
    }


def _folder_bytes(folder: Path) -> int:
    """Bytes allocated on disk (as the Edge adapter counts its own index: preallocated files count
    what they hold, not their length)."""
    return sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file())


def without_rankings(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report as printed: the per-query rankings (kept for the tests' checks) left out."""
    return {**report, "systems": {n: {k: v for k, v in s.items() if k != "ranking"} for n, s in report["systems"].items()}}


__all__ = ["run", "without_rankings"]
