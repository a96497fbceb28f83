"""Ingest on Ray: the local job's steps, spread over a cluster.

The driver reads and validates the source in order (dead letters keep their source positions and
duplicate ids are found across the whole source), cuts it into blocks of documents, and hands
them to Ray Data's `map_batches` over a pool of actors. Each actor loads the encoders once and
runs what the local job runs for a batch — chunk, encode (`BatchEncoder`), journal the change to
the corpus statistics, write, delete what the documents no longer have — against OpenSearch or a
Qdrant server. The driver applies each finished block's change to the statistics (each exactly
once: changes have ids derived from the job and the block) and checkpoints the finished blocks,
so a driver killed and run again with `resume` skips the blocks the engine acknowledged; a killed
actor is restarted by Ray and its block retried (ids are deterministic: no duplicates).
Qdrant Edge is one process's folder: it stays on the local path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsrkit.core.errors import ConfigError, RecordError
from lsrkit.core.types import Document
from lsrkit.factory import BackendOptions, ModelChoice, document_encoders, open_backend
from lsrkit.index import Index
from lsrkit.ingest import Chunker, FieldMapping, IngestPipeline, IngestSummary, Validator, read_records
from lsrkit.ingest.checkpoint import JobState
from lsrkit.ingest.deadletter import DeadLetter
from lsrkit.ingest.encoding import BatchEncoder
from lsrkit.ingest.pipeline import RetryPolicy, job_key, retrying, stage_of
from lsrkit.ingest.progress import Progress
from lsrkit.ingest.sources import Source, SourceFormat
from lsrkit.ingest.statistics import STATISTICS_META, Change, CorpusStatistics, EngineJournal, passage_text
from lsrkit.plugin.codec import MultiVectorCodec

FAIL_ONCE_ENV = "LSRKIT_RAY_FAIL_BLOCK_ONCE"  # "<ordinal>:<marker file>": an actor dies once, on a block from that ordinal on (fault tests)


@dataclass
class RayCheckpoint(JobState):
    """The blocks the engine acknowledged and the statistics took, and the dead-letter file's size then."""

    job: str
    done: list[int] = field(default_factory=list)
    dead_letter_bytes: int = 0
    documents: int = 0
    passages: int = 0
    rejected: int = 0
    finished: bool = False


def change_id(job: str, block: int) -> str:
    """The id of a block's change: the same when the block is retried or the job resumed."""
    return hashlib.sha256(f"{job}|{block}".encode()).hexdigest()[:32]


class BlockWriter:
    """A Ray actor: the encoders loaded once; each block chunked, encoded and written."""

    def __init__(
        self, options: dict[str, Any], index: str, models: dict[str, Any], job: str, codec: dict[str, Any] | None, vocab_model: str, threads: int
    ) -> None:
        self.backend = open_backend(BackendOptions(**{**options, "data_dir": Path(options["data_dir"])}), sparse_model=vocab_model)
        # onnxruntime's threads: the actor's share of the machine, not a thread per core in every actor
        sparse, multivector = document_encoders(ModelChoice(**models), threads=threads)
        self.encoder = BatchEncoder(sparse, multivector, Chunker(sparse.model.tokenizer.tokenizer))
        self.statistics = CorpusStatistics(self.backend, index, sparse.model.tokenizer, journal=EngineJournal(self.backend, index))
        self.codec = MultiVectorCodec.from_meta(codec) if codec else None
        self.index, self.job = index, job

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        results = [self._block(int(block), str(payload)) for block, payload in zip(batch["block"], batch["payload"], strict=True)]
        return {"block": [int(b) for b in batch["block"]], "result": results}

    def _block(self, block: int, payload: str) -> str:
        documents = [Document(d["id"], d["text"], d["title"], d["metadata"]) for d in json.loads(payload)]
        records, rejects = self.encoder.encode(documents, lambda _: self.codec)
        key = change_id(self.job, block)
        change = self.statistics.journal.get(key) or self.statistics.begin(
            self.job, block, sorted({r.doc_id for r in records}), keep=[r.id for r in records], change_id=key
        )
        written, failed = [], {}
        for start in range(0, len(records), 64):
            result = retrying(lambda part=records[start : start + 64]: self.backend.write(self.index, part), RetryPolicy())
            written.extend(result.written)
            failed.update(result.failed)
            _maybe_die(block)  # after a partial write: the retry must finish it from the journal
        retrying(lambda: self.backend.delete(self.index, change.deletes), RetryPolicy())
        texts = {r.id: r.full_text for r in records}
        return json.dumps(
            {
                "change": asdict(change),
                "written": dict(zip(written, self.statistics.token_sets([texts[i] for i in written]), strict=True)),
                "rejects": [{"position": e.position, "reason": e.reason, "record_id": e.record_id, "stage": stage_of(e)} for e, _ in rejects]
                + [{"position": "write", "reason": f"engine refused: {why}", "record_id": rid, "stage": "write"} for rid, why in failed.items()],
                "documents": len(documents),
            }
        )


def _maybe_die(block: int) -> None:
    wanted = os.environ.get(FAIL_ONCE_ENV)
    if wanted:
        ordinal, marker = wanted.split(":", 1)
        if block >= int(ordinal) and not Path(marker).exists():
            Path(marker).write_text("died")
            os._exit(1)  # the actor's process dies as a killed worker does


@dataclass
class _Block:
    ordinal: int
    documents: list[Document]
    rejects: list[tuple[RecordError, str | None]]


def _blocks(source: Source, fmt: SourceFormat, mapping: FieldMapping, size: int) -> Iterator[_Block]:
    validator = Validator(mapping)
    block: _Block | None = None
    for record in read_records(source, fmt):
        if block is None:
            block = _Block(record.ordinal, [], [])
        try:
            block.documents.append(validator.document(record))
        except RecordError as exc:
            block.rejects.append((exc, record.raw))
        if len(block.documents) >= size:
            yield block
            block = None
    if block is not None:
        yield block


def ingest_on_ray(
    index: Index,
    source: Source,
    *,
    address: str | None = None,
    workers: int = 2,
    resume: bool = False,
    fmt: SourceFormat = "auto",
    mapping: FieldMapping = FieldMapping(),
    block_size: int = 64,
    progress: bool | None = None,
    options: BackendOptions | None = None,
) -> IngestSummary:
    """`index` opened on OpenSearch or a Qdrant server (`options` say how the workers reach it);
    `address`: a running cluster ("auto", "ray://…"), else a local one with `workers` CPUs."""
    import ray

    if options is None:
        raise ConfigError("a Ray ingest needs to know how its workers reach the engine: open the Index by backend name and url, not with a Backend object")
    if options.kind == "edge" or (options.kind == "qdrant" and not options.url):
        raise ConfigError(
            "Qdrant Edge and Qdrant's local mode are one process's folder: ingest into them with the local engine (--engine local), or use OpenSearch or a Qdrant server"
        )
    started = time.perf_counter()
    sparse, multivector = index.document_encoders()
    state_dir = index.data_dir / "state" / index.name
    state_dir.mkdir(parents=True, exist_ok=True)
    local = IngestPipeline(
        index.backend, index._spec(multivector), sparse, sparse.model.tokenizer, multivector_encoder=multivector, state_dir=state_dir, progress=False
    )
    job = "ray|" + job_key(source, index.backend.name, index.name, sparse, multivector)
    checkpoint_path = state_dir / "ray-checkpoint.json"
    dead_path = state_dir / "dead-letter.jsonl"
    checkpoint = RayCheckpoint.load(checkpoint_path, job) if resume else None
    if checkpoint is None:
        checkpoint = RayCheckpoint(job)
        dead_path.unlink(missing_ok=True)
    DeadLetter.truncate(dead_path, checkpoint.dead_letter_bytes)
    if local.statistics.pending() is not None:
        raise ConfigError(f"a local job on index {index.name!r} stopped in the middle of a batch: run it again (with --resume) first")
    local.prepare(source, fmt, mapping)
    blocks = list(_blocks(source, fmt, mapping, block_size))
    codec = _codec(local, blocks)
    statistics = CorpusStatistics(index.backend, index.name, sparse.model.tokenizer, journal=EngineJournal(index.backend, index.name))
    finished = set(checkpoint.done)
    todo = [b for b in blocks if b.ordinal not in finished]
    by_ordinal = {b.ordinal: b for b in todo}
    if todo and not checkpoint.finished:
        started_ray = not ray.is_initialized()
        if started_ray:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        ray.data.DataContext.get_current().enable_progress_bars = False  # lsrkit's own bar says docs/s
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        items = [{"block": b.ordinal, "payload": json.dumps([asdict(d) | {"metadata": dict(d.metadata)} for d in b.documents])} for b in todo]
        data = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            BlockWriter,
            fn_constructor_kwargs={
                "options": {**asdict(options), "data_dir": str(options.data_dir)},
                "index": index.name,
                "models": asdict(index.models),
                "job": job,
                "codec": codec.to_meta() if codec else None,
                "vocab_model": index.models.sparse,
                "threads": max(1, (os.cpu_count() or 1) // workers) if address is None else 0,
            },
            batch_size=1,
            concurrency=workers,
            num_cpus=1,
            max_restarts=-1,
            max_task_retries=-1,
        )
        dead = DeadLetter(dead_path)
        bar = Progress(len(blocks), initial=len(checkpoint.done), enabled=progress)
        try:
            for row in data.iter_rows():
                block = by_ordinal[int(row["block"])]
                result = json.loads(row["result"])
                statistics.apply(Change(**result["change"]), {k: v for k, v in result["written"].items()})
                for error, raw in block.rejects:
                    dead.add(position=error.position, reason=error.reason, record_id=error.record_id, raw=raw, stage=stage_of(error))
                for reject in result["rejects"]:
                    dead.add(position=reject["position"], reason=reject["reason"], record_id=reject["record_id"], stage=reject["stage"])
                checkpoint.done.append(block.ordinal)
                checkpoint.documents += result["documents"]
                checkpoint.passages += len(result["written"])
                checkpoint.rejected += len(block.rejects) + len(result["rejects"])
                checkpoint.dead_letter_bytes = dead.size()
                checkpoint.save(checkpoint_path)
                bar.advance(1)
        finally:
            dead.close()
            bar.close()
            if started_ray:
                ray.shutdown()  # a cluster this job started ends with it
    _finish(index, statistics, local)
    checkpoint.finished = True
    checkpoint.save(checkpoint_path)
    return IngestSummary(
        read=sum(len(b.documents) + len(b.rejects) for b in blocks),
        documents=checkpoint.documents,
        passages_written=checkpoint.passages,
        rejected=checkpoint.rejected,
        seconds=time.perf_counter() - started,
        dead_letter=str(dead_path),
        idf_path=str(local.idf_path),
    )


def _codec(local: IngestPipeline, blocks: list[_Block]) -> MultiVectorCodec | None:
    """The index's codec; a new index's is calibrated on its first block, as the local job does."""
    if not local.spec.multivector_dim or not blocks:
        return None
    stored = local.codec_for([])
    if stored is not None:
        return stored
    assert local.multivector_encoder is not None
    texts = [passage_text(p.title, p.text) for d in blocks[0].documents for p in local.chunker.split(d)]
    return local.codec_for(list(local.multivector_encoder.encode_documents(texts)))  # the token vectors alone: no sparse encoding wasted


def _finish(index: Index, statistics: CorpusStatistics, local: IngestPipeline) -> None:
    index.backend.flush(index.name)
    stored = index.backend.get_meta(index.name, STATISTICS_META) or {}
    if stored.get("applied"):
        index.backend.put_meta(index.name, STATISTICS_META, {**stored, "applied": []})  # the job is done: no block is retried now
    statistics.table().save(local.idf_path)
