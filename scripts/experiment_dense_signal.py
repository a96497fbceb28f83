"""Does a dense (mean-pooled) cosine earn a place as a third rerank signal? Measured on a split.

    .venv/bin/python scripts/experiment_dense_signal.py --data-dir .lsrkit --split train

Over an existing Qdrant Edge index of the dataset (made by `lsrkit eval` or `lsrkit ingest`), for the
shipped hybrid+rerank first stage: final = (1 - wf - wd)·mm(MaxSim) + wf·mm(first stage) + wd·mm(cosine),
mm = min-max over the κ candidates, cosine between the mean of the query's and of the passage's
stored token vectors. Prints nDCG@10 per (wf, wd), the best with wd = 0 and the best overall,
on the whole split and on 4 disjoint folds of it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lsrkit.core.types import Hit
from lsrkit.evaluation import load_beir, score_run
from lsrkit.factory import BackendOptions, ModelChoice, QualitySettings, document_encoders, idf_query_encoder, open_backend
from lsrkit.plugin.codec import QuantizedRows
from lsrkit.plugin.fusion import fuse
from lsrkit.plugin.pipeline import aggregate_passages, demote
from lsrkit.plugin.rerank import minmax
from lsrkit.tuning import collect

FOLDS = 4


def _mean_unit(rows: np.ndarray) -> np.ndarray:
    mean = rows.mean(axis=0) if len(rows) else rows.sum(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=Path("../shared/datasets/scifact"))
    parser.add_argument("--data-dir", type=Path, default=Path(".lsrkit"))
    parser.add_argument("--index", default="scifact")
    parser.add_argument("--split", default="train")
    args = parser.parse_args()

    data = load_beir(args.dataset, args.split)
    quality = QualitySettings()
    backend = open_backend(BackendOptions(kind="edge", data_dir=args.data_dir))
    _, multivector = document_encoders(ModelChoice())
    idf = idf_query_encoder(backend, args.index, "splade-tiny")
    evidence = collect(backend, args.index, data, idf, multivector)
    kappa, weights = quality.hybrid_kappa, list(quality.hybrid_rerank.weights)
    signals: dict[str, tuple[list[Hit], list[Hit], np.ndarray, np.ndarray, np.ndarray]] = {}
    for qid, ev in evidence.items():
        hits = fuse([ev.bm25, ev.sparse], quality.hybrid_rerank.method, weights)
        pool, tail = hits[:kappa], hits[kappa:]
        stored = backend.fetch_multivectors(args.index, [h.id for h in pool])
        query_mean = _mean_unit(ev.query_vectors)
        dense = []
        for h in pool:
            rows = stored.get(h.id)
            vectors = rows.dequantize() if isinstance(rows, QuantizedRows) else np.asarray(rows if rows is not None else np.zeros((0, query_mean.size)), np.float32)
            dense.append(float(_mean_unit(vectors) @ query_mean))
        first = np.asarray([h.score for h in pool], np.float32)
        maxsim = np.asarray([ev.maxsim.get(h.id, 0.0) for h in pool], np.float32)
        signals[qid] = (pool, tail, minmax(first), minmax(maxsim), minmax(np.asarray(dense, np.float32)))
    backend.close()

    qids = sorted(signals)
    parts = [{q: data.qrels[q] for q in qids[f::FOLDS] if q in data.qrels} for f in range(FOLDS)]
    rows = []
    for wf in (0.1, 0.2, 0.3):
        for wd in (0.0, 0.05, 0.1, 0.2, 0.3):
            run = {}
            for qid, (pool, tail, first, maxsim, dense) in signals.items():
                final = (1.0 - wf - wd) * maxsim + wf * first + wd * dense
                order = np.argsort(-final, kind="stable")
                ranked = [Hit(pool[i].id, float(final[i]), metadata=pool[i].metadata) for i in order]
                ranked += demote(tail, below=float(final.min()) if len(final) else 0.0)
                run[qid] = {h.id: h.score for h in aggregate_passages(ranked)[:100]}
            rows.append({"wf": wf, "wd": wd, "ndcg10": score_run(run, data.qrels)["ndcg10"], "folds": [score_run(run, p)["ndcg10"] for p in parts]})
    without = max((r for r in rows if r["wd"] == 0.0), key=lambda r: r["ndcg10"])
    best = max(rows, key=lambda r: r["ndcg10"])
    print(json.dumps({"split": args.split, "kappa": kappa, "grid": rows, "best_without_dense": without, "best": best,
                      "gain": best["ndcg10"] - without["ndcg10"], "fold_gains": [b - w for b, w in zip(best["folds"], without["folds"])]}, indent=1))


if __name__ == "__main__":
    main()
