"""Reuse an index built from the same source by the same encoders, or build it afresh (eval,
tune and quickstart run a dataset's index through this)."""

from __future__ import annotations

import json
from pathlib import Path

from lsrkit.core.config import BatchPolicy
from lsrkit.core.errors import BackendError, CheckpointError, ConfigError, IndexMissingError, LsrError, UnavailableError
from lsrkit.index import Index
from lsrkit.ingest import Checkpoint, IngestSummary
from lsrkit.ingest.checkpoint import JOB_CHECKPOINTS, S
from lsrkit.ingest.job import job_key
from lsrkit.ingest.sources import Source
from lsrkit.plugin import CODEC_META


def is_ingested(index: Index, source: Source) -> bool:
    """True when a finished checkpoint of this very job (same source, engine, index and
    encoders; run locally or on Ray) exists, the index has points and stores its token vectors
    as the index asks."""
    from lsrkit.ray_ingest import RayCheckpoint

    try:
        sparse, multivector = index.document_encoders()
        job = job_key(source, index.backend.name, index.name, sparse, multivector, BatchPolicy().write_batch)  # ensure_ingested's batches
        local = _checkpoint(Checkpoint, index.state_dir / JOB_CHECKPOINTS["local"], job)
        on_ray = _checkpoint(RayCheckpoint, index.state_dir / JOB_CHECKPOINTS["ray"], "ray|" + job)
        finished = (local is not None and local.done) or (on_ray is not None and on_ray.finished)
        if not finished or index.count() == 0:
            return False
        if multivector is None:
            return True
        codec = index.backend.get_meta(index.name, CODEC_META)
        return codec is not None and codec.get("representation") == index.representation
    except LsrError:
        return False


def _checkpoint(kind: type[S], path: Path, job: str) -> S | None:
    """The checkpoint at `path` when it is `job`'s, whatever batch size that run cut its source in
    (a finished job indexed all of the source with these encoders; its codec is its own); else None."""
    try:
        stored = str(json.loads(path.read_text(encoding="utf-8")).get("job", ""))
    except (OSError, ValueError, AttributeError):
        return None
    if stored.rsplit("|batch=", 1)[0] != job.rsplit("|batch=", 1)[0]:
        return None
    try:
        return kind.load(path, stored)
    except CheckpointError:
        return None


def ensure_ingested(index: Index, source: Source, *, reingest: bool = False, progress: bool | None = None, named_by_user: bool = False) -> IngestSummary | None:
    """Reuse an up-to-date index of `source`, or build it afresh; the summary when it was built.
    An index the user named (`named_by_user`) that exists but is not recognised as `source`'s is
    theirs, not a cache: it is refused (ConfigError) rather than dropped, unless `reingest`."""
    if not reingest and is_ingested(index, source):
        return None
    if named_by_user and not reingest and _exists(index):
        raise ConfigError(
            f"index {index.name!r} exists but no finished lsrkit ingest of this dataset with these encoders is recorded for it "
            f"in {index.state_dir}: name another index, leave the name out to use the dataset's own, or rebuild it (eval: --reingest)"
        )
    index.drop()
    return index.ingest(source, progress=progress)


def _exists(index: Index) -> bool:
    try:
        index.backend.spec(index.name)
    except IndexMissingError:
        return False
    except UnavailableError:
        raise
    except BackendError:  # there, made by something else than lsrkit
        return True
    return True
