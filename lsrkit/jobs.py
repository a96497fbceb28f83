"""The ingestion job as the CLI, quickstart and eval run it: defaults in one place."""

from __future__ import annotations

from pathlib import Path

from lsrkit.core.config import DEFAULT_REPRESENTATION, BatchPolicy, IndexSpec
from lsrkit.encoders import MultiVectorEncoder, SparseDocEncoder
from lsrkit.factory import ModelChoice, document_encoders
from lsrkit.ingest import Checkpoint, FieldMapping, IngestPipeline, IngestSummary
from lsrkit.ingest.sources import SourceFormat
from lsrkit.plugin import CODEC_META, Backend


def index_spec(index: str, multivector: MultiVectorEncoder | None, representation: str = DEFAULT_REPRESENTATION) -> IndexSpec:
    return IndexSpec(name=index, multivector_dim=multivector.dim if multivector else None, multivector_representation=representation)


def ingest_corpus(
    backend: Backend,
    index: str,
    source: str | Path,
    *,
    state_dir: Path,
    models: ModelChoice = ModelChoice(),
    encoders: tuple[SparseDocEncoder, MultiVectorEncoder | None] | None = None,
    resume: bool = False,
    fmt: SourceFormat = "auto",
    mapping: FieldMapping = FieldMapping(),
    policy: BatchPolicy = BatchPolicy(),
    progress: bool | None = None,
    representation: str = DEFAULT_REPRESENTATION,
) -> IngestSummary:
    sparse, multivector = encoders or document_encoders(models)
    pipeline = IngestPipeline(
        backend,
        index_spec(index, multivector, representation),
        sparse,
        sparse.model.tokenizer,
        multivector_encoder=multivector,
        state_dir=state_dir,
        policy=policy,
        progress=progress,
    )
    return pipeline.run(source, fmt=fmt, mapping=mapping, resume=resume)


def is_ingested(
    backend: Backend,
    index: str,
    source: str | Path,
    state_dir: Path,
    encoders: tuple[SparseDocEncoder, MultiVectorEncoder | None],
    representation: str = DEFAULT_REPRESENTATION,
) -> bool:
    """True when a finished checkpoint of this very job (same source, engine, index and
    encoders) exists, the index has points and stores its token vectors as `representation`."""
    from lsrkit.core.errors import LsrError
    from lsrkit.ingest.pipeline import job_key

    try:
        job = job_key(source, backend.name, index, encoders[0], encoders[1])
        checkpoint = Checkpoint.load(state_dir / "checkpoint.json", job)
        if checkpoint is None or not checkpoint.done or backend.count(index) == 0:
            return False
        if encoders[1] is None:
            return True
        codec = backend.get_meta(index, CODEC_META)
        return bool(codec) and codec.get("representation") == representation
    except LsrError:
        return False


def ensure_ingested(
    backend: Backend,
    index: str,
    source: str | Path,
    state_dir: Path,
    encoders: tuple[SparseDocEncoder, MultiVectorEncoder | None],
    *,
    reingest: bool = False,
    progress: bool | None = None,
    representation: str = DEFAULT_REPRESENTATION,
) -> IngestSummary | None:
    """Reuse an up-to-date index of `source`, or build it afresh; the summary when it was built."""
    if not reingest and is_ingested(backend, index, source, state_dir, encoders, representation):
        return None
    backend.drop_index(index)
    return ingest_corpus(backend, index, source, state_dir=state_dir, encoders=encoders, progress=progress, representation=representation)
