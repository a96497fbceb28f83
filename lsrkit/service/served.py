"""What the service serves, loaded once at start: the index's backend, its encoders and every
pipeline over it. Each method is a blocking call (the app runs it in its thread pool)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lsrkit.core.config import RerankSettings
from lsrkit.core.errors import InputError
from lsrkit.core.types import Hit
from lsrkit.encoders import IdfQueryEncoder, MultiVectorEncoder, SparseDocEncoder, SparseQueryEncoder
from lsrkit.index import Index
from lsrkit.plugin import SearchPipeline
from lsrkit.plugin.base import Filters
from lsrkit.plugin.codec import MultiVectorCodec, decode_or_skip
from lsrkit.plugin.pipeline import SearchResult
from lsrkit.plugin.rerank import MaxSimReranker
from lsrkit.service.settings import ServiceSettings


@dataclass(frozen=True)
class ServedEncoders:
    """The encoders of one index."""

    sparse_doc: SparseDocEncoder
    idf_query: IdfQueryEncoder
    sparse_query: SparseQueryEncoder
    multivector: MultiVectorEncoder | None


def load_encoders(index: Index) -> ServedEncoders:
    """The encoders the index's manifest names (those `lsrkit search` uses)."""
    sparse_doc, multivector = index.document_encoders()
    return ServedEncoders(sparse_doc, index.idf_encoder(), index.sparse_query_encoder(), multivector)


@dataclass(frozen=True)
class Reranked:
    hits: list[Hit]
    unknown_ids: list[str]


class ServedIndex:
    """The backend, the encoders and the pipelines of one index."""

    def __init__(self, target: Index) -> None:
        self.target = target
        self.backend = target.backend
        self.index = target.name
        self.encoders = load_encoders(target)
        self.quality = target.quality
        self.pipelines: dict[str, SearchPipeline] = {name: target.pipeline(name) for name in target.pipelines()}
        self.codec: MultiVectorCodec | None = target.codec() if any(p.rerank for p in self.pipelines.values()) else None
        self._sparse_vocab = self.encoders.sparse_doc.vocab
        self._query_vocab = self.encoders.idf_query.vocab

    @classmethod
    def open(cls, settings: ServiceSettings) -> ServedIndex:
        target = Index(settings.index, backend=settings.backend)
        try:
            return cls(target)
        except BaseException:
            target.close()
            raise

    def search(self, pipeline: str, text: str, k: int, filters: Filters | None) -> SearchResult:
        chosen = self.pipelines.get(pipeline)
        if chosen is None:
            raise InputError(f"pipeline {pipeline!r} is not served for index {self.index!r}; served: {', '.join(self.pipelines)}")
        self.target.refresh()  # the corpus statistics another job changed
        return chosen.search(text, k=k, filters=filters)

    def rerank(self, query: str, candidates: Sequence[tuple[str, float | None]], k: int) -> Reranked:
        """MaxSim over the candidates' stored token vectors; a candidate's first-stage score, when
        every candidate has one, is interpolated as the search pipelines do. Ids the index does
        not hold are returned apart, not ranked."""
        if self.codec is None:
            raise InputError(f"index {self.index!r} stores no token vectors: nothing to rerank with")
        ids = list(dict.fromkeys(c for c, _ in candidates))
        stored = self.backend.fetch_multivectors(self.index, ids)
        scores: Mapping[str, float | None] = dict(candidates)
        known = [c for c in ids if c in stored]
        with_scores = all(scores[c] is not None for c in known)
        hits = [Hit(c, float(scores[c] or 0.0)) for c in known]
        tuned = self.quality.rerank("sparse")  # a caller's candidates are fused as the sparse pipeline's are
        settings = RerankSettings(kappa=max(len(hits), 1), k=max(1, min(k, len(hits))), interpolation=tuned.interpolation if with_scores else 0.0)
        assert self.encoders.multivector is not None  # a codec means token vectors and their encoder
        query_vectors = self.encoders.multivector.encode_queries([query])[0]
        decoded = decode_or_skip(self.codec, {c: stored[c] for c in known})
        ranked = MaxSimReranker(settings).rerank(query_vectors.vectors, hits, decoded, k=settings.k)[:k] if hits else []
        return Reranked(ranked, [c for c in ids if c not in stored])

    def encode_documents(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Token → weight maps of documents (the SPLADE model), as OpenSearch rank_features keys them."""
        return [v.to_tokens(self._sparse_vocab) for v in self.encoders.sparse_doc.encode_documents(texts)]

    def encode_queries(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Token → weight maps of queries, inference-free (tokenizer and IDF table, no model)."""
        self.target.refresh()  # the corpus statistics another job changed
        return [v.to_tokens(self._query_vocab) for v in self.encoders.idf_query.encode_queries(texts)]

    def close(self) -> None:
        self.target.close()
