"""The corpus statistics behind the inference-free IDF, exact as documents come, change and go.

The document frequencies stored with the index (meta "idf") are the one source: every batch that
adds, replaces or deletes passages changes them by exactly what it took out of the engine and what
it put in. A crash can fall between the engine write and the statistics update, so each change is
journaled first (a write-ahead record in the job's state folder) with what the engine held before:

1. journal: the batch's documents' stored passages (their token sets), the passages to delete;
2. the engine writes and deletes (idempotent: point ids are derived from passage ids);
3. the statistics: − what was overwritten or deleted, + what was written, stamped with the
   change's id in the same meta document (so a change is never applied twice);
4. the journal entry is removed.

A job that stops anywhere and runs again finds the entry and finishes that change from it; with no
entry, the engine already holds the batch and reading it back gives a change of zero.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lsrkit.core.errors import BackendError, CheckpointError
from lsrkit.core.types import Hit
from lsrkit.encoders.idf import DocFreqCounter, IdfTable
from lsrkit.encoders.text import TextTokenizer
from lsrkit.plugin.base import Backend

STATISTICS_META = "idf"  # the MetaStore key of an index's document frequencies


def passage_text(title: str, text: str) -> str:
    """What is encoded and counted for a passage: its title, then its text."""
    return f"{title} {text}".strip() if title else text


@dataclass
class Change:
    """One batch's change to the statistics, journaled before the engine is touched."""

    id: str
    job: str
    batch: int  # the batch's first source ordinal (an ingest), -1 for a delete
    before: dict[str, list[int]]  # passage id → token ids of the passages stored before the batch
    deletes: list[str] = field(default_factory=list)  # passages the batch removes
    found: list[str] = field(default_factory=list)  # the documents the engine held
    owners: dict[str, str] = field(default_factory=dict)  # passage to delete → its document


class FileJournal:
    """The journal of a job on one machine: its one pending change, in the job's state folder."""

    applied_kept = 1  # changes are applied in order: the last one's id says all

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "statistics-journal.json"

    def pending(self) -> Change | None:
        if not self.path.is_file():
            return None
        try:
            return Change(**json.loads(self.path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"statistics journal {self.path} is unreadable: {exc}") from exc

    def get(self, change_id: str) -> Change | None:
        change = self.pending()
        return change if change is not None and change.id == change_id else None

    def put(self, change: Change) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(asdict(change), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def clear(self, change_id: str) -> None:
        self.path.unlink(missing_ok=True)


class EngineJournal:
    """The journal of a job spread over machines: each change in the engine's meta store, where
    every worker and the driver find it (Ray ingest)."""

    applied_kept = 100_000  # blocks finish out of order: every id of the job (the driver clears them at its end)

    def __init__(self, backend: Backend, index: str) -> None:
        self.backend, self.index = backend, index

    def pending(self) -> Change | None:
        return None  # changes are found by id, by the block that journaled them

    def get(self, change_id: str) -> Change | None:
        stored = self.backend.get_meta(self.index, f"journal-{change_id}")
        return Change(**stored) if stored else None

    def put(self, change: Change) -> None:
        self.backend.put_meta(self.index, f"journal-{change.id}", asdict(change))

    def clear(self, change_id: str) -> None:
        self.backend.put_meta(self.index, f"journal-{change_id}", {})


class CorpusStatistics:
    """The document frequencies of one index and the journal of their changes."""

    def __init__(
        self, backend: Backend, index: str, tokenizer: TextTokenizer, state_dir: Path | None = None, *, journal: FileJournal | EngineJournal | None = None
    ) -> None:
        self.backend = backend
        self.index = index
        self.tokenizer = tokenizer
        if journal is None and state_dir is None:
            raise ValueError("CorpusStatistics needs a state_dir or a journal")
        self.journal = journal or FileJournal(state_dir)  # type: ignore[arg-type]

    # -- the journal -----------------------------------------------------------------------------
    def pending(self) -> Change | None:
        return self.journal.pending()

    def begin(self, job: str, batch: int, documents: Sequence[str], keep: Iterable[str] = (), *, change_id: str | None = None) -> Change:
        """Journal the change of a batch over these documents: their stored passages, and those of
        them not in `keep` (the batch's new passages) to delete."""
        stored = self.backend.read_documents(self.index, list(documents)) if documents else []
        kept = set(keep)
        change = Change(
            id=change_id or uuid.uuid4().hex,
            job=job,
            batch=batch,
            before=dict(zip([h.id for h in stored], self.token_sets(_texts(stored)), strict=True)),
            deletes=sorted(h.id for h in stored if h.id not in kept),
            found=sorted({str(h.metadata.get("doc_id", h.id)) for h in stored}),
            owners={h.id: str(h.metadata.get("doc_id", h.id)) for h in stored if h.id not in kept},
        )
        self.journal.put(change)
        return change

    def apply(self, change: Change, written: Mapping[str, Sequence[int]]) -> None:
        """Step 3 and 4: the engine holds the batch; `written` maps the passages it wrote to their
        token sets. A change already stamped on the statistics is not applied again; the table is
        replaced only over the version it was computed from (a concurrent change re-reads it)."""
        for _ in range(100):
            stored = self.backend.get_meta(self.index, STATISTICS_META) or {}
            applied = list(stored.get("applied") or [])
            if change.id in applied:
                break
            counter = self.counter(stored)
            gone = set(change.deletes) | set(written)
            counter.remove(ids for passage, ids in change.before.items() if passage in gone)
            counter.add(written.values())
            if counter.n_docs < 0 or (counter.doc_freq < 0).any():
                raise CheckpointError(f"the corpus statistics of index {self.index!r} do not match its passages (built by another release?): ingest it afresh")
            applied = [*applied, change.id][-self.journal.applied_kept :]
            fresh = {**counter.state(), "applied": applied, "version": int(stored.get("version", 0)) + 1}
            if self.backend.swap_meta(self.index, STATISTICS_META, stored or None, fresh):
                break
        else:
            raise BackendError(f"the corpus statistics of index {self.index!r} kept changing under this job: is another job writing without the lease?")
        self.journal.clear(change.id)

    # -- the statistics --------------------------------------------------------------------------
    def token_sets(self, texts: Sequence[str]) -> list[list[int]]:
        return [sorted(set(ids)) for ids in self.tokenizer.token_ids(list(texts), add_special_tokens=False)] if texts else []

    def counter(self, stored: Mapping[str, Any] | None = None) -> DocFreqCounter:
        state = stored if stored is not None else self.backend.get_meta(self.index, STATISTICS_META)
        size = len(self.tokenizer.vocab)
        return DocFreqCounter.from_state(dict(state), size) if state and "n_docs" in state else DocFreqCounter(size)

    def table(self) -> IdfTable:
        return self.counter().to_table(self.tokenizer.vocab)


@dataclass
class DeleteSummary:
    documents: int = 0  # of those asked for, how many the index held
    passages: int = 0
    not_found: list[str] = field(default_factory=list)


def delete_documents(backend: Backend, index: str, doc_ids: Iterable[str], statistics: CorpusStatistics, batch: int = 64) -> DeleteSummary:
    """Remove documents, their passages and vectors, and their share of the statistics; a delete
    stopped anywhere and run again ends as one that was not (its journal entry is finished first)."""
    backend.flush(index)  # what was written last is searchable, so it is found
    pending = statistics.pending()
    if pending is not None:
        if pending.batch >= 0:
            raise CheckpointError(f"an ingest job stopped in the middle of a batch of index {index!r} ({pending.job}): run it again with --resume first")
        finish_delete(backend, statistics, pending)
    wanted = list(dict.fromkeys(doc_ids))
    summary = DeleteSummary()
    for start in range(0, len(wanted), batch):
        chunk = wanted[start : start + batch]
        change = statistics.begin("delete", -1, chunk)
        held = set(change.found)
        finish_delete(backend, statistics, change)
        summary.documents += len(held)
        summary.passages += len(change.deletes)
        summary.not_found.extend(d for d in chunk if d not in held)
    backend.flush(index)  # searches see the deletes
    return summary


def finish_delete(backend: Backend, statistics: CorpusStatistics, change: Change) -> None:
    backend.delete(statistics.index, change.deletes)
    statistics.apply(change, {})


def _texts(hits: Sequence[Hit]) -> list[str]:
    return [passage_text(h.title, h.text) for h in hits]


__all__ = ["STATISTICS_META", "Change", "CorpusStatistics", "DeleteSummary", "delete_documents", "finish_delete", "passage_text"]
