"""QdrantEdgeBackend: Qdrant Edge in-process, on disk — lsrkit's embedded default.

Each index is one Edge shard in `<data_dir>/<index>/`. The shard keeps a named sparse vector
(the learned sparse first stage), a BM25 sparse vector (Qdrant's own Bm25, IDF modifier) and, in
the payload, the passage's compact token vectors for the rerank.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import qdrant_edge as qe

from lsrkit.core.config import IndexSpec, validate_index_name
from lsrkit.core.errors import BackendError, IndexMissingError
from lsrkit.core.files import write_json_atomic
from lsrkit.core.types import SparseVector
from lsrkit.plugin.base import EncodedRecord, Filters, WriteResult, check_layout, compare_and_put, filter_field, filter_range
from lsrkit.plugin.qdrant_bm25 import bm25_for
from lsrkit.plugin.qdrant_layout import BM25, MV_PAYLOAD, SPARSE, Fields, Point, QdrantReads, SparseQuery, build_points, payload, point_id

_SPEC_FILE = "lsrkit-index.json"
_NO_MV = qe.PayloadSelector.Exclude([MV_PAYLOAD])


def _selector(fields: Fields) -> qe.PayloadSelector:
    return _NO_MV if fields is None else qe.PayloadSelector.Include(list(fields))


def _sparse(vector: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(vector.ids.tolist(), vector.weights.tolist())


@contextmanager
def edge_errors(doing: str) -> Iterator[None]:
    """The one translation of qdrant_edge's exceptions (plain ones) into lsrkit's tree:
    BackendError("edge: <doing>: <the exception>"); lsrkit's own BackendErrors pass as they are."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:  # qdrant_edge raises plain exceptions
        raise BackendError(f"edge: {doing}: {exc}") from exc


def edge_filter(filters: Filters | None) -> qe.Filter | None:
    if not filters:
        return None
    # Qdrant matches floats by range only, and an integer by value would miss a payload's 1.0:
    # numbers match by range (as OpenSearch's term query matches 1 and 1.0 alike)
    return qe.Filter(
        must=[
            qe.FieldCondition(key=filter_field(k), range=qe.RangeFloat(gte=point, lte=point))
            if (point := filter_range(v)) is not None
            else qe.FieldCondition(key=filter_field(k), match=qe.MatchValue(cast(str | int | bool, v)))  # no float gets here
            for k, v in filters.items()
        ]
    )


class QdrantEdgeBackend(QdrantReads):
    """Qdrant Edge shards under one data folder, reopened across runs."""

    name = "edge"
    reads_hold_gil = True  # the binding keeps the GIL for the whole query

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._specs: dict[str, IndexSpec] = {}
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------
    def _path(self, index: str) -> Path:
        return self.data_dir / validate_index_name(index)

    def ensure_index(self, spec: IndexSpec, *, recreate: bool = False) -> bool:
        path = self._path(spec.name)
        if recreate:
            self.drop_index(spec.name)
        if (path / _SPEC_FILE).is_file():
            check_layout("edge: index", spec, self.spec(spec.name))
            return False
        config = self._config(spec)
        with edge_errors(f"cannot create index {spec.name!r} in {path}"):
            shard = qe.EdgeShard.create(str(path / "shard"), config)
        # updates and deletes find a document's passages by doc_id
        shard.update(qe.UpdateOperation.create_field_index("doc_id", qe.PayloadSchemaType.Keyword))
        write_json_atomic(path / _SPEC_FILE, spec.__dict__)  # its presence means "created": never half written
        self._shards[spec.name] = shard
        self._specs[spec.name] = spec
        return True

    @staticmethod
    def _config(spec: IndexSpec) -> qe.EdgeConfig:
        sparse = {SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if spec.sparse_idf_modifier else None)}
        if spec.with_bm25:
            sparse[BM25] = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)
        return qe.EdgeConfig(vectors=None, sparse_vectors=sparse)

    def _shard(self, index: str) -> qe.EdgeShard:
        shard = self._shards.get(index)
        if shard is not None:
            return shard
        path = self._path(index)
        if not (path / _SPEC_FILE).is_file():
            raise IndexMissingError(f"edge: index {index!r} does not exist in {self.data_dir}")
        with edge_errors(f"cannot open index {index!r} at {path}"):
            shard = qe.EdgeShard.load(str(path / "shard"))
        self._specs[index] = IndexSpec.from_stored(json.loads((path / _SPEC_FILE).read_text()), f"edge index {index!r}")
        self._shards[index] = shard
        return shard

    def spec(self, index: str) -> IndexSpec:
        self._shard(index)
        return self._specs[index]

    def drop_index(self, index: str) -> None:
        shard = self._shards.pop(index, None)
        self._specs.pop(index, None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self._path(index), ignore_errors=True)

    def close(self) -> None:
        for shard in self._shards.values():
            shard.flush()
            shard.close()
        self._shards.clear()

    def flush(self, index: str) -> None:
        """Writes are searchable at once; this makes them durable."""
        self._shard(index).flush()

    # -- writes --------------------------------------------------------------------------------
    def _point(self, record: EncodedRecord, spec: IndexSpec) -> qe.Point:
        vector: dict[str, Any] = {SPARSE: _sparse(record.sparse)}
        if spec.with_bm25:
            vector[BM25] = qe.SparseVector(*bm25_for(spec).document(record.full_text))
        return qe.Point(point_id(record.id), vector, payload(record, multivector_required=bool(spec.multivector_dim)))

    def write(self, index: str, records: Sequence[EncodedRecord]) -> WriteResult:
        shard = self._shard(index)
        spec = self._specs[index]
        points, result = build_points(records, lambda record: self._point(record, spec))
        # a point Edge could refuse for what it is was refused above (build_points); what fails
        # here is the shard itself (disk, I/O): the whole batch fails, no record is to blame
        with self._lock, edge_errors(f"write to {index!r} failed"):
            shard.update(qe.UpdateOperation.upsert_points([p for _, p in points]))
            shard.flush()  # acknowledged means durable: the checkpoint follows this
        result.written.extend(i for i, _ in points)
        return result

    # -- reads (retrieve, hydrate, fetch_multivectors: QdrantReads) ---------------------------
    def _nearest_many(self, index: str, queries: list[SparseQuery], limit: int, filters: Filters | None, fields: Fields) -> list[list[Point]]:
        matching, selector = edge_filter(filters), _selector(fields)
        requests = [
            qe.QueryRequest(limit=limit, query=qe.Query.Nearest(qe.SparseVector(indices, values), using=using), filter=matching, with_payload=selector)
            for indices, values, using in queries
        ]
        if not requests:
            return []
        with edge_errors(f"query on {index!r} failed"):
            shard = self._shard(index)
            answers = [shard.query(requests[0])] if len(requests) == 1 else shard.query_batch(qe.QueryBatchRequest(requests))
        return [[(p.score, p.payload) for p in points] for points in answers]

    def _payloads(self, index: str, point_ids: list[str], fields: Fields) -> dict[str, Mapping[str, Any] | None]:
        ids: list[Any] = list(point_ids)
        with edge_errors(f"retrieve from {index!r} failed"):
            return {str(r.id): r.payload for r in self._shard(index).retrieve(ids, with_payload=_selector(fields), with_vector=False)}

    def _scroll(self, index: str, doc_ids: list[str], offset: Any) -> tuple[list[Mapping[str, Any] | None], Any]:
        matching = qe.Filter(must=[qe.FieldCondition(key="doc_id", match=qe.MatchAny(doc_ids))])
        with edge_errors(f"scroll of {index!r} failed"):
            points, offset = self._shard(index).scroll(qe.ScrollRequest(offset=offset, limit=256, filter=matching, with_payload=_NO_MV, with_vector=False))
        return [p.payload for p in points], offset

    def delete(self, index: str, passage_ids: Sequence[str]) -> None:
        if passage_ids:
            with self._lock, edge_errors(f"delete from {index!r} failed"):
                self._shard(index).update(qe.UpdateOperation.delete_points([point_id(i) for i in passage_ids]))

    def count(self, index: str) -> int:
        with edge_errors(f"count of {index!r} failed"):
            return int(self._shard(index).count(qe.CountRequest(exact=True)))

    def existing_ids(self, index: str, ids: Sequence[str]) -> set[str]:
        """Which of these passage ids are stored (used by resume checks and tests)."""
        by_point = {point_id(i): i for i in ids}
        with edge_errors(f"retrieve from {index!r} failed"):
            return {by_point[str(r.id)] for r in self._shard(index).retrieve(list(by_point), with_payload=False, with_vector=False)}

    # -- index metadata ------------------------------------------------------------------------
    def put_meta(self, index: str, key: str, value: Mapping[str, Any]) -> None:
        write_json_atomic(self._path(index) / f"meta-{key}.json", dict(value))

    def get_meta(self, index: str, key: str) -> dict[str, Any] | None:
        path = self._path(index) / f"meta-{key}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def swap_meta(self, index: str, key: str, expected: Mapping[str, Any] | None, value: Mapping[str, Any]) -> bool:
        """Compare-and-set under an exclusive lock on a file of the index's folder: every process
        on the machine that opens the folder compares and writes in turn."""
        folder = self._path(index)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "meta.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return compare_and_put(self, index, key, expected, value)

    def disk_bytes(self, index: str) -> int:
        # blocks allocated, not apparent sizes: the WAL and mmap'd segments are preallocated sparse files
        return sum(f.stat().st_blocks * 512 for f in self._path(index).rglob("*") if f.is_file())
