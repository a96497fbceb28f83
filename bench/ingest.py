"""`lsrkit bench ingest`: does writing overlap encoding?

Measures, in one run on the same documents: encode-only docs/s (everything but the engine:
chunking, both encoders, token pooling and codes, in the job's batches — `BatchEncoder`) and full
ingest docs/s into Qdrant Edge (a fresh shard in a temporary folder: validation, journal,
writes, statistics, checkpoints included). With the writer thread overlapping the encoder, the
ratio should stay close to 1.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from lsrkit.bench.common import machine
from lsrkit.core.config import opensearch_url


def _corpus(dataset: Path, n: int, target: Path) -> Path:
    import itertools

    corpus = Path(dataset) / "corpus.jsonl"
    if not corpus.is_file():
        from lsrkit.quickstart import dataset_dir

        corpus = dataset_dir() / "corpus.jsonl"
    with corpus.open(encoding="utf-8") as handle:
        target.write_text("".join(itertools.islice(handle, n)), encoding="utf-8")
    return target


def run(*, documents: int = 200, dataset: Path) -> dict[str, Any]:
    from lsrkit.core import BatchPolicy, Document, MultiVector
    from lsrkit.factory import ModelChoice, multivector_encoder, sparse_doc_encoder
    from lsrkit.index import Index
    from lsrkit.ingest import Chunker, read_records
    from lsrkit.ingest.encoding import BatchEncoder
    from lsrkit.plugin import MultiVectorCodec, default_representation
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    models = ModelChoice()
    sparse, multivector = sparse_doc_encoder(models), multivector_encoder(models)
    with tempfile.TemporaryDirectory(prefix="lsrkit-bench-") as tmp:
        source = _corpus(dataset, documents, Path(tmp) / "corpus.jsonl")
        docs = [Document(r.data["_id"], r.data["text"], r.data.get("title", "")) for r in read_records(source) if r.data]
        encoder = BatchEncoder(sparse, multivector, Chunker(sparse.model.tokenizer.tokenizer))
        sparse.encode_documents([docs[0].text])  # warm-up both sessions
        multivector.encode_documents([docs[0].text])
        codecs: list[MultiVectorCodec] = []

        def codec_for(multi: list[MultiVector | None]) -> MultiVectorCodec:
            if not codecs:  # calibrated on the first batch, as the job does
                codecs.append(MultiVectorCodec.calibrate(default_representation(), [m.vectors for m in multi if m is not None]))
            return codecs[0]

        batch = BatchPolicy().write_batch
        start = time.perf_counter()
        passages = 0
        for i in range(0, len(docs), batch):
            passages += len(encoder.encode(docs[i : i + batch], codec_for)[0])
        encode_seconds = time.perf_counter() - start
        backend = QdrantEdgeBackend(Path(tmp) / "edge")
        with Index("bench", backend=backend, data_dir=tmp, encoders=(sparse, multivector)) as target:
            summary = target.ingest(source, progress=False)
        backend.close()
    encode_dps = len(docs) / encode_seconds
    return {
        "documents": len(docs),
        "passages": passages,
        "encode_only_dps": round(encode_dps, 2),
        "ingest_dps": round(summary.docs_per_second, 2),
        "ratio": round(summary.docs_per_second / encode_dps, 3),
        "backend": "edge",
        "machine": machine(),
    }


def run_ray(*, documents: int = 300, dataset: Path, workers: list[int] = [1, 2], url: str | None = None) -> dict[str, Any]:  # noqa: B006
    """docs/s of the local job and of Ray with each worker count, into the same OpenSearch,
    on the same documents, in one run (each into a fresh index, dropped after)."""

    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index

    url = opensearch_url(url)
    result: dict[str, Any] = {"documents": documents, "backend": "opensearch", "ray_dps": {}, "ray_seconds": {}}
    with tempfile.TemporaryDirectory(prefix="lsrkit-bench-ray-") as tmp:
        source = _corpus(dataset, documents, Path(tmp) / "corpus.jsonl")
        for runner, count in [("local", 1), *(("ray", n) for n in workers)]:
            with Index(f"bench-ingest-{runner}-{count}", backend=BackendOptions("opensearch", data_dir=Path(tmp) / f"{runner}-{count}", url=url)) as target:
                target.drop()
                # the Ray figure includes starting the cluster and loading the models in every actor: what a job pays
                summary = target.ingest(source, progress=False, runner=runner, workers=count)
                if runner == "local":
                    result["local_dps"] = round(summary.docs_per_second, 2)
                    result["local_seconds"] = round(summary.seconds, 1)
                else:
                    result["ray_dps"][str(count)] = round(summary.docs_per_second, 2)
                    result["ray_seconds"][str(count)] = round(summary.seconds, 1)
                target.drop()
    result["ratio_ray_vs_local"] = {n: round(v / result["local_dps"], 3) for n, v in result["ray_dps"].items()}
    result["machine"] = machine()
    return result
