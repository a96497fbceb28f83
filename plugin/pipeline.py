"""SearchPipeline: query text → query encoder → first stage (κ) → MaxSim rerank → top-k hits."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol

from lsrkit.core.config import RerankSettings
from lsrkit.core.errors import ConfigError, InputError
from lsrkit.core.types import Hit, MultiVector, SparseVector
from lsrkit.plugin.base import Backend, Filters, Hydration, MetaStore, PairedSearch, PartialSearch, PerDocumentSearch, SearchWithMultivectors, TextSearch
from lsrkit.plugin.codec import MultiVectorCodec
from lsrkit.plugin.fusion import FusionMethod, fuse
from lsrkit.plugin.rerank import MaxSimReranker

FirstStage = Literal["sparse", "bm25", "hybrid"]
MAX_QUERY_CHARS = 4096


class QueryEncoder(Protocol):
    def encode_queries(self, texts: Sequence[object]) -> list[SparseVector]: ...


class MultiVectorQueryEncoder(Protocol):
    def encode_queries(self, texts: Sequence[object]) -> list[MultiVector]: ...


@dataclass(frozen=True)
class HybridSettings:
    """BM25 + sparse fusion of the first stage. weights: (bm25, sparse)."""

    method: FusionMethod = "minmax"
    weights: tuple[float, float] = (0.5, 0.5)
    depth: int = 100  # how many hits each run contributes before fusion

    def __post_init__(self) -> None:
        if self.method not in ("rrf", "minmax"):
            raise ConfigError(f"fusion method must be rrf or minmax, got {self.method!r}")
        if self.depth < 1 or any(w < 0 for w in self.weights):
            raise ConfigError("hybrid depth must be >= 1 and weights >= 0")


@dataclass
class SearchResult:
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)


def demote(tail: Sequence[Hit], below: float) -> list[Hit]:
    """The candidates left out of a rerank, in their first-stage order, scored under `below` (the
    lowest reranked score); their first-stage score is kept in stage_scores.

    >>> [(h.id, h.score) for h in demote([Hit("a", 7.0), Hit("b", 5.0)], below=0.2)]
    [('a', -0.8), ('b', -1.8)]
    """
    return [h.evolve(score=below - 1.0 - i, stage_scores={**h.stage_scores, "first_stage": h.score}) for i, h in enumerate(tail)]


def _document_of(hit: Hit) -> str:
    return str(hit.metadata.get("doc_id") or hit.id)


def documents_covered(hits: Sequence[Hit]) -> int:
    """How many documents the passages belong to (what aggregate_passages would return, counted
    without building it).

    >>> documents_covered([Hit("d1#0", 1.0, metadata={"doc_id": "d1"}), Hit("d1#1", 0.5, metadata={"doc_id": "d1"}), Hit("d2", 0.2)])
    2
    """
    return len({_document_of(h) for h in hits})


def tail_needed(head: Sequence[Hit], tail: Sequence[Hit], k: int) -> list[Hit]:
    """The shortest start of `tail` that, with `head`, covers k documents (all of it if none
    does): every tail passage ranks below the head and below the tail passages before it, so
    what comes after cannot reach the top k documents.

    >>> head = [Hit("d1#0", 2.0, metadata={"doc_id": "d1"})]
    >>> [h.id for h in tail_needed(head, [Hit("d1#1", 1.0, metadata={"doc_id": "d1"}), Hit("d2", 0.5), Hit("d3", 0.2)], k=2)]
    ['d1#1', 'd2']
    """
    documents = {_document_of(h) for h in head}
    for n, hit in enumerate(tail):
        if len(documents) >= k:
            return list(tail[:n])
        documents.add(_document_of(hit))
    return list(tail)


def aggregate_passages(hits: Sequence[Hit], limit: int | None = None) -> list[Hit]:
    """Max-passage: keep each document's best passage, reported under the document id; the best
    `limit` documents only, when given (only they are copied).

    >>> hs = [Hit("d1#1", 3.0, metadata={"doc_id": "d1"}), Hit("d1#0", 2.0, metadata={"doc_id": "d1"}), Hit("d2", 1.0)]
    >>> [(h.id, h.score, h.metadata.get("passage_id")) for h in aggregate_passages(hs)]
    [('d1', 3.0, 'd1#1'), ('d2', 1.0, 'd2')]
    >>> [h.id for h in aggregate_passages(hs, limit=1)]
    ['d1']
    """
    best: dict[str, Hit] = {}
    for hit in hits:
        doc_id = _document_of(hit)
        current = best.get(doc_id)
        if current is None or hit.score > current.score:
            best[doc_id] = hit
    ranked = sorted(best.items(), key=lambda item: -item[1].score)
    return [hit.evolve(id=doc_id, metadata={**hit.metadata, "passage_id": hit.id}) for doc_id, hit in ranked[:limit]]


CODEC_META = "multivector"  # the MetaStore key of an index's MultiVectorCodec


def index_codec(backend: Backend, index: str) -> MultiVectorCodec:
    """The codec the index's token vectors were written with (stored by the first ingest)."""
    meta = backend.get_meta(index, CODEC_META) if isinstance(backend, MetaStore) else None
    if not meta:
        raise ConfigError(f"index {index!r} holds no token vectors (no multivector codec stored with it): ingest with a multivector encoder first")
    return MultiVectorCodec.from_meta(meta)


class SearchPipeline:
    """The query path over one index of one backend.

    `rerank` scores the first stage's top κ candidates here by MaxSim over their stored compact
    token vectors (α/β pruning, interpolation with the first-stage score); `codec` decodes them
    (by default the one stored with the index).
    """

    def __init__(
        self,
        backend: Backend,
        index: str,
        query_encoder: QueryEncoder | None,
        *,
        multivector_encoder: MultiVectorQueryEncoder | None = None,
        rerank: bool = False,
        codec: MultiVectorCodec | None = None,
        settings: RerankSettings = RerankSettings(),
        first_stage: FirstStage = "sparse",
        hybrid: HybridSettings = HybridSettings(),
        aggregate: bool = True,
    ) -> None:
        if rerank and multivector_encoder is None:
            raise ConfigError("reranking needs a multivector_encoder")
        if first_stage in ("bm25", "hybrid") and not isinstance(backend, TextSearch):
            raise ConfigError(f"backend {backend.name} has no BM25 search")
        if first_stage in ("sparse", "hybrid") and query_encoder is None:
            raise ConfigError("a sparse first stage needs a query_encoder")
        self.backend = backend
        self.index = index
        self.query_encoder = query_encoder
        self.multivector_encoder = multivector_encoder
        self.rerank = rerank
        self.codec = (codec or index_codec(backend, index)) if rerank else None
        self.settings = settings
        self.first_stage = first_stage
        self.hybrid = hybrid
        self.aggregate = aggregate
        self.reranker = MaxSimReranker(settings)
        # the query's token vectors are encoded while the first stage runs (onnxruntime releases
        # the GIL; the engine round trip is mostly waiting)
        self._encoder_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lsrkit-query-mv") if rerank else None

    def search(self, text: str, *, k: int | None = None, filters: Filters | None = None) -> SearchResult:
        if not isinstance(text, str) or not text.strip():
            raise InputError("query text must be a non-empty string")
        if len(text) > MAX_QUERY_CHARS:
            raise InputError(f"query is {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
        k = k or self.settings.k
        if k > self.settings.max_kappa:
            raise InputError(f"k={k} exceeds the candidate limit {self.settings.max_kappa}")
        kappa = self.settings.kappa
        depth = max(kappa, k) if self.rerank else k
        timings: dict[str, float] = {}
        clock = started = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = timings.get(name, 0.0) + (now - clock) * 1000.0
            clock = now

        pending: Future[list[MultiVector]] | None = None
        if self._encoder_thread is not None and self.multivector_encoder is not None:
            pending = self._encoder_thread.submit(self.multivector_encoder.encode_queries, [text])
        sparse = self.query_encoder.encode_queries([text])[0] if self.query_encoder and self.first_stage != "bm25" else None
        if pending is not None:
            lap("encode")
            hits = self._rerank_client(text, sparse, pending, depth, k, filters, lap)
        elif self.aggregate:
            lap("encode")
            hits = self._enough_documents(text, sparse, k, filters)
            lap("first_stage")
        else:
            lap("encode")
            hits = self._first_stage(text, sparse, k, filters)
            lap("first_stage")
        hits = aggregate_passages(hits, limit=k) if self.aggregate else hits[:k]
        if any(h.partial for h in hits) and isinstance(self.backend, Hydration):
            hits = self.backend.hydrate(self.index, hits)  # only the k returned are read whole
            lap("hydrate")
        # wall time, not the sum of the stages: what falls between laps (aggregation, the final
        # ranking) counts too
        timings["total"] = (time.perf_counter() - started) * 1000.0
        return SearchResult(hits, timings)

    def _rerank_client(
        self, text: str, sparse: SparseVector | None, pending: Future[list[MultiVector]], depth: int, k: int, filters: Filters | None, lap: Callable[[str], None]
    ) -> list[Hit]:
        """Rerank the top κ; the first stage's hits past κ keep their order below the reranked ones,
        read deeper when the passages do not cover k documents. `pending` is the query's
        multivector, being encoded meanwhile."""
        kappa = self.settings.kappa
        stored = None
        if depth == kappa and self.first_stage == "sparse" and isinstance(self.backend, SearchWithMultivectors):
            assert sparse is not None
            hits, stored = self.backend.search_sparse_with_multivectors(self.index, sparse, kappa, filters=filters)
        else:
            hits = self._first_stage(text, sparse, depth, filters)
        lap("first_stage")
        query_vectors = pending.result()[0]
        lap("encode")  # what the encoding took beyond the first stage
        head, tail = hits[:kappa], hits[kappa:]
        if not head:
            return hits
        if stored is None:
            stored = self.backend.fetch_multivectors(self.index, [h.id for h in head])
            lap("fetch")
        assert self.codec is not None
        decoded = {i: self.codec.decode(data) for i, data in stored.items()}
        reranked = self.reranker.rerank(query_vectors.vectors, head, decoded)  # pruning protects settings.k
        scored = {h.id for h in reranked}
        tail = [h for h in head if h.id not in scored] + tail  # pruned by α/β: kept, in first-stage order
        head = reranked
        lap("rerank")
        if self.aggregate and len(hits) >= depth:
            tail = self._deeper_tail(text, sparse, head, tail, depth, k, filters)
            lap("first_stage")  # the deeper read is first-stage work
        # only the tail that can reach the top k is demoted (a hybrid tail is ~150 passages)
        tail = tail_needed(head, tail, k) if self.aggregate else tail[: max(0, k - len(head))]
        return head + demote(tail, below=min(h.score for h in head))

    def _deeper_tail(self, text: str, sparse: SparseVector | None, head: list[Hit], tail: list[Hit], depth: int, k: int, filters: Filters | None) -> list[Hit]:
        """The unreranked tail, read deeper (twice as deep each time) until head and tail cover k
        documents or the engine has no more: κ passages can be fewer than k documents, and a
        reranked search must not return fewer documents than the first stage alone would."""
        reranked = {h.id for h in head}
        limit = depth
        while documents_covered(head + tail) < k and limit < 8 * max(k, depth):
            limit *= 2
            deeper = self._first_stage(text, sparse, limit, filters)
            tail = [h for h in deeper if h.id not in reranked]  # pruned candidates first, as before
            if len(deeper) < limit:
                break
        return tail

    def _enough_documents(self, text: str, sparse: SparseVector | None, k: int, filters: Filters | None) -> list[Hit]:
        """Passages until they cover k documents (a long document has several): from an engine
        that keeps each document's best passage, in one call; else fetch k, then twice as many,
        while the engine has more and they aggregate to fewer than k documents."""
        if isinstance(self.backend, PerDocumentSearch) and self.first_stage in ("sparse", "bm25"):
            if self.first_stage == "sparse":
                assert sparse is not None
                return self.backend.search_sparse_documents(self.index, sparse, k, filters=filters)
            return self.backend.search_text_documents(self.index, text, k, filters=filters)
        limit = k
        while True:
            hits = self._first_stage(text, sparse, limit, filters)
            if len(hits) < limit or documents_covered(hits) >= k or limit >= 8 * k:
                return hits
            limit *= 2

    def _first_stage(self, text: str, sparse: SparseVector | None, kappa: int, filters: Filters | None) -> list[Hit]:
        """The candidates (κ per run), partial where the engine can: only the hits returned are
        then read whole (Hydration). Measured on OpenSearch (SciFact, p50, one process, partial vs
        whole): k=10 hybrid 16 vs 27 ms, hybrid+rerank 24 vs 34; k=100 sparse-idf+rerank 47 vs
        61; k=100 hybrid 30 vs 26 ms and hybrid+rerank 40 vs 38, the one case where whole reads,
        run side by side in one msearch, are a little faster."""
        partial = isinstance(self.backend, PartialSearch) and isinstance(self.backend, Hydration)
        if self.first_stage == "sparse":
            assert sparse is not None
            return self._sparse(sparse, kappa, filters, partial)
        if self.first_stage == "bm25":
            return self._text(text, kappa, filters, partial)
        assert sparse is not None
        # the whole fused list, not its top κ: both runs were fetched anyway, and it is what the
        # settings were tuned on (lsrkit.tuning.apply); cutting it made k=100 searches fetch
        # both runs again at twice the depth, under other min-max bounds
        depth = max(self.hybrid.depth, kappa)
        if isinstance(self.backend, PairedSearch):  # both runs in one round trip, side by side
            lexical, learned = self.backend.search_text_and_sparse(self.index, text, sparse, depth, filters=filters, partial=partial)
        else:
            lexical, learned = self._text(text, depth, filters, partial), self._sparse(sparse, depth, filters, partial)
        return fuse([lexical, learned], self.hybrid.method, list(self.hybrid.weights))

    def _sparse(self, sparse: SparseVector, limit: int, filters: Filters | None, partial: bool) -> list[Hit]:
        if partial:
            assert isinstance(self.backend, PartialSearch)
            return self.backend.search_sparse_partial(self.index, sparse, limit, filters=filters)
        return self.backend.search_sparse(self.index, sparse, limit, filters=filters)

    def _text(self, text: str, limit: int, filters: Filters | None, partial: bool) -> list[Hit]:
        assert isinstance(self.backend, TextSearch)
        if partial:
            assert isinstance(self.backend, PartialSearch)
            return self.backend.search_text_partial(self.index, text, limit, filters=filters)
        return self.backend.search_text(self.index, text, limit, filters=filters)
