"""What both Qdrant adapters share: vector names, point ids, the payload layout and the reads."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from lsrkit.core.config import IndexSpec
from lsrkit.core.errors import ConfigError, InputError
from lsrkit.core.types import Hit
from lsrkit.plugin.base import EncodedRecord, Filters, Retrieval, Retrieved, WriteResult, completed_hits, passage_of
from lsrkit.plugin.qdrant_bm25 import bm25_for

P = TypeVar("P")

SPARSE = "sparse"
BM25 = "bm25"
_NAMESPACE = uuid.UUID("6f1c5a8e-2b1f-4d0e-9a51-3c2d1e0f7a10")
PASSAGE_FIELDS = ("id", "doc_id")  # what a first stage reads when the text is not needed
# the compact token vectors, base64, in the payload: their one copy (scored by the rerank here;
# the engine's own multivector field cannot hold codes below 8 bits a dimension)
MV_PAYLOAD = "mv"


def point_id(record_id: str) -> str:
    """Deterministic point id: the same passage id always maps to the same point (idempotent re-runs)."""
    return str(uuid.uuid5(_NAMESPACE, record_id))


def payload(record: EncodedRecord, *, multivector_required: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"id": record.id, "doc_id": record.doc_id, "title": record.title, "text": record.text, "metadata": dict(record.metadata)}
    if record.multivector:
        data[MV_PAYLOAD] = base64.b64encode(record.multivector).decode("ascii")
    elif multivector_required:
        raise InputError(f"record {record.id!r} has no token vectors but its index stores them")
    return data


def stored_multivectors(points: Iterable[tuple[str, Mapping[str, Any] | None]]) -> dict[str, bytes]:
    """(passage id, payload) pairs → the stored token vectors of those that hold them."""
    found = {}
    for passage, data in points:
        if data and MV_PAYLOAD in data:
            try:
                found[passage] = base64.b64decode(data[MV_PAYLOAD], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InputError(f"stored token vectors of {passage!r} are corrupt: {exc}") from exc
    return found


def hit_from_payload(data: Mapping[str, Any] | None, score: float) -> Hit:
    data = data or {}
    meta = dict(data.get("metadata") or {})
    meta.setdefault("doc_id", data.get("doc_id", data.get("id", "")))
    return Hit(id=str(data.get("id", "")), score=float(score), title=data.get("title", ""), text=data.get("text", ""), metadata=meta)


def best_passages(read: Callable[[int], list[Hit]], limit: int) -> list[Hit]:
    """Each document's best passage, `limit` documents, from an engine that cannot collapse on a
    field: passages (ids only: cheap) read four times deeper until they cover `limit` documents
    or the engine has no more.

    >>> runs = [Hit("a#0", 3, metadata={"doc_id": "a"}), Hit("a#1", 2, metadata={"doc_id": "a"}), Hit("b", 1, metadata={"doc_id": "b"})]
    >>> [h.id for h in best_passages(lambda n: runs[:n], 2)]
    ['a#0', 'b']
    """
    depth = 2 * limit
    while True:
        hits = read(depth)
        best: dict[str, Hit] = {}
        for hit in hits:
            best.setdefault(str(hit.metadata.get("doc_id") or hit.id), hit)
        if len(best) >= limit or len(hits) < depth or depth >= 32 * limit:
            return list(best.values())[:limit]
        depth *= 4


def build_points(records: Sequence[EncodedRecord], make_point: Callable[[EncodedRecord], P]) -> tuple[list[tuple[str, P]], WriteResult]:
    """Points for the records that can be written; the others are already failed in the result."""
    result = WriteResult()
    points: list[tuple[str, P]] = []
    for record in records:
        try:
            points.append((record.id, make_point(record)))
        except InputError as exc:
            result.failed[record.id] = str(exc)
    return points, result


Fields = tuple[str, ...] | None  # payload fields to read; None: all of it but the token vectors
Point = tuple[float, Mapping[str, Any] | None]  # a scored point's score and payload
SparseQuery = tuple[list[int], list[float], str]  # term ids, weights, the name of the sparse vector


class QdrantReads:
    """The reads both Qdrant adapters serve the same way, over four engine calls each provides:
    nearest queries on named sparse vectors (several in one call), a retrieve by point ids, a
    scroll by doc_id, and its index's spec."""

    # the BM25 weights are computed here, client-side, with the corpus's mean length baked in
    needs_bm25_mean_length = True
    reads_hold_gil = False  # the server's HTTP calls; Edge's in-process reads do hold it

    def _nearest_many(self, index: str, queries: list[SparseQuery], limit: int, filters: Filters | None, fields: Fields) -> list[list[Point]]:
        """Each query's `limit` nearest points (score, payload), in one engine call."""
        raise NotImplementedError

    def _nearest(self, index: str, query: SparseQuery, limit: int, filters: Filters | None, fields: Fields) -> list[Point]:
        return self._nearest_many(index, [query], limit, filters, fields)[0]

    def _payloads(self, index: str, point_ids: list[str], fields: Fields) -> dict[str, Mapping[str, Any] | None]:
        raise NotImplementedError

    def spec(self, index: str) -> IndexSpec:
        raise NotImplementedError

    def _scroll(self, index: str, doc_ids: list[str], offset: Any) -> tuple[list[Mapping[str, Any] | None], Any]:
        """One page of the payloads (without token vectors) of these documents' points, and where the next starts (None: done)."""
        raise NotImplementedError

    def read_documents(self, index: str, doc_ids: Sequence[str]) -> list[Hit]:
        hits: list[Hit] = []
        offset: Any = None
        while doc_ids:
            payloads, offset = self._scroll(index, list(doc_ids), offset)
            hits.extend(hit_from_payload(data, 0.0) for data in payloads)
            if offset is None:
                break
        return hits

    def retrieve(self, index: str, request: Retrieval) -> Retrieved:
        """Hits without text read ids only; `documents` reads passages deeper (best_passages):
        Qdrant has no collapse on a payload field. Token vectors come with a read without text."""
        if request.text is not None and not self.spec(index).with_bm25:
            raise ConfigError(f"index {index!r} was created without BM25")
        # passages read deeper for `documents` are read by id only, and only the best ones whole
        by_id = not request.texts or request.documents
        fields: Fields = (*PASSAGE_FIELDS, *((MV_PAYLOAD,) if request.multivectors else ())) if by_id else None
        found = Retrieved()

        def hits(points: list[Point]) -> list[Hit]:
            if fields is not None and MV_PAYLOAD in fields:
                found.multivectors.update(stored_multivectors((str((data or {}).get("id", "")), data) for _, data in points))
            return [hit_from_payload(data, score) for score, data in points]

        def by_document(query: SparseQuery) -> list[Hit]:
            best = best_passages(lambda limit: hits(self._nearest(index, query, limit, request.filters, fields)), request.limit)
            return self.hydrate(index, best) if request.texts else best

        runs: dict[str, SparseQuery] = {}
        if request.sparse is not None and len(request.sparse):
            runs[SPARSE] = (request.sparse.ids.tolist(), request.sparse.weights.tolist(), SPARSE)
        if request.text is not None:
            terms, counts = bm25_for(self.spec(index)).query(request.text)
            if terms:
                runs[BM25] = (terms, counts, BM25)
        if request.documents:  # read deeper per run until it covers `limit` documents
            answered = {name: by_document(query) for name, query in runs.items()}
        else:  # every run (a hybrid's two) in one engine call
            points = self._nearest_many(index, list(runs.values()), request.limit, request.filters, fields)
            answered = {name: hits(found_points) for name, found_points in zip(runs, points, strict=True)}
        found.sparse = answered.get(SPARSE, [])
        found.bm25 = answered.get(BM25, [])
        return found

    def text_lengths(self, spec: IndexSpec, texts: Sequence[str]) -> list[int]:
        return bm25_for(spec).lengths(texts)

    def hydrate(self, index: str, hits: Sequence[Hit]) -> list[Hit]:
        wanted = {point_id(passage_of(h)): passage_of(h) for h in hits}
        payloads = {wanted[p]: data for p, data in self._payloads(index, list(wanted), None).items()} if wanted else {}
        return completed_hits(hits, payloads)

    def fetch_multivectors(self, index: str, ids: Sequence[str]) -> dict[str, bytes]:
        by_point = {point_id(i): i for i in ids}
        return stored_multivectors((by_point[p], data) for p, data in self._payloads(index, list(by_point), (MV_PAYLOAD,)).items()) if ids else {}
