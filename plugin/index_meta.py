"""The meta documents an index keeps beside its passages that the query side reads: which
encoders built it (its manifest) and its corpus statistics (the IDF table of inference-free
queries). Ingest writes them; nothing here depends on the ingest job."""

from __future__ import annotations

from typing import Any

from lsrkit.core.errors import IndexMissingError
from lsrkit.encoders.idf import DocFreqCounter, IdfTable
from lsrkit.plugin.base import Backend

MANIFEST_META = "encoders"  # the MetaStore key of an index's manifest
STATISTICS_META = "idf"  # the MetaStore key of an index's document frequencies


def read_manifest(backend: Backend, index: str) -> dict[str, Any] | None:
    """The encoders recorded with the index (None before its first ingest, or no index yet)."""
    try:
        return backend.get_meta(index, MANIFEST_META)
    except IndexMissingError:
        return None


def index_idf(backend: Backend, index: str, vocab: list[str], *, unless_version: object = None) -> tuple[object, IdfTable | None]:
    """The version of the corpus statistics ingest stored with the index and their IDF table, in
    one read (table None: none stored, or still `unless_version`, the one the caller holds)."""
    state = backend.get_meta(index, STATISTICS_META)
    if not state:
        return None, None
    version = state.get("version")
    if unless_version is not None and version == unless_version:
        return version, None
    return version, DocFreqCounter.from_state(state, len(vocab)).to_table(vocab)


def load_index_idf(backend: Backend, index: str, vocab: list[str]) -> IdfTable | None:
    """The IDF table ingest stored with the index (None when the backend keeps none)."""
    return index_idf(backend, index, vocab)[1]
