"""What both Qdrant adapters share: vector names, point ids and the payload layout (no SDK here)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

P = TypeVar("P")

from lsrkit.core.types import Hit
from lsrkit.core.errors import InputError
from lsrkit.plugin.base import EncodedRecord, WriteResult
from lsrkit.plugin.codec import encode_multivector

SPARSE = "sparse"
BM25 = "bm25"
MULTIVECTOR = "colbert"
_NAMESPACE = uuid.UUID("6f1c5a8e-2b1f-4d0e-9a51-3c2d1e0f7a10")
PAYLOAD_FIELDS = ("id", "doc_id", "title", "text", "metadata")
MV_PAYLOAD = "mv"  # the multivector again, int8 + row scale, base64: fetching it is ~6x faster than the vector field
MV_CODEC = "uint8"  # numpy upcasts int8 ~4x faster than float16


def point_id(record_id: str) -> str:
    """Deterministic point id: the same passage id always maps to the same point (idempotent re-runs)."""
    return str(uuid.uuid5(_NAMESPACE, record_id))


def payload(record: EncodedRecord, *, with_multivector: bool = True) -> dict[str, Any]:
    data = {"id": record.id, "doc_id": record.doc_id, "title": record.title, "text": record.text, "metadata": dict(record.metadata)}
    if with_multivector and record.multivector is not None:
        data[MV_PAYLOAD] = encode_multivector(record.multivector.vectors, MV_CODEC)
    return data


def hit_from_payload(data: Mapping[str, Any] | None, score: float) -> Hit:
    data = data or {}
    meta = dict(data.get("metadata") or {})
    meta.setdefault("doc_id", data.get("doc_id", data.get("id", "")))
    return Hit(id=str(data.get("id", "")), score=float(score), title=data.get("title", ""), text=data.get("text", ""), metadata=meta)


def filter_key(key: str) -> str:
    """Metadata filters address payload paths under `metadata.` (doc_id is top level)."""
    return key if key in ("doc_id", "id") else f"metadata.{key}"


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
