"""The corpus statistics behind the inference-free IDF, exact as documents come, change and go.

The document frequencies stored with the index (meta "idf") are the one source: every batch that
adds, replaces or deletes passages changes them by exactly what it took out of the engine and what
it put in. A crash can fall between the engine write and the statistics update, so each change is
journaled first, in the engine (meta "journal-<id>", listed in meta "journal-open"), with what the
engine held before:

1. journal: the batch's documents, its new passages, the documents' stored passages (their token
   sets) and the passages to delete;
2. the engine writes and deletes (idempotent: point ids are derived from passage ids);
3. the statistics: − what was overwritten or deleted, + what was written, stamped with the
   change's id in the same meta document (so a change is never applied twice);
4. the journal entry is removed.

Every job that starts on the index (on any machine: the journal is the engine's) first finishes the
changes a stopped job left open (`finish_open`): a delete is finished (its deletes are idempotent);
an ingest batch is rolled forward from what the engine holds now — its new passages that are
stored count as written (a passage not rewritten still holds its old text: − old + old = 0), the
old passages no longer stored count as deleted, and nothing more is deleted — so the statistics
match the stored passages exactly; the stopped job, resumed, writes its batch again as a new
change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lsrkit.core.config import BatchPolicy
from lsrkit.core.errors import BackendError, CheckpointError
from lsrkit.core.types import Hit, passage_text
from lsrkit.encoders.idf import DocFreqCounter, IdfTable
from lsrkit.encoders.text import TextTokenizer
from lsrkit.plugin.base import Backend
from lsrkit.plugin.index_meta import STATISTICS_META


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
    documents: list[str] = field(default_factory=list)  # the batch's documents
    keep: list[str] = field(default_factory=list)  # the batch's new passages


OPEN_META = "journal-open"  # the ids of the changes journaled and not yet applied


class EngineJournal:
    """The journal of an index's changes, in the engine's meta store, where every job on every
    machine finds it. `register`: a put also lists the change as open (the lease holder does;
    a Ray worker does not: its driver lists its blocks' changes before it hands them out)."""

    def __init__(self, backend: Backend, index: str, *, register: bool = True) -> None:
        self.backend, self.index, self.register = backend, index, register

    def get(self, change_id: str) -> Change | None:
        stored = self.backend.get_meta(self.index, f"journal-{change_id}")
        return Change(**stored) if stored else None

    def put(self, change: Change) -> None:
        if self.register:
            self.open([change.id])
        self.backend.put_meta(self.index, f"journal-{change.id}", asdict(change))

    def open(self, change_ids: Sequence[str]) -> None:
        listed = self.listed()
        if not set(change_ids) <= set(listed):
            self.backend.put_meta(self.index, OPEN_META, {"ids": [*listed, *(i for i in change_ids if i not in listed)]})

    def clear(self, change_id: str) -> None:
        self.backend.put_meta(self.index, f"journal-{change_id}", {})
        listed = self.listed()
        if change_id in listed:
            self.backend.put_meta(self.index, OPEN_META, {"ids": [i for i in listed if i != change_id]})

    def open_changes(self) -> list[Change]:
        """The changes journaled and not applied (an id listed whose entry was never put: none)."""
        changes = [self.get(i) for i in self.listed()]
        return [c for c in changes if c is not None]

    def listed(self) -> list[str]:
        return list((self.backend.get_meta(self.index, OPEN_META) or {}).get("ids") or [])

    def delist_unjournaled(self) -> None:
        """Forget the ids listed whose entry was never put. A stopped Ray run's worker can still
        put its entry after the job that took the lease over finished the open changes: unlisted,
        that entry is never rolled forward (the block is redone, and counted, under a new id)."""
        listed = self.listed()
        journaled = [i for i in listed if self.get(i) is not None]
        if journaled != listed:
            self.backend.put_meta(self.index, OPEN_META, {"ids": journaled})


class CorpusStatistics:
    """The document frequencies of one index and the journal of their changes."""

    def __init__(self, backend: Backend, index: str, tokenizer: TextTokenizer, *, journal: EngineJournal | None = None) -> None:
        self.backend = backend
        self.index = index
        self.tokenizer = tokenizer
        self.journal = journal or EngineJournal(backend, index)

    # -- the journal -----------------------------------------------------------------------------
    def finish_open(self) -> int:
        """Finish every change a stopped job left open (see the module's docstring); how many."""
        changes = self.journal.open_changes()
        for change in changes:
            if change.batch < 0:
                finish_delete(self.backend, self, change)
            else:
                self.roll_forward(change)
        self.journal.delist_unjournaled()
        return len(changes)

    def roll_forward(self, change: Change) -> None:
        """An ingest batch stopped anywhere, finished from what the engine holds now."""
        self.backend.flush(self.index)
        held = self.backend.read_documents(self.index, change.documents) if change.documents else []
        kept, held_ids = set(change.keep), {h.id for h in held}
        stored = [h for h in held if h.id in kept]
        # nothing more is deleted; what the stopped job already deleted is gone from the counts
        change.deletes = [p for p in change.before if p not in held_ids]
        self.apply(change, dict(zip([h.id for h in stored], self.token_sets(_texts(stored)), strict=True)))

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
            documents=list(documents),
            keep=sorted(kept),
        )
        self.journal.put(change)
        return change

    def apply(self, change: Change, written: Mapping[str, Sequence[int]]) -> None:
        """Step 3 and 4: the engine holds the batch; `written` maps the passages it wrote to their
        token sets. A change already stamped on the statistics is not applied again; the table is
        replaced only over the version it was computed from (a concurrent change re-reads it)."""
        still_open = set(self.journal.listed())
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
            # an id matters only while its journal entry may still be found open (a crash between
            # this write and the entry's removal): ids of cleared changes are dropped
            applied = [*(i for i in applied if i in still_open), change.id]
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


def delete_documents(
    backend: Backend, index: str, doc_ids: Iterable[str], statistics: CorpusStatistics, batch: int = BatchPolicy().write_batch
) -> DeleteSummary:
    """Remove documents, their passages and vectors, and their share of the statistics; a delete
    stopped anywhere and run again ends as one that was not (its journal entry is finished first)."""
    backend.flush(index)  # what was written last is searchable, so it is found
    statistics.finish_open()
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


__all__ = ["STATISTICS_META", "Change", "CorpusStatistics", "DeleteSummary", "delete_documents", "finish_delete"]
