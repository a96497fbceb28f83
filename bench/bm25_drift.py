"""`lsrkit bench bm25-drift`: what it costs that Qdrant's BM25 keeps the mean length of the build.

Qdrant's `Bm25` bakes the corpus's mean passage length into every stored weight; lsrkit measures
it before an index's first write and keeps it as documents are added and deleted. This scores
SciFact's test queries with Qdrant's own BM25 weights (qdrant-edge's `Bm25`, the IDF Qdrant
applies: ln(1 + (N − n + 0.5)/(n + 0.5))) with the stored mean off from the true one by the
given factors — what a corpus that grew or shrank that much since its build would get — and
reports nDCG@10 per factor. No engine: the sums Qdrant computes, done here in scipy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lsrkit.bench.common import machine

FACTORS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)


def run(*, dataset: Path, split: str = "test", factors: tuple[float, ...] = FACTORS) -> dict[str, Any]:
    from scipy.sparse import csr_matrix

    from lsrkit.core import Document, IndexSpec
    from lsrkit.core.types import passage_text
    from lsrkit.encoders.registry import resolve
    from lsrkit.encoders.text import TextTokenizer
    from lsrkit.evaluation import load_beir, score_run
    from lsrkit.ingest import Chunker, read_records
    from lsrkit.plugin.qdrant_bm25 import QdrantBm25

    data = load_beir(dataset, split)
    resolved = resolve("splade-tiny", "sparse")
    chunker = Chunker(TextTokenizer(resolved.directory, resolved.spec.max_length).tokenizer)
    passages = [p for r in read_records(data.corpus) if r.data for p in chunker.split(Document(str(r.data["_id"]), r.data["text"], r.data.get("title", "")))]
    texts = [passage_text(p.title, p.text) for p in passages]
    true_mean = float(np.mean(QdrantBm25(IndexSpec("drift")).lengths(texts)))
    rows: dict[str, Any] = {}
    for factor in factors:
        bm25 = QdrantBm25(IndexSpec("drift", bm25_avg_len=true_mean * factor))
        columns: dict[int, int] = {}
        indptr, indices, values = [0], list[int](), list[float]()
        for text in texts:
            terms, weights = bm25.document(text)
            indices.extend(columns.setdefault(t, len(columns)) for t in terms)
            values.extend(weights)
            indptr.append(len(indices))
        matrix = csr_matrix((values, indices, indptr), shape=(len(texts), len(columns)))
        df = np.bincount(matrix.indices, minlength=len(columns))
        idf = np.log(1 + (len(texts) - df + 0.5) / (df + 0.5))
        run_: dict[str, dict[str, float]] = {}
        for qid, query in data.queries.items():
            terms, counts = bm25.query(query)
            known = [(columns[t], c) for t, c in zip(terms, counts, strict=True) if t in columns]
            q = np.zeros(len(columns))
            for column, count in known:
                q[column] = count * idf[column]
            scores = matrix @ q
            best: dict[str, float] = {}
            for i in np.argsort(-scores)[:300]:
                doc = passages[i].doc_id
                best[doc] = max(best.get(doc, float("-inf")), float(scores[i]))
            run_[qid] = dict(sorted(best.items(), key=lambda kv: -kv[1])[:100])
        rows[str(factor)] = round(score_run(run_, data.qrels)["ndcg10"], 4)
    return {
        "dataset": str(dataset),
        "split": split,
        "passages": len(texts),
        "true_mean_length": round(true_mean, 2),
        "ndcg10_by_stored_mean_factor": rows,
        "machine": machine(),
    }
