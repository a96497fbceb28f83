"""`lsrkit bench ingest`: does writing overlap encoding?

Measures, in one run on the same documents: encode-only docs/s (chunk + sparse + multivector,
no engine) and full ingest docs/s into Qdrant Edge (a fresh shard in a temporary folder).
With the writer thread overlapping the encoder, the ratio should stay close to 1.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lsrkit.bench.common import DEFAULT_DATASET, machine


def _corpus(dataset: Path, n: int, target: Path) -> Path:
    import itertools

    corpus = Path(dataset) / "corpus.jsonl"
    if not corpus.is_file():
        from lsrkit.quickstart import dataset_dir

        corpus = dataset_dir() / "corpus.jsonl"
    with corpus.open(encoding="utf-8") as handle:
        target.write_text("".join(itertools.islice(handle, n)), encoding="utf-8")
    return target


def run(*, documents: int = 200, dataset: Path = DEFAULT_DATASET) -> dict[str, Any]:
    from lsrkit.core import Document
    from lsrkit.factory import ModelChoice, multivector_encoder, sparse_doc_encoder
    from lsrkit.index import Index
    from lsrkit.ingest import Chunker, read_records
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    models = ModelChoice()
    sparse, multivector = sparse_doc_encoder(models), multivector_encoder(models)
    with tempfile.TemporaryDirectory(prefix="lsrkit-bench-") as tmp:
        source = _corpus(dataset, documents, Path(tmp) / "corpus.jsonl")
        docs = [Document(r.data["_id"], r.data["text"], r.data.get("title", "")) for r in read_records(source) if r.data]
        chunker = Chunker(sparse.model.tokenizer.tokenizer)
        sparse.encode_documents([docs[0].text])  # warm-up both sessions
        multivector.encode_documents([docs[0].text])
        start = time.perf_counter()
        passages = [p for d in docs for p in chunker.split(d)]
        texts = [f"{p.title} {p.text}".strip() for p in passages]
        for i in range(0, len(texts), 64):
            sparse.encode_documents(texts[i : i + 64])
            multivector.encode_documents(texts[i : i + 64])
        encode_seconds = time.perf_counter() - start
        backend = QdrantEdgeBackend(Path(tmp) / "edge")
        with Index("bench", backend=backend, data_dir=tmp, encoders=(sparse, multivector)) as target:
            summary = target.ingest(source, progress=False)
        backend.close()
    encode_dps = len(docs) / encode_seconds
    return {
        "documents": len(docs),
        "passages": len(passages),
        "encode_only_dps": round(encode_dps, 2),
        "ingest_dps": round(summary.docs_per_second, 2),
        "ratio": round(summary.docs_per_second / encode_dps, 3),
        "backend": "edge",
        "machine": machine(),
    }


if __name__ == "__main__":
    print(json.dumps(run(documents=int(sys.argv[1]) if len(sys.argv) > 1 else 200)))
