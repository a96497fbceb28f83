"""The write step of one batch, the same in the local job and in a Ray worker.

1. journal the batch's change to the corpus statistics (ingest/statistics.py);
2. bulk-write its passages, each bulk retried while the engine is unavailable (ingest/retry.py):
   an engine that stays down, overloaded or blocked past the policy stops the job, never a record;
3. delete the old passages its documents no longer have — except a document any of whose new
   passages the engine refused: it keeps the old passages its written ones did not replace (the
   refused ones are dead-lettered with the engine's reason), so an update the engine took only
   in part never removes what it could not replace.

Who applies the change to the statistics differs: the local job at once, a Ray driver when the
worker's block comes back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from lsrkit.core.config import BatchPolicy
from lsrkit.ingest.retry import RetryPolicy, retrying
from lsrkit.ingest.statistics import Change, CorpusStatistics
from lsrkit.plugin.base import Backend, EncodedRecord, WriteResult


@dataclass
class WrittenBatch:
    change: Change
    written: dict[str, list[int]] = field(default_factory=dict)  # passage id → token ids, for the statistics
    refused: dict[str, str] = field(default_factory=dict)  # passage id → the engine's reason
    retried: int = 0
    complete: bool = True  # False: stopped before its deletes (the job is stopping)


def record_bytes(record: EncodedRecord) -> int:
    # base64 on the wire
    return len(record.text) + len(record.title) + 8 * len(record.sparse) + 4 * len(record.multivector or b"") // 3


class BatchWriter:
    """Writes batches of encoded records into one index under the statistics' journal."""

    def __init__(
        self,
        backend: Backend,
        index: str,
        statistics: CorpusStatistics,
        *,
        policy: BatchPolicy = BatchPolicy(),
        retry: RetryPolicy = RetryPolicy(),
        check: Callable[[], None] = lambda: None,
    ) -> None:
        self.backend, self.index, self.statistics = backend, index, statistics
        self.policy, self.retry, self.check = policy, retry, check

    def write(
        self,
        job: str,
        batch: int,
        records: Sequence[EncodedRecord],
        *,
        change_id: str | None = None,
        stop: threading.Event | None = None,
    ) -> WrittenBatch:
        """`change_id`: a deterministic id (a Ray block's in one run of its job), whose journal
        entry a retry of the block reuses."""
        stop = stop or threading.Event()
        self.check()
        change = self.statistics.journal.get(change_id) if change_id else None
        if change is None:
            documents = sorted({r.doc_id for r in records})  # a document whose every passage was refused keeps its old ones
            change = self.statistics.begin(job, batch, documents, keep=[r.id for r in records], change_id=change_id)
        done = WrittenBatch(change)
        written: list[str] = []
        for bulk in self._bulks(records):
            self.check()
            result = self._write(bulk, stop)
            written.extend(result.written)
            done.refused.update(result.failed)
            done.retried += result.retried
            if stop.is_set():
                done.complete = False
                return done
        if done.refused:
            self._keep_old_passages_of({r.doc_id for r in records if r.id in done.refused}, change)
        self.check()
        retrying(lambda: self.backend.delete(self.index, change.deletes), self.retry, stop)
        texts = {r.id: r.full_text for r in records}
        done.written = dict(zip(written, self.statistics.token_sets([texts[i] for i in written]), strict=True))
        return done

    def _keep_old_passages_of(self, documents: set[str], change: Change) -> None:
        """A document the engine took only part of keeps its old passages (journaled anew)."""
        change.deletes = [p for p in change.deletes if change.owners.get(p) not in documents]
        self.statistics.journal.put(change)

    def _write(self, bulk: list[EncodedRecord], stop: threading.Event) -> WriteResult:
        attempts = [0]

        def write() -> WriteResult:
            self.check()  # a job whose lease lapsed while it retried writes nothing more
            attempts[0] += 1
            return self.backend.write(self.index, bulk)

        result = retrying(write, self.retry, stop)
        result.retried += attempts[0] - 1
        return result

    def _bulks(self, records: Sequence[EncodedRecord]) -> Iterator[list[EncodedRecord]]:
        bulk: list[EncodedRecord] = []
        size = 0
        for record in records:
            size_of = record_bytes(record)
            if bulk and (len(bulk) >= self.policy.write_batch or size + size_of > self.policy.write_bytes):
                yield bulk
                bulk, size = [], 0
            bulk.append(record)
            size += size_of
        if bulk:
            yield bulk


__all__ = ["BatchWriter", "WrittenBatch", "record_bytes"]
