"""Turning source records into Documents, or into RecordErrors with the reason."""

from __future__ import annotations

import json

from lsrkit.core.errors import RecordError
from lsrkit.core.types import Document, unencodable_at
from lsrkit.ingest.sources import FieldMapping, SourceRecord

MAX_TEXT_CHARS = 1_000_000
MAX_TITLE_CHARS = 10_000  # a title is repeated in every passage of its document
MAX_METADATA_BYTES = 32_768  # as JSON: kept with every passage
# OpenSearch refuses an _id over 512 UTF-8 bytes; a passage id adds "#<n>" (n < 10**7 for the
# longest text allowed): the document id gets what is left
MAX_ID_BYTES = 512 - len("#9999999")


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
        if unencodable_at(doc_id) is not None:
            raise RecordError(
                f"id has a character UTF-8 cannot carry at offset {unencodable_at(doc_id)} (a lone surrogate or an undecodable byte)", position=record.position
            )
        if len(doc_id.encode("utf-8")) > MAX_ID_BYTES or any(ord(c) < 32 for c in doc_id):
            raise RecordError(
                f"id is longer than {MAX_ID_BYTES} UTF-8 bytes (the engines' limit less the passage suffix) or has control characters",
                position=record.position,
                record_id=doc_id[:80],
            )
        text = data.get(self.mapping.text)
        if text is None:
            raise RecordError(f"missing text (field {self.mapping.text!r})", position=record.position, record_id=doc_id)
        if not isinstance(text, str):
            raise RecordError(f"text must be a string, got {type(text).__name__}", position=record.position, record_id=doc_id)
        title = data.get(self.mapping.title) or ""
        if not isinstance(title, str):
            raise RecordError(f"title must be a string, got {type(title).__name__}", position=record.position, record_id=doc_id)
        for name, value in (("text", text), ("title", title)):
            if (offset := unencodable_at(value)) is not None:
                raise RecordError(
                    f"{name} has a character UTF-8 cannot carry at offset {offset} (a lone surrogate or an undecodable byte)",
                    position=record.position,
                    record_id=doc_id,
                )
        if len(title) > MAX_TITLE_CHARS:
            raise RecordError(f"title has {len(title)} characters; the limit is {MAX_TITLE_CHARS}", position=record.position, record_id=doc_id)
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
        self._check_metadata(metadata, record.position, doc_id)
        return Document(id=doc_id, text=text, title=title, metadata=metadata)

    @staticmethod
    def _check_metadata(metadata: dict[str, object], position: str, doc_id: str) -> None:
        for key, value in metadata.items():
            if unencodable_at(key) is not None or (isinstance(value, str) and unencodable_at(value) is not None):
                raise RecordError(
                    f"metadata field {key!r} has a character UTF-8 cannot carry (a lone surrogate or an undecodable byte)", position=position, record_id=doc_id
                )
            if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
                raise RecordError(f"metadata field {key!r} is {value}, which JSON cannot carry", position=position, record_id=doc_id)
        size = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
        if size > MAX_METADATA_BYTES:
            raise RecordError(f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}", position=position, record_id=doc_id)
