"""Reuse an index built from the same source by the same encoders, or build it afresh (eval,
tune and quickstart run a dataset's index through this)."""

from __future__ import annotations

from lsrkit.core.config import BatchPolicy
from lsrkit.core.errors import LsrError
from lsrkit.index import Index
from lsrkit.ingest import Checkpoint, IngestSummary
from lsrkit.ingest.job import job_key
from lsrkit.ingest.sources import Source
from lsrkit.plugin import CODEC_META


def is_ingested(index: Index, source: Source) -> bool:
    """True when a finished checkpoint of this very job (same source, engine, index and
    encoders) exists, the index has points and stores its token vectors as the index asks."""
    try:
        sparse, multivector = index.document_encoders()
        job = job_key(source, index.backend.name, index.name, sparse, multivector, BatchPolicy().write_batch)  # ensure_ingested's batches
        checkpoint = Checkpoint.load(index.state_dir / "checkpoint.json", job)
        if checkpoint is None or not checkpoint.done or index.count() == 0:
            return False
        if multivector is None:
            return True
        codec = index.backend.get_meta(index.name, CODEC_META)
        return codec is not None and codec.get("representation") == index.representation
    except LsrError:
        return False


def ensure_ingested(index: Index, source: Source, *, reingest: bool = False, progress: bool | None = None) -> IngestSummary | None:
    """Reuse an up-to-date index of `source`, or build it afresh; the summary when it was built."""
    if not reingest and is_ingested(index, source):
        return None
    index.drop()
    return index.ingest(source, progress=progress)
