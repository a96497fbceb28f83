"""Ingest on Ray: the local job's pieces, spread over a cluster.

The driver streams the source: it reads and validates it in order (dead letters keep their source
positions, duplicate ids are found across the whole source), cuts it into blocks of documents and
keeps at most two blocks per worker in flight (memory bounded in the corpus size), on a pool of
actors (`ray.util.ActorPool`). Each actor loads the encoders once and runs the local job's
encode step (`BatchEncoder`) and write step (`BatchWriter`: journal, bulks retried while the
engine is unavailable, deletes) against OpenSearch or a Qdrant server. The driver holds the
index's write lease, applies each finished block's change to the statistics (once: changes have
ids derived from the job and the block) and checkpoints the finished blocks, so a driver killed
and run again with `resume` skips the blocks the engine acknowledged. An actor writes (journal,
bulks, deletes) only while its driver holds the lease: a driver SIGKILLed leaves its actors running
for a moment, and the job that takes the lease over finishes the stopped run's changes from what
the engine holds then (`worker_check`). A killed actor is restarted
by Ray and its block retried, at most `BLOCK_RETRIES` times (ids are deterministic: no
duplicates); a block that still fails, or an engine that stays unavailable, stops the job
non-zero. Qdrant Edge is one process's folder: it stays on the local path.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsrkit.core.config import BatchPolicy
from lsrkit.core.errors import ConfigError, IngestError, LsrError, RecordError
from lsrkit.core.types import Document
from lsrkit.factory import BackendOptions, ModelChoice, document_encoders, open_backend
from lsrkit.index import Index
from lsrkit.ingest import Chunker, FieldMapping, IngestJob, IngestSummary, Validator, read_records
from lsrkit.ingest.checkpoint import JOB_CHECKPOINTS, JobState
from lsrkit.ingest.deadletter import DeadLetter
from lsrkit.ingest.encoding import BatchEncoder
from lsrkit.ingest.index_codec import IndexCodec
from lsrkit.ingest.job import job_key, stage_of
from lsrkit.ingest.lease import DEFAULT_LEASE_SECONDS, LEASE_META, Lease, LeaseLostError
from lsrkit.ingest.progress import Progress
from lsrkit.ingest.retry import RetryPolicy, retrying
from lsrkit.ingest.sources import Source, SourceFormat
from lsrkit.ingest.statistics import STATISTICS_META, Change, CorpusStatistics, EngineJournal
from lsrkit.ingest.writing import BatchWriter
from lsrkit.plugin.base import Backend

CODEC_WAIT_SECONDS = 900.0  # how long a block of a new index waits for the first block's codec
BLOCK_RETRIES = 3  # a block whose worker died this many times stops the job (a poison block, not a flaky node)


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


def change_id(run: str, block: int) -> str:
    """The id of a block's change in one run of the driver: the same when Ray retries the block
    (its journal entry is reused); a run after a stopped one finishes the stopped run's open
    changes from the engine first, then writes its blocks under ids of its own."""
    return hashlib.sha256(f"{run}|{block}".encode()).hexdigest()[:32]


def worker_check(backend: Backend, index: str, lease: str, retry: RetryPolicy) -> Callable[[], None]:
    """An actor's check before its block's journal entry, each bulk and the deletes: the driver
    that started it still holds the index's write lease (token `lease`), else LeaseLostError.

    A driver SIGKILLed does not take its actors with it at once (Ray starts each worker in its own
    process group; a worker exits when it finds its raylet gone, seconds later). The job that takes
    the lease over finishes the stopped run's open changes from what the engine holds then; a block
    an orphaned actor journaled or wrote after that was never counted, and the resumed job's rerun
    of the block, finding its passages stored, took them for counted ones (stored, not counted).
    Checked before each write, as the local job checks its own lease: a write already sent when
    the lease is taken over is not called back. A journal entry put after the takeover (the check
    passed just before it) stays unlisted: `finish_open` delists ids it found no entry for."""

    def check() -> None:
        holder = retrying(lambda: backend.get_meta(index, LEASE_META), retry) or {}
        if holder.get("token") != lease:
            raise LeaseLostError(f"index {index!r}: its Ray driver no longer holds the write lease (it stopped): this worker writes nothing more")

    return check


class BlockWriter:
    """A Ray actor: the encoders loaded once; each block chunked, encoded and written."""

    def __init__(
        self,
        options: dict[str, Any],
        index: str,
        models: dict[str, Any],
        job: str,
        run: str,
        codec: dict[str, Any],
        threads: int,
        policy: dict[str, Any],
        lease: str,
    ) -> None:
        self.backend = open_backend(BackendOptions(**options))
        # onnxruntime's threads: the actor's share of the machine, not a thread per core in every actor
        sparse, multivector = document_encoders(ModelChoice(**models), threads=threads)
        self.encoder = BatchEncoder(sparse, multivector, Chunker(sparse.model.tokenizer.tokenizer))
        # the driver lists each block's change as open before it hands the block out
        statistics = CorpusStatistics(self.backend, index, sparse.model.tokenizer, journal=EngineJournal(self.backend, index, register=False))
        retry = RetryPolicy(**policy["retry"])
        check = worker_check(self.backend, index, lease, retry)  # `lease`: the driver's lease token
        self.writer = BatchWriter(self.backend, index, statistics, policy=BatchPolicy(**policy["batch"]), retry=retry, check=check)
        self.codec = IndexCodec(self.backend, index, codec["representation"], enabled=multivector is not None)
        # a new index's codec is calibrated on the job's first block alone (ordinal 0: blocks
        # start at their first record, rejected ones included), as the local job's first batch
        self.calibrates_first_block: bool = codec["new"]
        self.job, self.run = job, run

    def block(self, block: int, documents: list[Document]) -> dict[str, Any]:
        records, rejects = self.encoder.encode(
            documents, lambda multi: self.codec.for_batch(multi, calibrate=self.calibrates_first_block and block == 0, wait_seconds=CODEC_WAIT_SECONDS)
        )
        done = self.writer.write(self.job, block, records, change_id=change_id(self.run, block))
        return {
            "block": block,
            "change": asdict(done.change),
            "written": done.written,
            "rejects": [{"position": e.position, "reason": e.reason, "record_id": e.record_id, "stage": stage_of(e)} for e, _ in rejects]
            + [{"position": "write", "reason": f"engine refused: {why}", "record_id": rid, "stage": "write"} for rid, why in done.refused.items()],
            "documents": len(documents),
        }


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
    policy: BatchPolicy = BatchPolicy(),
    retry: RetryPolicy = RetryPolicy(),
    lease_timeout: float = DEFAULT_LEASE_SECONDS,
    progress: bool | None = None,
) -> IngestSummary:
    """`index` opened on OpenSearch or a Qdrant server by BackendOptions (they say how the workers
    reach it); `address`: a running cluster ("auto", "ray://…"), else a local one with `workers` CPUs."""
    options = index.options
    if options is None:
        raise ConfigError("a Ray ingest needs to know how its workers reach the engine: open the Index with BackendOptions, not with a Backend object")
    if options.kind == "edge" or (options.kind == "qdrant" and not options.url):
        raise ConfigError(
            "Qdrant Edge and Qdrant's local mode are one process's folder: ingest into them with the local runner (--runner local), or use OpenSearch or a Qdrant server"
        )
    started = time.perf_counter()
    sparse, multivector = index.document_encoders()
    state_dir = index.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    local = IngestJob(index.backend, index.spec(), sparse, sparse.model.tokenizer, multivector_encoder=multivector, state_dir=state_dir, progress=False)
    job = "ray|" + job_key(source, index.backend.name, index.name, sparse, multivector, policy.write_batch)
    local.prepare(source, fmt, mapping)
    with Lease(index.backend, index.name, job, timeout=lease_timeout) as lease:
        checkpoint_path = state_dir / JOB_CHECKPOINTS["ray"]
        dead_path = state_dir / "dead-letter.jsonl"
        checkpoint = RayCheckpoint.load(checkpoint_path, job) if resume else None
        if checkpoint is None:
            checkpoint = RayCheckpoint(job)
            # no earlier finished job (local or Ray) may vouch for the index this job now changes
            for path in (dead_path, *(state_dir / name for name in JOB_CHECKPOINTS.values())):
                path.unlink(missing_ok=True)
        DeadLetter.truncate(dead_path, checkpoint.dead_letter_bytes)
        statistics = CorpusStatistics(index.backend, index.name, sparse.model.tokenizer)
        index.backend.flush(index.name)
        statistics.finish_open()  # what a stopped job (local or Ray, any machine) left half done
        read = 0
        if not checkpoint.finished:
            blocks = _blocks(source, fmt, mapping, policy.write_batch)
            stored = local.codec.stored()
            actor = {
                "options": {**asdict(options), "data_dir": str(options.data_dir)},
                "index": index.name,
                "models": asdict(index.models()),
                "job": job,
                "run": uuid.uuid4().hex,
                "codec": {"representation": local.spec.multivector_representation, "new": stored is None},
                "threads": max(1, (os.cpu_count() or 1) // workers) if address is None else 0,
                "policy": {"batch": asdict(policy), "retry": asdict(retry)},
                "lease": lease.token,
            }
            read = _run_blocks(blocks, actor, workers, address, checkpoint, checkpoint_path, dead_path, statistics, lease, progress)
        _finish(index, statistics, local)
        checkpoint.finished = True
        checkpoint.save(checkpoint_path)
    return IngestSummary(
        read=read,
        documents=checkpoint.documents,
        passages_written=checkpoint.passages,
        rejected=checkpoint.rejected,
        seconds=time.perf_counter() - started,
        dead_letter=str(dead_path),
        idf_path=str(local.idf_path),
    )


def _run_blocks(
    blocks: Iterator[_Block],
    actor: dict[str, Any],
    workers: int,
    address: str | None,
    checkpoint: RayCheckpoint,
    checkpoint_path: Path,
    dead_path: Path,
    statistics: CorpusStatistics,
    lease: Lease,
    progress: bool | None,
) -> int:
    """Stream the blocks through a pool of actors; returns how many source records were read."""
    import ray
    from ray.util import ActorPool

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=BLOCK_RETRIES)(BlockWriter)
    actors: list[Any] = [remote.remote(**actor) for _ in range(workers)]  # type: ignore[attr-defined]
    pool = ActorPool(actors)
    finished, in_flight, read = set(checkpoint.done), dict[int, _Block](), 0
    dead = DeadLetter(dead_path)
    bar = Progress(None, initial=0, enabled=progress)
    try:
        for block in blocks:
            read += len(block.documents) + len(block.rejects)
            if block.ordinal in finished:
                continue
            while len(in_flight) >= 2 * workers:
                _take(pool, in_flight, checkpoint, checkpoint_path, dead, statistics, bar, lease)
            lease.check()  # a driver whose lease was taken over hands out no more blocks
            statistics.journal.open([change_id(actor["run"], block.ordinal)])
            in_flight[block.ordinal] = block
            pool.submit(lambda a, b: a.block.remote(b.ordinal, b.documents), block)
        while in_flight:
            _take(pool, in_flight, checkpoint, checkpoint_path, dead, statistics, bar, lease)
    finally:
        dead.close()
        bar.close()
        for handle in actors:  # none writes on once the driver stops (and gives back the lease)
            ray.kill(handle)
        if started_ray:
            ray.shutdown()  # a cluster this job started ends with it
    return read


def _take(
    pool: Any,
    in_flight: dict[int, _Block],
    checkpoint: RayCheckpoint,
    checkpoint_path: Path,
    dead: DeadLetter,
    statistics: CorpusStatistics,
    bar: Progress,
    lease: Lease,
) -> None:
    """One finished block: its change applied to the statistics, its dead letters, the checkpoint."""
    import ray

    try:
        result = pool.get_next_unordered()
    except ray.exceptions.RayActorError as exc:
        raise IngestError(f"a Ray worker died {BLOCK_RETRIES + 1} times on one block: stopping (run again with --resume): {exc}") from exc
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if isinstance(exc.cause, LsrError) else None
        raise cause or IngestError(f"a Ray worker failed: {exc}") from exc
    block = in_flight.pop(int(result["block"]))
    lease.check()
    statistics.apply(Change(**result["change"]), result["written"])
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


def _finish(index: Index, statistics: CorpusStatistics, local: IngestJob) -> None:
    index.backend.flush(index.name)
    stored = index.backend.get_meta(index.name, STATISTICS_META) or {}
    if stored.get("applied"):
        index.backend.put_meta(index.name, STATISTICS_META, {**stored, "applied": []})  # the job is done: no block is retried now
    statistics.table().save(local.idf_path)
