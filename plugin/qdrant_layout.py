"""What both Qdrant adapters share: vector names, point ids and the payload layout (no SDK here)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from lsrkit.core.types import Hit
from lsrkit.plugin.base import EncodedRecord

SPARSE = "sparse"
BM25 = "bm25"
MULTIVECTOR = "colbert"
_NAMESPACE = uuid.UUID("6f1c5a8e-2b1f-4d0e-9a51-3c2d1e0f7a10")
PAYLOAD_FIELDS = ("id", "doc_id", "title", "text", "metadata")


def point_id(record_id: str) -> str:
    """Deterministic point id: the same passage id always maps to the same point (idempotent re-runs)."""
    return str(uuid.uuid5(_NAMESPACE, record_id))


def payload(record: EncodedRecord) -> dict[str, Any]:
    return {"id": record.id, "doc_id": record.doc_id, "title": record.title, "text": record.text, "metadata": dict(record.metadata)}


def hit_from_payload(data: Mapping[str, Any] | None, score: float) -> Hit:
    data = data or {}
    meta = dict(data.get("metadata") or {})
    meta.setdefault("doc_id", data.get("doc_id", data.get("id", "")))
    return Hit(id=str(data.get("id", "")), score=float(score), title=data.get("title", ""), text=data.get("text", ""), metadata=meta)


def filter_key(key: str) -> str:
    """Metadata filters address payload paths under `metadata.` (doc_id is top level)."""
    return key if key in ("doc_id", "id") else f"metadata.{key}"
