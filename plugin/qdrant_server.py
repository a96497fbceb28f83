"""QdrantBackend: a Qdrant server (URL + API key) or qdrant-client's local mode, via qdrant-client.

Same collection layout as the Edge backend. BM25 vectors come from Qdrant's own Bm25 (shipped in
qdrant-edge-py) and are scored with the IDF modifier, exactly as on Edge.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from lsrkit.core.config import IndexSpec, validate_index_name
from lsrkit.core.errors import BackendError, IndexMissingError, UnavailableError
from lsrkit.core.types import SparseVector
from lsrkit.plugin.base import EncodedRecord, Filters, WriteResult, check_layout, compare_and_put, filter_field, filter_range
from lsrkit.plugin.qdrant_bm25 import bm25_for
from lsrkit.plugin.qdrant_layout import BM25, MV_PAYLOAD, SPARSE, Fields, Point, QdrantReads, SparseQuery, build_points, payload, point_id


def _selector(fields: Fields) -> Any:
    return models.PayloadSelectorExclude(exclude=[MV_PAYLOAD]) if fields is None else list(fields)


def client_from_env(url: str | None = None, path: str | None = None) -> QdrantClient:
    """A client for a server (`url`, API key from $QDRANT_API_KEY) or local mode (`path` or ':memory:')."""
    if url:
        return QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY") or None, timeout=30)
    if path == ":memory:" or path is None:
        return QdrantClient(location=":memory:")
    return QdrantClient(path=path)


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=vector.ids.tolist(), values=vector.weights.tolist())


RECORD_STATUSES = (400, 413, 422)  # a request refused for what it holds: worth no other try


def _reason(exc: UnexpectedResponse) -> str:
    return exc.content.decode("utf-8", "replace")[:300] if isinstance(exc.content, bytes) else ""


def _filter(filters: Filters | None) -> models.Filter | None:
    if not filters:
        return None
    # Qdrant matches floats by range only, and an integer by value would miss a payload's 1.0:
    # numbers match by range (as OpenSearch's term query matches 1 and 1.0 alike)
    return models.Filter(
        must=[
            models.FieldCondition(key=filter_field(k), range=models.Range(gte=point, lte=point))
            if (point := filter_range(v)) is not None
            else models.FieldCondition(key=filter_field(k), match=models.MatchValue(value=cast(str | int | bool, v)))  # no float gets here
            for k, v in filters.items()
        ]
    )


class QdrantBackend(QdrantReads):
    """A Qdrant collection per index, through an injected QdrantClient."""

    name = "qdrant"

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self._specs: dict[str, IndexSpec] = {}

    def _call(self, what: str, target: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Run a client call, translating its exceptions into lsrkit's tree (no secrets in messages)."""
        try:
            return fn(*args, **kwargs)
        except UnexpectedResponse as exc:
            if exc.status_code == 404:
                raise IndexMissingError(f"qdrant: collection {target!r} does not exist") from exc
            if exc.status_code in RECORD_STATUSES:
                raise BackendError(f"qdrant: {what} on {target!r} refused with HTTP {exc.status_code}: {_reason(exc)}") from exc
            # overloaded (429), failing or restarting (5xx), forbidden for now: the server's state
            raise UnavailableError(f"qdrant: {what} on {target!r} failed with HTTP {exc.status_code}") from exc
        except ResponseHandlingException as exc:
            raise UnavailableError(f"qdrant: {what} on {target!r}: server unreachable ({type(exc.source).__name__})") from exc
        except ValueError as exc:  # local mode raises ValueError for a missing collection
            if "not found" in str(exc).lower():
                raise IndexMissingError(f"qdrant: collection {target!r} does not exist") from exc
            raise BackendError(f"qdrant: {what} on {target!r} failed: {exc}") from exc

    def ensure_index(self, spec: IndexSpec, *, recreate: bool = False) -> bool:
        validate_index_name(spec.name)
        if recreate:
            self.drop_index(spec.name)
        if self._call("exists", spec.name, self.client.collection_exists, spec.name):
            check_layout("qdrant: collection", spec, self.spec(spec.name))
            return False
        sparse = {SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF if spec.sparse_idf_modifier else None)}
        if spec.with_bm25:
            sparse[BM25] = models.SparseVectorParams(modifier=models.Modifier.IDF)
        self._call(
            "create",
            spec.name,
            self.client.create_collection,
            spec.name,
            vectors_config={},
            sparse_vectors_config=sparse,
            shard_number=spec.shards,
            replication_factor=spec.replicas + 1,
            metadata={"lsrkit_spec": spec.__dict__},
        )
        # updates and deletes find a document's passages by doc_id (local mode ignores indexes)
        self._call("index", spec.name, self.client.create_payload_index, spec.name, field_name="doc_id", field_schema=models.PayloadSchemaType.KEYWORD)
        self._specs[spec.name] = spec
        return True

    def spec(self, index: str) -> IndexSpec:
        if index not in self._specs:
            info = self._call("info", index, self.client.get_collection, index)
            stored = (getattr(info.config, "metadata", None) or {}).get("lsrkit_spec")
            if not stored:
                raise BackendError(f"qdrant: collection {index!r} was not created by lsrkit")
            self._specs[index] = IndexSpec.from_stored(stored, f"qdrant collection {index!r}")
        return self._specs[index]

    def drop_index(self, index: str) -> None:
        self._specs.pop(index, None)
        if self._call("exists", index, self.client.collection_exists, index):
            self._call("delete", index, self.client.delete_collection, index)

    def close(self) -> None:
        self.client.close()

    def _point(self, record: EncodedRecord, spec: IndexSpec) -> models.PointStruct:
        vector: dict[str, Any] = {SPARSE: _sparse(record.sparse)}
        if spec.with_bm25:
            terms, weights = bm25_for(spec).document(record.full_text)
            vector[BM25] = models.SparseVector(indices=terms, values=weights)
        return models.PointStruct(id=point_id(record.id), vector=vector, payload=payload(record, multivector_required=bool(spec.multivector_dim)))

    def write(self, index: str, records: Sequence[EncodedRecord]) -> WriteResult:
        spec = self.spec(index)
        points, result = build_points(records, lambda record: self._point(record, spec))
        try:
            self._call("upsert", index, self.client.upsert, index, points=[p for _, p in points], wait=True)
            result.written.extend(i for i, _ in points)
        except UnavailableError:
            raise
        except BackendError:
            for record_id, point in points:  # isolate the refused point(s)
                try:
                    self._call("upsert", index, self.client.upsert, index, points=[point], wait=True)
                    result.written.append(record_id)
                except UnavailableError:
                    raise
                except BackendError as exc:
                    result.failed[record_id] = str(exc)
            if len(points) > 1 and len(result.failed) >= len(points) and len(set(result.failed.values())) == 1:
                # every point refused alike: the collection or the server is wrong, not the records
                raise BackendError(f"qdrant: every point of a bulk to {index!r} refused alike: {next(iter(result.failed.values()))}") from None
        return result

    def flush(self, index: str) -> None:
        """Writes are acknowledged once applied (wait=True): nothing to do."""

    # -- reads (retrieve, hydrate, fetch_multivectors: QdrantReads) ---------------------------
    def _nearest_many(self, index: str, queries: list[SparseQuery], limit: int, filters: Filters | None, fields: Fields) -> list[list[Point]]:
        matching, selector = _filter(filters), _selector(fields)
        requests = [
            models.QueryRequest(query=models.SparseVector(indices=indices, values=values), using=using, limit=limit, filter=matching, with_payload=selector)
            for indices, values, using in queries
        ]
        responses = self._call("query", index, self.client.query_batch_points, index, requests) if requests else []
        return [[(p.score, p.payload) for p in response.points] for response in responses]

    def _payloads(self, index: str, point_ids: list[str], fields: Fields) -> dict[str, Mapping[str, Any] | None]:
        records = self._call("retrieve", index, self.client.retrieve, index, ids=point_ids, with_payload=_selector(fields), with_vectors=False)
        return {str(r.id): r.payload for r in records}

    def _scroll(self, index: str, doc_ids: list[str], offset: Any) -> tuple[list[Mapping[str, Any] | None], Any]:
        matching = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=doc_ids))])
        points, offset = self._call(
            "scroll", index, self.client.scroll, index, scroll_filter=matching, limit=256, offset=offset, with_payload=_selector(None), with_vectors=False
        )
        return [p.payload for p in points], offset

    def delete(self, index: str, passage_ids: Sequence[str]) -> None:
        if passage_ids:
            selector = models.PointIdsList(points=[point_id(i) for i in passage_ids])
            self._call("delete", index, self.client.delete, index, points_selector=selector, wait=True)

    def count(self, index: str) -> int:
        return int(self._call("count", index, self.client.count, index, exact=True).count)

    def disk_bytes(self, index: str) -> int | None:
        return None  # the collection API reports no size

    def put_meta(self, index: str, key: str, value: Mapping[str, Any]) -> None:
        self._call("update", index, self.client.update_collection, index, metadata={key: dict(value)})

    def get_meta(self, index: str, key: str) -> dict[str, Any] | None:
        info = self._call("info", index, self.client.get_collection, index)
        return (getattr(info.config, "metadata", None) or {}).get(key)

    def swap_meta(self, index: str, key: str, expected: Mapping[str, Any] | None, value: Mapping[str, Any]) -> bool:
        """Compare, then set: Qdrant's collection metadata has no conditional update, so this
        narrows the window between two writers without closing it (the write lease closes it)."""
        return compare_and_put(self, index, key, expected, value)
