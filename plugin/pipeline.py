"""SearchPipeline: query text → query encoder → first stage (κ) → MaxSim rerank → top-k hits."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from lsrkit.core.config import RerankSettings
from lsrkit.core.defaults import tuned as tuned_defaults
from lsrkit.core.errors import ConfigError, InputError
from lsrkit.core.types import Hit, MultiVector, SparseVector, unencodable_at
from lsrkit.encoders.run_signal import model_run_signal
from lsrkit.plugin.base import Backend, Filters, Retrieval, Retrieved
from lsrkit.plugin.codec import MultiVectorCodec, decode_or_skip
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

    # defaults: the hybrid pipeline's tuned fusion (core/tuned.json)
    method: FusionMethod = field(default_factory=lambda: tuned_defaults().hybrid.fusion)  # type: ignore[arg-type,return-value]
    weights: tuple[float, float] = field(default_factory=lambda: (tuned_defaults().hybrid.bm25_weight, 1.0 - tuned_defaults().hybrid.bm25_weight))
    depth: int = field(default_factory=lambda: tuned_defaults().hybrid_depth)  # how many hits each run contributes before fusion

    def __post_init__(self) -> None:
        if self.method not in ("rrf", "minmax"):
            raise ConfigError(f"fusion method must be rrf or minmax, got {self.method!r}")
        if self.depth < 1 or any(w < 0 for w in self.weights):
            raise ConfigError("hybrid depth must be >= 1 and weights >= 0")

    @classmethod
    def tuned(cls, *, reranked: bool = False) -> HybridSettings:
        """The fusion tuned for the hybrid pipeline, or for the hybrid run a rerank follows (core/tuned.json)."""
        defaults = tuned_defaults()
        stage = defaults.stage("hybrid", reranked=reranked)
        return cls(method=stage.fusion, weights=(stage.bm25_weight, 1.0 - stage.bm25_weight), depth=defaults.hybrid_depth)  # type: ignore[arg-type]


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


def reranked_first(reranked: Sequence[Hit], rest: Sequence[Hit], k: int, aggregate: bool = True) -> list[Hit]:
    """The ranking a rerank returns: the reranked candidates, then the rest in first-stage order,
    demoted below them; only as much of the rest as can reach the top k (documents, when
    aggregating).

    >>> [(h.id, h.score) for h in reranked_first([Hit("b", 0.9), Hit("a", 0.4)], [Hit("c", 5.0), Hit("d", 4.0)], k=3)]
    [('b', 0.9), ('a', 0.4), ('c', -0.6)]
    """
    if not reranked:
        return list(rest)
    tail = tail_needed(reranked, rest, k) if aggregate else list(rest[: max(0, k - len(reranked))])
    return list(reranked) + demote(tail, below=min(h.score for h in reranked))


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
    meta = backend.get_meta(index, CODEC_META)
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
        settings: RerankSettings | None = None,
        first_stage: FirstStage = "sparse",
        hybrid: HybridSettings | None = None,
        aggregate: bool = True,
    ) -> None:
        """settings / hybrid: None takes the tuned ones of this first stage (core/tuned.json)."""
        if rerank and multivector_encoder is None:
            raise ConfigError("reranking needs a multivector_encoder")
        if first_stage in ("sparse", "hybrid") and query_encoder is None:
            raise ConfigError("a sparse first stage needs a query_encoder")
        self.backend = backend
        self.index = index
        self.query_encoder = query_encoder
        self.multivector_encoder = multivector_encoder
        self.rerank = rerank
        self.codec = (codec or index_codec(backend, index)) if rerank else None
        self.settings = settings or RerankSettings.tuned(first_stage)
        self.first_stage = first_stage
        self.hybrid = hybrid or HybridSettings.tuned(reranked=rerank)
        self.aggregate = aggregate
        self.reranker = MaxSimReranker(self.settings)
        # the query's token vectors are encoded while the first stage runs (onnxruntime releases
        # the GIL while its model runs)
        self._encoder_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lsrkit-query-mv") if rerank else None

    def search(self, text: str, *, k: int | None = None, filters: Filters | None = None) -> SearchResult:
        """Encode → one first-stage read → (rerank of the top κ) → k hits, best first; only the
        hits returned are read whole. A rerank reads the first stage once more, per document,
        when its κ passages and the rest of the read cover fewer than k documents."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("query text must be a non-empty string")
        if len(text) > MAX_QUERY_CHARS:
            raise InputError(f"query is {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
        if (offset := unencodable_at(text)) is not None:
            raise InputError(f"query has a character UTF-8 cannot carry at offset {offset} (a lone surrogate)")
        k = k or self.settings.k
        if k > self.settings.max_kappa:
            raise InputError(f"k={k} exceeds the candidate limit {self.settings.max_kappa}")
        timer = _Laps()
        pending: Future[list[MultiVector]] | None = None
        model_running = threading.Event()
        if self._encoder_thread is not None:
            pending = self._encoder_thread.submit(self._encode_query_vectors, text, model_running)
            pending.add_done_callback(lambda _: model_running.set())  # failed or cancelled before its run: no wait
        sparse = self.query_encoder.encode_queries([text])[0] if self.query_encoder is not None and self.first_stage != "bm25" else None
        if pending is not None and self.backend.reads_hold_gil:
            # the model's run releases the GIL, the engine call does not: started first, they overlap
            # (an encoder that never signals its run is waited for whole)
            model_running.wait()
        timer.lap("encode")
        # a sparse or BM25 run returned as read carries its texts; fused or reranked candidates
        # are read without them, and the k returned are hydrated
        direct = pending is None and self.first_stage != "hybrid"
        depth = max(self.settings.kappa, k) if pending is not None else k
        request = self._retrieval(text, sparse, depth, filters, documents=direct and self.aggregate, texts=direct)
        retrieved = self.backend.retrieve(self.index, request)
        hits = self._candidates(retrieved)
        timer.lap("first_stage")
        if pending is not None:
            hits = self._rerank(hits, retrieved.multivectors, pending, request, k, timer)
        hits = aggregate_passages(hits, limit=k) if self.aggregate else hits[:k]
        if not direct:
            hits = self.backend.hydrate(self.index, hits)
            timer.lap("hydrate")
        return SearchResult(hits, timer.done())

    def _encode_query_vectors(self, text: str, model_running: threading.Event) -> list[MultiVector]:
        assert self.multivector_encoder is not None
        with model_run_signal(model_running):
            return self.multivector_encoder.encode_queries([text])

    def describe(self) -> dict[str, object]:
        """What this pipeline runs with: its first stage, fusion and rerank settings."""
        described: dict[str, object] = {"first_stage": self.first_stage, "rerank": self.rerank}
        if self.first_stage == "hybrid":
            described["hybrid"] = {"method": self.hybrid.method, "weights": list(self.hybrid.weights), "depth": self.hybrid.depth}
        if self.rerank:
            s = self.settings
            described.update(kappa=s.kappa, interpolation=s.interpolation, alpha=s.alpha, beta=s.beta, protected_top=s.k)
        return described

    def close(self) -> None:
        """Stop the query encoder's thread (a pipeline is usable until then)."""
        if self._encoder_thread is not None:
            self._encoder_thread.shutdown(wait=True)

    def _retrieval(self, text: str, sparse: SparseVector | None, depth: int, filters: Filters | None, *, documents: bool, texts: bool) -> Retrieval:
        if self.first_stage == "hybrid":
            # each run as deep as the fusion was tuned on; the whole fused list is the first stage
            depth = max(self.hybrid.depth, depth)
        reads_vectors = self.rerank and self.first_stage != "hybrid" and depth == self.settings.kappa
        return Retrieval(
            sparse=sparse if self.first_stage != "bm25" else None,
            text=text if self.first_stage != "sparse" else None,
            limit=depth,
            filters=filters,
            documents=documents,
            texts=texts,
            multivectors=reads_vectors,  # κ candidates' vectors in the same read (a hybrid run reads 2×100 candidates: too many)
        )

    def _candidates(self, retrieved: Retrieved) -> list[Hit]:
        if self.first_stage == "hybrid":
            return fuse([retrieved.bm25, retrieved.sparse], self.hybrid.method, list(self.hybrid.weights))
        return retrieved.bm25 if self.first_stage == "bm25" else retrieved.sparse

    def _rerank(self, hits: list[Hit], stored: dict[str, bytes], pending: Future[list[MultiVector]], request: Retrieval, k: int, timer: _Laps) -> list[Hit]:
        """MaxSim over the top κ; the candidates pruned by α/β and the first stage past κ keep
        their order below the reranked ones."""
        kappa = self.settings.kappa
        head, tail = hits[:kappa], hits[kappa:]
        missing = [h.id for h in head if h.id not in stored]
        if missing:  # read while the query's token vectors may still be encoding
            stored = {**stored, **self.backend.fetch_multivectors(self.index, missing)}
            timer.lap("fetch")
        query_vectors = pending.result()[0]
        timer.lap("encode")  # what the query's token vectors took beyond the reads
        if not head:
            return hits
        assert self.codec is not None
        reranked = self.reranker.rerank(query_vectors.vectors, head, decode_or_skip(self.codec, {h.id: stored[h.id] for h in head if h.id in stored}))
        scored = {h.id for h in reranked}
        tail = [h for h in head if h.id not in scored] + tail  # pruned by α/β: kept, in first-stage order
        timer.lap("rerank")
        if self.aggregate and self.first_stage != "hybrid" and len(hits) >= request.limit and documents_covered(reranked + tail) < k:
            # κ passages of long documents can be fewer than k documents: the exception, one more read
            deeper = self.backend.retrieve(self.index, replace(request, limit=k, documents=True, multivectors=False))
            seen = scored | {h.id for h in tail}
            tail = tail + [h for h in self._candidates(deeper) if h.id not in seen]
            timer.lap("first_stage")
        return reranked_first(reranked, tail, k, self.aggregate)


class _Laps:
    """Per-stage wall time of one search (a stage seen twice adds up) and the total."""

    def __init__(self) -> None:
        self.started = self.clock = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + (now - self.clock) * 1000.0
        self.clock = now

    def done(self) -> dict[str, float]:
        # wall time, not the sum of the stages: what falls between laps counts too
        return {**self.timings, "total": (time.perf_counter() - self.started) * 1000.0}
