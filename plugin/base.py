"""The engine contract: a small `Backend` protocol and optional capability protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


from lsrkit.core.config import IndexSpec
from lsrkit.core.types import Hit, SparseVector

Filters = Mapping[str, str | int | float | bool]


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
        """Title and text as BM25 indexes them (BEIR convention: title first)."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass
class WriteResult:
    """What a bulk write did: ids acknowledged, ids refused (with the engine's reason), retries."""

    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    retried: int = 0


@runtime_checkable
class Backend(Protocol):
    """What every engine adapter does. Optional powers live in the protocols below."""

    name: str

    def ensure_index(self, spec: IndexSpec, *, recreate: bool = False) -> bool:
        """Create the index if absent (True when created); `recreate` drops an existing one first."""
        ...

    def drop_index(self, index: str) -> None: ...

    def write(self, index: str, records: Sequence[EncodedRecord]) -> WriteResult: ...

    def search_sparse(self, index: str, query: SparseVector, limit: int, *, filters: Filters | None = None) -> list[Hit]: ...

    def fetch_multivectors(self, index: str, ids: Sequence[str]) -> dict[str, bytes]:
        """The stored token vectors of the given passage ids, as written (MultiVectorCodec bytes)."""
        ...

    def count(self, index: str) -> int: ...

    def disk_bytes(self, index: str) -> int | None:
        """What the index occupies on disk, text and vectors included (None where the engine does not say)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class TextSearch(Protocol):
    """The engine's own lexical ranking (BM25) over the text fields."""

    def search_text(self, index: str, text: str, limit: int, *, filters: Filters | None = None) -> list[Hit]: ...


@runtime_checkable
class SearchWithMultivectors(Protocol):
    """The sparse first stage returns the candidates' stored multivectors in the same round trip."""

    def search_sparse_with_multivectors(
        self, index: str, query: SparseVector, limit: int, *, filters: Filters | None = None
    ) -> tuple[list[Hit], dict[str, bytes]]: ...


@runtime_checkable
class PerDocumentSearch(Protocol):
    """The engine keeps only each document's best passage (max-passage aggregation in one round
    trip, instead of fetching passages until they cover k documents)."""

    def search_sparse_documents(self, index: str, query: SparseVector, limit: int, *, filters: Filters | None = None) -> list[Hit]: ...

    def search_text_documents(self, index: str, text: str, limit: int, *, filters: Filters | None = None) -> list[Hit]: ...


@runtime_checkable
class Hydration(Protocol):
    """Candidates may come back partial (without their stored text and metadata: cheaper to read
    κ of them); the hits finally returned are filled in with one more read."""

    def hydrate(self, index: str, hits: Sequence[Hit]) -> list[Hit]:
        """The same hits, complete; a hit reported under its document id is read by the passage
        id in metadata["passage_id"]."""
        ...


@runtime_checkable
class PartialSearch(Protocol):
    """Searches whose hits are partial (ids, doc ids and scores; no text): for the
    candidate lists a pipeline fuses, reranks or cuts, of which it returns only k, read whole
    with Hydration. The same hits and scores as search_sparse / search_text."""

    def search_sparse_partial(self, index: str, query: SparseVector, limit: int, *, filters: Filters | None = None) -> list[Hit]: ...

    def search_text_partial(self, index: str, text: str, limit: int, *, filters: Filters | None = None) -> list[Hit]: ...


@runtime_checkable
class PairedSearch(Protocol):
    """A query's BM25 and sparse runs in one round trip, the engine running them side by side
    (the hybrid first stage). `partial`: hits without text where the engine can (a backend that
    also has Hydration); otherwise complete."""

    def search_text_and_sparse(
        self, index: str, text: str, query: SparseVector, limit: int, *, filters: Filters | None = None, partial: bool = False
    ) -> tuple[list[Hit], list[Hit]]: ...


@runtime_checkable
class Refreshable(Protocol):
    """Writes become searchable only after a refresh (OpenSearch)."""

    def refresh(self, index: str) -> None: ...


@runtime_checkable
class MetaStore(Protocol):
    """Small JSON documents stored with an index (the IDF table, the ingest settings)."""

    def put_meta(self, index: str, key: str, value: Mapping[str, Any]) -> None: ...

    def get_meta(self, index: str, key: str) -> dict[str, Any] | None: ...
