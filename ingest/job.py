"""The ingestion job: read → validate → chunk → encode → bulk write → checkpoint.

`IngestJob.stream()` yields one BatchResult per acknowledged batch; `run()` sums them.
Encoding (main thread) and engine writes (a writer thread) overlap through a bounded queue;
a batch is checkpointed only after the engine acknowledged it, with its dead letters and ids seen;
its change to the corpus statistics is journaled and applied once (ingest/statistics.py).
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from lsrkit.core.config import BatchPolicy, IndexSpec
from lsrkit.core.errors import IndexMissingError, IngestError, RecordError
from lsrkit.core.types import Document, MultiVector, passage_text
from lsrkit.encoders.text import TextTokenizer
from lsrkit.ingest.checkpoint import JOB_CHECKPOINTS, Checkpoint
from lsrkit.ingest.chunking import Chunker
from lsrkit.ingest.deadletter import DeadLetter
from lsrkit.ingest.encoding import BatchEncoder, EncodesMultiVectorDocuments, EncodesSparseDocuments
from lsrkit.ingest.index_codec import IndexCodec
from lsrkit.ingest.lease import DEFAULT_LEASE_SECONDS, Lease
from lsrkit.ingest.manifest import encoders_manifest, record_manifest
from lsrkit.ingest.progress import Progress
from lsrkit.ingest.retry import RetryPolicy
from lsrkit.ingest.sources import FieldMapping, Source, SourceFormat, SourceRecord, read_records
from lsrkit.ingest.statistics import CorpusStatistics
from lsrkit.ingest.validate import Validator
from lsrkit.ingest.writing import BatchWriter
from lsrkit.plugin.base import Backend, EncodedRecord
from lsrkit.plugin.codec import MultiVectorCodec


@dataclass
class BatchResult:
    first_ordinal: int
    next_ordinal: int
    documents: int
    passages_written: int
    rejected: int
    retried: int
    seconds: float


@dataclass
class IngestSummary:
    read: int = 0
    documents: int = 0
    passages_written: int = 0
    rejected: int = 0
    retried: int = 0
    seconds: float = 0.0
    resumed_from: int = 0
    dead_letter: str = ""
    idf_path: str = ""

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "docs_per_second": round(self.docs_per_second, 2)}


@dataclass
class _Unit:
    """A batch of source records on its way from the encoder to the writer."""

    first_ordinal: int
    next_ordinal: int
    documents: list[Document] = field(default_factory=list)
    records: list[EncodedRecord] = field(default_factory=list)
    rejects: list[tuple[RecordError, str | None]] = field(default_factory=list)


class IngestJob:
    """Ingest a corpus into one index of one backend, resumably."""

    def __init__(
        self,
        backend: Backend,
        spec: IndexSpec,
        sparse_encoder: EncodesSparseDocuments,
        tokenizer: TextTokenizer,
        *,
        multivector_encoder: EncodesMultiVectorDocuments | None = None,
        state_dir: Path,
        policy: BatchPolicy = BatchPolicy(),
        chunk_window: int = 254,
        chunk_overlap: int = 32,
        retry: RetryPolicy = RetryPolicy(),
        progress: bool | None = None,
        job_name: str = "",
        lease_timeout: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        if spec.multivector_dim and multivector_encoder is None:
            raise IngestError(f"index {spec.name!r} stores multivectors: pass a multivector_encoder")
        self.backend = backend
        self.spec = spec
        self.sparse_encoder = sparse_encoder
        self.tokenizer = tokenizer
        self.multivector_encoder = multivector_encoder
        self.state_dir = Path(state_dir)
        self.policy = policy
        self.chunker = Chunker(tokenizer.tokenizer, chunk_window, chunk_overlap)
        self.batch_encoder = BatchEncoder(sparse_encoder, multivector_encoder, self.chunker)
        self.retry = retry
        self.progress = progress
        self.job_name = job_name
        self.dead_letter_path = self.state_dir / "dead-letter.jsonl"
        self.checkpoint_path = self.state_dir / JOB_CHECKPOINTS["local"]
        self.ids_path = self.state_dir / "ids.log"
        self.idf_path = self.state_dir / "idf.json"
        self.codec = IndexCodec(backend, spec.name, spec.multivector_representation, enabled=bool(spec.multivector_dim))
        self.statistics = CorpusStatistics(backend, spec.name, tokenizer)
        self.lease_timeout = lease_timeout
        self._job_key = ""
        self._lease: Lease | None = None
        self._batch_writer = BatchWriter(backend, spec.name, self.statistics, policy=policy, retry=retry, check=self._check_lease)

    # -- public --------------------------------------------------------------------------------
    def run(self, source: Source, *, fmt: SourceFormat = "auto", mapping: FieldMapping = FieldMapping(), resume: bool = False) -> IngestSummary:
        summary = IngestSummary(dead_letter=str(self.dead_letter_path), idf_path=str(self.idf_path))
        start = time.perf_counter()
        for batch in self.stream(source, fmt=fmt, mapping=mapping, resume=resume):
            summary.read = batch.next_ordinal
            summary.documents += batch.documents
            summary.passages_written += batch.passages_written
            summary.rejected += batch.rejected
            summary.retried += batch.retried
        summary.seconds = time.perf_counter() - start
        summary.resumed_from = self._resumed_from
        summary.read = max(summary.read, self._resumed_from)  # a finished job resumed reads nothing new
        return summary

    def stream(self, source: Source, *, fmt: SourceFormat = "auto", mapping: FieldMapping = FieldMapping(), resume: bool = False) -> Iterator[BatchResult]:
        """`source`: a file or folder (JSONL, BEIR, CSV/TSV, Parquet), or records in memory (read
        twice when a first pass measures the corpus: an iterator is listed first)."""
        if not isinstance(source, (str, Path, Sequence)):
            source = list(source)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        job = self._job(source)
        self._ensure_index(source, fmt, mapping)
        # one writer per index: taken before this job writes to the index or touches its state folder
        self._lease = Lease(self.backend, self.spec.name, job, timeout=self.lease_timeout).acquire()
        try:
            checkpoint = Checkpoint.load(self.checkpoint_path, job) if resume else None
            # what a stopped job (this one, or any other, on any machine) left half done is made
            # searchable, then finished from the engine's journal before this job writes
            self.backend.flush(self.spec.name)
            self.statistics.finish_open()
            if checkpoint is None:
                checkpoint = Checkpoint(job=job)
                # a Ray job's finished checkpoint must not vouch for the index this job now changes
                for path in (self.dead_letter_path, self.ids_path, self.checkpoint_path, self.state_dir / JOB_CHECKPOINTS["ray"]):
                    path.unlink(missing_ok=True)
            else:
                DeadLetter.truncate(self.dead_letter_path, checkpoint.dead_letter_bytes)
                DeadLetter.truncate(self.ids_path, checkpoint.ids_bytes)
            self._resumed_from = checkpoint.next_ordinal
            self._record_encoders()
            seen = set(self.ids_path.read_text(encoding="utf-8").split("\n")) - {""} if self.ids_path.exists() else set()
            validator = Validator(mapping, seen=seen)
            self._job_key = job
            if not checkpoint.done:
                yield from self._stream(source, fmt, validator, checkpoint)
            self._finish()
        finally:
            self._lease.release()
            self._lease = None

    def prepare(self, source: Source, fmt: SourceFormat = "auto", mapping: FieldMapping = FieldMapping()) -> None:
        """Before the first write: the index (with what the engine must know of the corpus), its
        manifest of encoders (checked against an existing one), its codec when it has one."""
        self._ensure_index(source, fmt, mapping)
        self._record_encoders()

    def _ensure_index(self, source: Source, fmt: SourceFormat, mapping: FieldMapping) -> None:
        self.spec = self._with_text_statistics(source, fmt, mapping)
        self.backend.ensure_index(self.spec)

    def _record_encoders(self) -> None:
        manifest = encoders_manifest(self.sparse_encoder.manifest, self.multivector_encoder.manifest if self.multivector_encoder else None, self.spec)
        record_manifest(self.backend, self.spec.name, manifest)
        self.codec.stored()

    def _check_lease(self) -> None:
        if self._lease is not None:
            self._lease.check()

    # -- internals -----------------------------------------------------------------------------
    def _with_text_statistics(self, source: Source, fmt: SourceFormat, mapping: FieldMapping) -> IndexSpec:
        """The spec with what the engine must know before its first write. An engine that bakes
        the corpus's mean passage length into the BM25 weights it stores (needs_bm25_mean_length:
        Qdrant) has a new index measure it in a first pass over the source (reading and chunking
        only); an existing one keeps the length it was built with."""
        spec = self.spec
        if not spec.with_bm25 or spec.bm25_avg_len is not None or not self.backend.needs_bm25_mean_length:
            return spec
        try:
            return replace(spec, bm25_avg_len=self.backend.spec(spec.name).bm25_avg_len)
        except IndexMissingError:
            pass
        validator, texts, total, passages = Validator(mapping), list[str](), 0, 0
        for record in read_records(source, fmt):
            try:
                document = validator.document(record)
            except RecordError:
                continue  # the job itself dead-letters it
            texts.extend(passage_text(p.title, p.text) for p in self.chunker.split(document))
            if len(texts) >= 1024:
                total, passages, texts = total + sum(self.backend.text_lengths(spec, texts)), passages + len(texts), []
        total, passages = total + sum(self.backend.text_lengths(spec, texts)), passages + len(texts)
        return replace(spec, bm25_avg_len=round(total / passages, 2) if passages and total else None)

    def _job(self, source: Source) -> str:
        return self.job_name or job_key(source, self.backend.name, self.spec.name, self.sparse_encoder, self.multivector_encoder, self.policy.write_batch)

    def _units(self, source: Source, fmt: SourceFormat, validator: Validator, start: int, bar: Progress) -> Iterator[_Unit]:
        unit: _Unit | None = None
        for record in read_records(source, fmt):
            if record.ordinal < start:
                continue
            if unit is None:
                unit = _Unit(record.ordinal, record.ordinal)
            self._admit(record, validator, unit)
            unit.next_ordinal = record.ordinal + 1
            bar.advance(1)
            if len(unit.documents) >= self.policy.write_batch:
                yield unit
                unit = None
        if unit is not None:
            yield unit

    @staticmethod
    def _admit(record: SourceRecord, validator: Validator, unit: _Unit) -> None:
        try:
            unit.documents.append(validator.document(record))
        except RecordError as exc:
            unit.rejects.append((exc, record.raw))

    def _encode(self, unit: _Unit) -> None:
        records, rejects = self.batch_encoder.encode(unit.documents, self._codec_for)
        unit.records.extend(records)
        unit.rejects.extend(rejects)

    def _codec_for(self, multi: list[MultiVector | None]) -> MultiVectorCodec | None:
        return self.codec.for_batch(multi)

    def _stream(self, source: Source, fmt: SourceFormat, validator: Validator, checkpoint: Checkpoint) -> Iterator[BatchResult]:
        work: queue.Queue[_Unit | None] = queue.Queue(maxsize=self.policy.queue_depth)
        results: queue.Queue[BatchResult | BaseException | None] = queue.Queue()
        stop = threading.Event()
        dead = DeadLetter(self.dead_letter_path)
        writer = threading.Thread(target=self._writer, args=(work, results, stop, checkpoint, dead), name="lsrkit-writer", daemon=True)
        writer.start()
        bar = Progress(self._total(source, fmt), initial=checkpoint.next_ordinal, enabled=self.progress)
        finished = False
        try:
            for unit in self._units(source, fmt, validator, checkpoint.next_ordinal, bar):
                self._encode(unit)
                while True:
                    yield from self._drain(results, block=False)
                    try:
                        work.put(unit, timeout=0.2)
                        break
                    except queue.Full:
                        if not writer.is_alive():
                            break
            while writer.is_alive():
                try:
                    work.put(None, timeout=0.2)
                    break
                except queue.Full:
                    continue
            while (item := results.get()) is not None:
                yield from self._check(item)
            finished = True
        finally:
            if not finished:
                stop.set()
                try:
                    work.put_nowait(None)
                except queue.Full:
                    pass
            writer.join(timeout=60)
            if writer.is_alive() and self._lease is not None:
                self._lease.abandon()  # a bulk may still land: the lease expires instead of being given back
            dead.close()
            bar.close()
        checkpoint.done = True
        checkpoint.save(self.checkpoint_path)

    @staticmethod
    def _check(item: BatchResult | BaseException) -> Iterator[BatchResult]:
        if isinstance(item, BaseException):
            raise item
        yield item

    def _drain(self, results: queue.Queue[BatchResult | BaseException | None], block: bool) -> Iterator[BatchResult]:
        while True:
            try:
                item = results.get(block=block)
            except queue.Empty:
                return
            if item is None:
                results.put(None)  # keep the end marker for the final loop
                return
            yield from self._check(item)

    def _writer(
        self,
        work: queue.Queue[_Unit | None],
        results: queue.Queue[BatchResult | BaseException | None],
        stop: threading.Event,
        checkpoint: Checkpoint,
        dead: DeadLetter,
    ) -> None:
        try:
            while not stop.is_set():
                unit = work.get()
                if unit is None:
                    break
                started = time.perf_counter()
                written, retried = self._write_unit(unit, dead, stop)
                if stop.is_set():
                    break
                self._commit(unit, checkpoint, dead, written)
                results.put(
                    BatchResult(unit.first_ordinal, unit.next_ordinal, len(unit.documents), written, len(unit.rejects), retried, time.perf_counter() - started)
                )
        except BaseException as exc:  # hand it to the consumer's thread
            results.put(exc)
        finally:
            results.put(None)

    def _write_unit(self, unit: _Unit, dead: DeadLetter, stop: threading.Event) -> tuple[int, int]:
        """Write the batch (ingest/writing.py), then apply its change to the statistics."""
        done = self._batch_writer.write(self._job_key, unit.first_ordinal, unit.records, stop=stop)
        for record_id, reason in done.refused.items():
            unit.rejects.append((RecordError(f"engine refused: {reason}", position="write", record_id=record_id), None))
        if not done.complete or stop.is_set():
            return len(done.written), done.retried
        self._check_lease()
        self.statistics.apply(done.change, done.written)
        return len(done.written), done.retried

    def _commit(self, unit: _Unit, checkpoint: Checkpoint, dead: DeadLetter, written: int) -> None:
        for error, raw in unit.rejects:
            dead.add(position=error.position, reason=error.reason, record_id=error.record_id, raw=raw, stage=stage_of(error))
        with self.ids_path.open("a", encoding="utf-8") as handle:
            handle.write("".join(f"{d.id}\n" for d in unit.documents))
        checkpoint.next_ordinal = unit.next_ordinal
        checkpoint.written += written
        checkpoint.passages += len(unit.records)
        checkpoint.rejected += len(unit.rejects)
        checkpoint.ids_bytes = self.ids_path.stat().st_size
        checkpoint.dead_letter_bytes = dead.size()
        checkpoint.save(self.checkpoint_path)

    def _total(self, source: Source, fmt: SourceFormat) -> int | None:
        if not isinstance(source, (str, Path)):
            return len(source) if isinstance(source, Sequence) else None
        path = Path(source).expanduser()
        path = path / "corpus.jsonl" if path.is_dir() else path
        if path.suffix.lower() in (".jsonl", ".ndjson") and path.stat().st_size < 2**30:
            with path.open("rb") as handle:
                return sum(1 for _ in handle)
        return None

    def _finish(self) -> None:
        self.backend.flush(self.spec.name)
        self.statistics.table().save(self.idf_path)  # the whole index's, in OpenSearch's idf.json form


def stage_of(error: RecordError) -> str:
    """Where a record was refused: reading and validation, encoding, or the engine's write."""
    return {"passage": "encode", "write": "write"}.get(error.position, "validate")


def job_key(source: Source, backend: str, index: str, sparse: EncodesSparseDocuments, multivector: EncodesMultiVectorDocuments | None, batch: int) -> str:
    """What a checkpoint belongs to: the source, the engine, the index, the encoders and the batch
    size (a Ray checkpoint lists finished blocks by ordinal: a resume must cut them alike)."""
    encoders = f"{sparse.fingerprint}|{multivector.fingerprint if multivector else 'no-multivector'}"
    if isinstance(source, (str, Path)):
        origin = str(Path(source).expanduser().resolve())
    else:  # records in memory: their content names the job (a resume of other records is refused)
        origin = "records:" + hashlib.sha256(json.dumps(list(source), sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{origin}|{backend}|{index}|{encoders}|batch={batch}"


__all__ = ["BatchResult", "IngestJob", "IngestSummary", "RetryPolicy", "job_key"]
