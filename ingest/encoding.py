"""Documents → passages → encoded records: the step the local job and a Ray actor both run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from lsrkit.core.errors import EncoderError, InputError, RecordError
from lsrkit.core.types import Document, MultiVector, SparseVector, passage_text
from lsrkit.ingest.chunking import Chunker, Passage
from lsrkit.plugin.base import EncodedRecord
from lsrkit.plugin.codec import MultiVectorCodec

Reject = tuple[RecordError, str | None]  # why, and the raw record when there is one


class EncodesSparseDocuments(Protocol):
    @property
    def vocab(self) -> list[str]: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def manifest(self) -> Mapping[str, object]: ...

    def encode_documents(self, texts: Sequence[object]) -> list[SparseVector]: ...


class EncodesMultiVectorDocuments(Protocol):
    @property
    def fingerprint(self) -> str: ...

    @property
    def manifest(self) -> Mapping[str, object]: ...

    def encode_documents(self, texts: Sequence[object]) -> list[MultiVector]: ...


CodecFor = Callable[[list[MultiVector | None]], MultiVectorCodec | None]  # the index's codec (a new index's first batch calibrates it)


class BatchEncoder:
    """Chunk a batch of documents, encode its passages (sparse and token vectors), and build the
    records the engines store; a passage an encoder refuses is rejected alone."""

    def __init__(self, sparse: EncodesSparseDocuments, multivector: EncodesMultiVectorDocuments | None, chunker: Chunker) -> None:
        self.sparse = sparse
        self.multivector = multivector
        self.chunker = chunker

    def encode(self, documents: Sequence[Document], codec_for: CodecFor) -> tuple[list[EncodedRecord], list[Reject]]:
        passages: list[Passage] = [p for doc in documents for p in self.chunker.split(doc)]
        metadata = {d.id: d.metadata for d in documents}
        rejects: list[Reject] = []
        sparse, multi = self._encode_texts([passage_text(p.title, p.text) for p in passages], passages, rejects)
        codec = codec_for(multi)
        records = []
        for passage, sv, mv in zip(passages, sparse, multi, strict=True):  # one entry per passage in each
            if sv is None:
                continue
            try:
                compact = codec.encode(mv.vectors) if codec is not None and mv is not None else None
            except InputError as exc:  # this passage alone is refused
                rejects.append((RecordError(f"token vectors refused: {exc}", position="passage", record_id=passage.id), None))
                continue
            records.append(EncodedRecord(passage.id, passage.doc_id, passage.text, sv, passage.title, metadata[passage.doc_id], compact))
        owner = {p.id: p.doc_id for p in passages}
        return _whole_documents(records, rejects, {owner[e.record_id] for e, _ in rejects if e.record_id in owner})

    def _encode_texts(self, texts: list[str], passages: list[Passage], rejects: list[Reject]) -> tuple[list[SparseVector | None], list[MultiVector | None]]:
        try:
            sparse: list[SparseVector | None] = list(self.sparse.encode_documents(texts))
            multi: list[MultiVector | None] = list(self.multivector.encode_documents(texts)) if self.multivector else [None] * len(texts)
            return sparse, multi
        except EncoderError:  # find the text(s) at fault, keep the rest
            sparse, multi = [], []
            for text, passage in zip(texts, passages, strict=True):
                # both encodings first, then both appends: the two lists must stay aligned with texts
                sv: SparseVector | None
                mv: MultiVector | None
                try:
                    sv = self.sparse.encode_documents([text])[0]
                    mv = self.multivector.encode_documents([text])[0] if self.multivector else None
                except EncoderError as exc:
                    sv = mv = None
                    rejects.append((RecordError(f"encoding failed: {exc}", position="passage", record_id=passage.id), None))
                sparse.append(sv)
                multi.append(mv)
            return sparse, multi


def _whole_documents(records: list[EncodedRecord], rejects: list[Reject], refused_documents: set[str]) -> tuple[list[EncodedRecord], list[Reject]]:
    """A document is written whole or not at all: one refused passage holds back the others, so
    an update never leaves a document part new, part missing (its old passages stay)."""
    held = [r for r in records if r.doc_id in refused_documents]
    reason = "held back: another passage of document {!r} was refused"
    return [r for r in records if r.doc_id not in refused_documents], rejects + [
        (RecordError(reason.format(r.doc_id), position="passage", record_id=r.id), None) for r in held
    ]
