"""Turning source records into Documents, or into RecordErrors with the reason."""

from __future__ import annotations

from lsrkit.core.errors import RecordError
from lsrkit.core.types import Document
from lsrkit.ingest.sources import FieldMapping, SourceRecord

MAX_TEXT_CHARS = 1_000_000
MAX_ID_CHARS = 512


class Validator:
    """Checks one record at a time; remembers the ids seen in this run to refuse duplicates."""

    def __init__(self, mapping: FieldMapping = FieldMapping(), *, max_text_chars: int = MAX_TEXT_CHARS, seen: set[str] | None = None) -> None:
        self.mapping = mapping
        self.max_text_chars = max_text_chars
        self.seen: set[str] = seen if seen is not None else set()

    def document(self, record: SourceRecord) -> Document:
        if record.error is not None or record.data is None:
            raise RecordError(record.error or "no data", position=record.position)
        data = record.data
        raw_id = data.get(self.mapping.id, data.get("id") if self.mapping.id == "_id" else None)
        if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
            raise RecordError(f"missing id (field {self.mapping.id!r})", position=record.position)
        if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
            raise RecordError(f"id must be a string or an integer, got {type(raw_id).__name__}", position=record.position)
        doc_id = str(raw_id).strip()
        if len(doc_id) > MAX_ID_CHARS or any(ord(c) < 32 for c in doc_id):
            raise RecordError(f"id is longer than {MAX_ID_CHARS} characters or has control characters", position=record.position, record_id=doc_id[:80])
        text = data.get(self.mapping.text)
        if text is None:
            raise RecordError(f"missing text (field {self.mapping.text!r})", position=record.position, record_id=doc_id)
        if not isinstance(text, str):
            raise RecordError(f"text must be a string, got {type(text).__name__}", position=record.position, record_id=doc_id)
        title = data.get(self.mapping.title) or ""
        if not isinstance(title, str):
            raise RecordError(f"title must be a string, got {type(title).__name__}", position=record.position, record_id=doc_id)
        if not (text.strip() or title.strip()):
            raise RecordError("empty text", position=record.position, record_id=doc_id)
        if len(text) > self.max_text_chars:
            raise RecordError(f"text has {len(text)} characters; the limit is {self.max_text_chars}", position=record.position, record_id=doc_id)
        if doc_id in self.seen:
            raise RecordError("duplicate id in this run", position=record.position, record_id=doc_id)
        self.seen.add(doc_id)
        skip = {self.mapping.id, self.mapping.title, self.mapping.text, "id", "_id"}
        fields = self.mapping.metadata if self.mapping.metadata is not None else tuple(k for k in data if k not in skip)
        metadata = {k: data[k] for k in fields if isinstance(data.get(k), (str, int, float, bool))}  # scalars only
        return Document(id=doc_id, text=text, title=title, metadata=metadata)
