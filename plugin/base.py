"""The engine contract: what the ingest job and the search pipeline ask of every engine.

A first stage is one `retrieve` call: the runs it wants (learned sparse, the engine's BM25, or
both), how deep, and what the hits must carry. How the engine serves it (one request or two,
collapsing on the document, reading doc values instead of stored documents) is the adapter's
business. Hits read without their text are completed by `hydrate`, for the k finally returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from lsrkit.core.config import IndexSpec
from lsrkit.core.errors import IndexExistsError
from lsrkit.core.types import Hit, SparseVector, passage_text

Filters = Mapping[str, str | int | float | bool]
TOP_LEVEL_FIELDS = ("doc_id", "id")  # stored beside the metadata, not in it


def filter_field(key: str) -> str:
    """The stored field a filter key addresses: doc_id and id are top level, any other key is a
    metadata field (`metadata.<key>`), in every engine's layout."""
    return key if key in TOP_LEVEL_FIELDS else f"metadata.{key}"


def filter_range(value: str | int | float | bool) -> float | None:
    """The point a filter value matches as a range on Qdrant (None: it matches by value). Numbers
    match by range — floats only can, and an integer by value would miss a stored 1.0 — but an
    integer past float precision (2**53: 64-bit ids, ns timestamps) by value."""
    if isinstance(value, (bool, str)):
        return None
    return float(value) if isinstance(value, float) or abs(value) < 2**53 else None


@dataclass(frozen=True)
class EncodedRecord:
    """One passage ready to write: its id, its document, text and vectors. `multivector` is the
    compact token vectors as the index's MultiVectorCodec encoded them (opaque to the engine)."""

    id: str
    doc_id: str
    text: str
    sparse: SparseVector
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    multivector: bytes | None = None

    @property
    def full_text(self) -> str:
        """Title and text as BM25 indexes them (passage_text)."""
        return passage_text(self.title, self.text)


@dataclass
class WriteResult:
    """What a bulk write did: ids acknowledged, ids refused (with the engine's reason), whole-bulk retries."""

    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    retried: int = 0


@dataclass(frozen=True)
class Retrieval:
    """One first-stage read.

    `sparse` asks for the learned sparse run, `text` for the engine's BM25 run (both: the hybrid
    first stage, served side by side where the engine can). `documents`: each document's best
    passage only, `limit` documents. `texts`: the hits carry title, text and metadata (else ids,
    doc ids and scores, to be completed by `hydrate`). `multivectors`: the candidates' stored token
    vectors too, where the same read can return them (an adapter may return none).
    """

    sparse: SparseVector | None = None
    text: str | None = None
    limit: int = 10
    filters: Filters | None = None
    documents: bool = False
    texts: bool = False
    multivectors: bool = False


@dataclass
class Retrieved:
    """The runs of one Retrieval, best first, and any token vectors read with them."""

    sparse: list[Hit] = field(default_factory=list)
    bm25: list[Hit] = field(default_factory=list)
    multivectors: dict[str, bytes] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """What every engine adapter does."""

    name: str
    # True for an engine whose stored BM25 weights depend on the corpus's mean passage length
    # (Qdrant: computed client-side): ingest measures it (text_lengths) before a new index's first
    # write. False for one that keeps its own length statistics (OpenSearch).
    needs_bm25_mean_length: bool
    # True for an in-process engine whose reads hold the GIL (Qdrant Edge): a search starts its
    # engine call only once the query's token-vector model runs, or the two cannot overlap
    reads_hold_gil: bool

    def ensure_index(self, spec: IndexSpec, *, recreate: bool = False) -> bool:
        """Create the index if absent (True when created); an existing one must have the same
        layout (else IndexExistsError); `recreate` drops it first."""
        ...

    def spec(self, index: str) -> IndexSpec:
        """The layout stored with an existing index (IndexMissingError when there is none)."""
        ...

    def text_lengths(self, spec: IndexSpec, texts: Sequence[str]) -> list[int]:
        """How many BM25 terms each text has under the index's analyzer; called only where
        `needs_bm25_mean_length` is True."""
        ...

    def drop_index(self, index: str) -> None: ...

    def write(self, index: str, records: Sequence[EncodedRecord]) -> WriteResult: ...

    def flush(self, index: str) -> None:
        """Make what was written searchable and durable (after an ingest job)."""
        ...

    def retrieve(self, index: str, request: Retrieval) -> Retrieved: ...

    def hydrate(self, index: str, hits: Sequence[Hit]) -> list[Hit]:
        """The same hits with title, text and metadata read; a hit reported under its document
        id is read by the passage id in metadata["passage_id"]."""
        ...

    def fetch_multivectors(self, index: str, ids: Sequence[str]) -> dict[str, bytes]:
        """The stored token vectors of the given passage ids, as written (MultiVectorCodec bytes)."""
        ...

    def read_documents(self, index: str, doc_ids: Sequence[str]) -> list[Hit]:
        """Every stored passage of these documents, with title, text and metadata (what an update
        or a delete takes back from the corpus statistics)."""
        ...

    def delete(self, index: str, passage_ids: Sequence[str]) -> None:
        """Remove these passages and their vectors (ids not stored are no error)."""
        ...

    def count(self, index: str) -> int: ...

    def disk_bytes(self, index: str) -> int | None:
        """What one copy of the index occupies on disk, text and vectors included (replicas not
        counted; None where the engine does not say)."""
        ...

    def put_meta(self, index: str, key: str, value: Mapping[str, Any]) -> None:
        """Keep a small JSON document with the index (the IDF statistics, the multivector codec)."""
        ...

    def get_meta(self, index: str, key: str) -> dict[str, Any] | None: ...

    def swap_meta(self, index: str, key: str, expected: Mapping[str, Any] | None, value: Mapping[str, Any]) -> bool:
        """Replace the meta document `key` with `value` only while it still equals `expected`
        (None or {}: absent); False when another writer changed it first (nothing written)."""
        ...

    def close(self) -> None: ...


def check_layout(where: str, spec: IndexSpec, stored: IndexSpec) -> None:
    """ensure_index on an existing index: its stored layout must be the one asked for (`where`
    names it: "edge: index", "qdrant: collection")."""
    if stored != spec:
        raise IndexExistsError(f"{where} {spec.name!r} exists with another layout ({stored}); pass recreate to replace it")


def same_meta(current: Mapping[str, Any] | None, expected: Mapping[str, Any] | None) -> bool:
    """swap_meta's comparison: the meta document as stored against the one expected (None and
    {} both mean absent)."""
    return dict(current or {}) == dict(expected or {})


def compare_and_put(backend: Backend, index: str, key: str, expected: Mapping[str, Any] | None, value: Mapping[str, Any]) -> bool:
    """swap_meta for an engine without a conditional write: compare, then put (atomic only
    under a lock the caller holds)."""
    if not same_meta(backend.get_meta(index, key), expected):
        return False
    backend.put_meta(index, key, value)
    return True


def passage_of(hit: Hit) -> str:
    """The passage a hit was read from (a hit aggregated to its document keeps it in metadata)."""
    return str(hit.metadata.get("passage_id", hit.id))


def completed(hit: Hit, stored: Mapping[str, Any] | None) -> Hit:
    """`hit` with the title, text and metadata of its passage as stored (`id`, `doc_id`, `title`,
    `text`, `metadata`: the layout every adapter stores); the hit as it is when the passage is gone.
    What the hit's metadata already says (passage_id, ...) wins over the stored metadata."""
    if stored is None:
        return hit
    meta = {**(stored.get("metadata") or {}), "doc_id": stored.get("doc_id", ""), **hit.metadata}
    return hit.evolve(title=stored.get("title", ""), text=stored.get("text", ""), metadata=meta)


def completed_hits(hits: Sequence[Hit], stored: Mapping[str, Mapping[str, Any] | None]) -> list[Hit]:
    """`hydrate`'s answer: each hit completed from `stored` (passage id → stored passage)."""
    return [completed(hit, stored.get(passage_of(hit))) for hit in hits]


def search_sparse(backend: Backend, index: str, query: SparseVector, limit: int, *, filters: Filters | None = None) -> list[Hit]:
    """The learned sparse run alone, hits complete."""
    return backend.retrieve(index, Retrieval(sparse=query, limit=limit, filters=filters, texts=True)).sparse


def search_text(backend: Backend, index: str, text: str, limit: int, *, filters: Filters | None = None) -> list[Hit]:
    """The engine's BM25 run alone, hits complete."""
    return backend.retrieve(index, Retrieval(text=text, limit=limit, filters=filters, texts=True)).bm25
