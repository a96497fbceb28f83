"""The rerank stage: multivector MaxSim over the first stage's candidates, with α/β pruning.

α-pruning and β early exit follow "Multivector Reranking in the Era of Strong First-Stage
Retrievers" (ECIR 2026).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lsrkit.core.config import RerankSettings
from lsrkit.core.errors import InputError
from lsrkit.core.types import Hit
from lsrkit.encoders.one_thread import float_product
from lsrkit.plugin.codec import CODES, CenteredCodes, QuantizedRows, ResidualCodes, StoredMultiVector, as_floats, unpack_levels
from lsrkit.plugin.integer_gemm import QueryCodes, integer_products, quantize_query, row_scaled_products

FloatArray = npt.NDArray[np.float32]


def maxsim_scores(query: FloatArray, documents: Sequence[StoredMultiVector]) -> FloatArray:
    """Late-interaction scores: for each document, Σ over query tokens of the max dot product
    with the document's tokens. One flat matmul over all candidates' tokens, then a per-document
    max. A document with no tokens scores 0.

    Compact documents are scored from their codes against the float query (asymmetric): int8
    rows and centered low-bit codes on an integer GEMM with the query rounded to 7 bits per token
    (lsrkit.plugin.integer_gemm); residual codes the same way for the residual, plus the query's
    float products with the token's centroid; product codes and float documents with a float
    matmul (product codes decoded first: a gather from their codebooks).

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> d1 = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float16)
    >>> d2 = np.array([[0.0, 1.0]], dtype=np.float16)
    >>> [round(v, 3) for v in maxsim_scores(q, [d1, d2, np.zeros((0, 2))]).tolist()]
    [1.8, 1.0, 0.0]
    >>> from lsrkit.plugin.codec import quantize_rows
    >>> [round(v, 2) for v in maxsim_scores(q, [quantize_rows(d1), quantize_rows(d2)]).tolist()]
    [1.8, 1.0]
    """
    return _MaxSim(query)(documents)


@dataclass(frozen=True, eq=False)
class _CenteredQuery:
    """One query prepared for one codec's centered codes: turned by its rotation, weighted by its
    spread and rounded to 7 bits (`weighted`); a document token's integer product p with it is
    p·token_scale - middle + center before its factor, (p·token_scale - middle)·α + center with
    it; `offset` = center - middle."""

    codec: tuple[object, object, object, int]  # center, spread, rotation (by identity), bits
    weighted: QueryCodes
    token_scale: FloatArray
    middle: FloatArray
    center: FloatArray

    @property
    def offset(self) -> FloatArray:
        return self.center - self.middle

    def prepared_for(self, codes: CenteredCodes) -> bool:
        center, spread, rotation, bits = self.codec
        return center is codes.center and spread is codes.spread and rotation is codes.rotation and bits == codes.bits

    @classmethod
    def prepare(cls, query: FloatArray, codes: CenteredCodes) -> _CenteredQuery:
        turned = query if codes.rotation is None else float_product(query, codes.rotation)  # float32: a query's bytes are never stored
        weighted = quantize_query(turned * codes.spread[None, :])
        token_scale = (codes.step * weighted.scales).astype(np.float32)
        middle = ((2**codes.bits - 1) / 2.0 * token_scale * weighted.codes.sum(axis=0, dtype=np.int64)).astype(np.float32)
        return cls(
            (codes.center, codes.spread, codes.rotation, codes.bits), weighted, token_scale, middle, np.einsum("td,d->t", turned, codes.center)
        )  # einsum's own loop: no BLAS thread


class _MaxSim:
    """MaxSim of one query against any number of document batches (the β scan scores a block at
    a time): the query is checked once, and quantized once per codec."""

    def __init__(self, query: FloatArray) -> None:
        self.query = np.asarray(query, dtype=np.float32)
        self._int8_query: QueryCodes | None = None
        # per codec: the σ-weighted query (keyed by the codec's center, spread, bits and rotation), and q·C (by its centroids)
        self._centered: _CenteredQuery | None = None
        self._centroid_products: tuple[FloatArray, FloatArray] | None = None

    def __call__(self, documents: Sequence[StoredMultiVector]) -> FloatArray:
        query = self.query
        scores = np.zeros(len(documents), dtype=np.float32)
        lengths = np.fromiter((len(d) for d in documents), dtype=np.int64, count=len(documents))
        nonempty = [documents[int(i)] for i in np.flatnonzero(lengths)]
        if not nonempty or query.shape[0] == 0:
            return scores
        dims = {d.dim if isinstance(d, CODES) else d.shape[1] for d in nonempty}
        if dims != {query.shape[1]}:
            raise InputError(f"query vectors have dim {query.shape[1]}, stored ones {sorted(dims)}")
        starts = np.concatenate(([0], np.cumsum(lengths[lengths > 0])[:-1]))
        if all(isinstance(d, QuantizedRows) for d in nonempty):
            maxima = self._int8_maxima(nonempty, starts)  # type: ignore[arg-type]
        elif all(isinstance(d, CenteredCodes) for d in nonempty):
            maxima = self._centered_maxima(nonempty, starts)  # type: ignore[arg-type]
        elif all(isinstance(d, ResidualCodes) for d in nonempty):
            maxima = self._residual_maxima(nonempty, starts)  # type: ignore[arg-type]
        else:
            rows = [as_floats(d) for d in nonempty]
            sims = float_product(np.concatenate(rows), query.T)
            maxima = np.maximum.reduceat(sims, starts, axis=0)
        scores[lengths > 0] = maxima.sum(axis=1)
        return scores

    def _int8_maxima(self, documents: Sequence[QuantizedRows], starts: npt.NDArray[np.int64]) -> FloatArray:
        if self._int8_query is None:
            self._int8_query = quantize_query(self.query)
        codes = np.concatenate([d.codes for d in documents])  # uint8: a copy, no upcast
        sims = row_scaled_products(codes, np.concatenate([d.scales for d in documents]), self._int8_query)
        # a positive per-token scale commutes with the max: applied to the maxima, not every row
        return np.maximum.reduceat(sims, starts, axis=0) * self._int8_query.scales[None, :]

    def _centered_maxima(self, documents: Sequence[CenteredCodes], starts: npt.NDArray[np.int64]) -> FloatArray:
        """q·(c + σ⊙step·(levels - m)) = step·(q⊙σ)·levels + q·c - step·m·Σ(q⊙σ): only the
        first term depends on the document token, so the max is taken over integer products.
        With a factor α a token, q·(c + α·ẑ) = α·(q·ẑ) + q·c: the max over the scaled products."""
        products, prepared = self._centered_products(documents)
        if documents[0].factors is None:
            return np.maximum.reduceat(products, starts, axis=0) * prepared.token_scale[None, :] + prepared.offset[None, :]
        sims = np.multiply(products, prepared.token_scale[None, :], dtype=np.float32)
        sims -= prepared.middle[None, :]  # the codes' middle is part of ẑ: scaled with it
        sims *= np.concatenate([d.factors for d in documents if d.factors is not None])[:, None]
        return np.maximum.reduceat(sims, starts, axis=0) + prepared.center[None, :]

    def _residual_maxima(self, documents: Sequence[ResidualCodes], starts: npt.NDArray[np.int64]) -> FloatArray:
        """q·(C[id] + r) = q·C[id] + q·r: the query's products with every centroid once, gathered
        by id, plus the residual's centered-code products; the max is over their float sum."""
        first = documents[0]
        if any(d.centroids is not first.centroids for d in documents):
            raise InputError("candidates' codes come from different codecs: score one index's codes at a time")
        products, prepared = self._centered_products([d.residual for d in documents])
        if self._centroid_products is None or self._centroid_products[0] is not first.centroids:
            self._centroid_products = (first.centroids, float_product(first.centroids, self.query.T))
        sims = np.take(self._centroid_products[1], np.concatenate([d.ids for d in documents]), axis=0)
        sims += np.multiply(products, prepared.token_scale[None, :], dtype=np.float32)
        return np.maximum.reduceat(sims, starts, axis=0) + prepared.offset[None, :]

    def _centered_products(self, documents: Sequence[CenteredCodes]) -> tuple[npt.NDArray[np.int32], _CenteredQuery]:
        """Every candidate token's integer products with the query (weighted by σ), and the
        query's preparation for their codec (what turns them into dot products)."""
        first = documents[0]
        if any(
            d.bits != first.bits
            or d.packed.shape[1] != first.packed.shape[1]
            or d.center is not first.center
            or d.spread is not first.spread
            or d.rotation is not first.rotation
            or (d.factors is None) != (first.factors is None)
            for d in documents
        ):
            raise InputError("candidates' codes come from different codecs: score one index's codes at a time")
        prepared = self._centered
        if prepared is None or not prepared.prepared_for(first):
            prepared = self._centered = _CenteredQuery.prepare(self.query, first)
        # one unpack of every candidate's packed rows (they share a width), not one per candidate
        levels = unpack_levels(np.concatenate([d.packed for d in documents]), first.bits, first.coded_dim)
        return integer_products(levels, prepared.weighted, 0), prepared


def alpha_prune(first_stage: Sequence[float], k: int, alpha: float) -> int:
    """How many leading candidates (in first-stage order) survive α-pruning: those whose score
    is at least (1-α) × the k-th candidate's score.

    >>> alpha_prune([10.0, 9.0, 8.0, 4.0, 3.0], k=2, alpha=0.5)
    3
    """
    if len(first_stage) <= k:
        return len(first_stage)
    threshold = (1.0 - alpha) * first_stage[k - 1]
    kept = k
    while kept < len(first_stage) and first_stage[kept] >= threshold:
        kept += 1
    return kept


def minmax(values: FloatArray, bounds: tuple[float, float] | None = None) -> FloatArray:
    """Scale to [0, 1] over the values given, or over `bounds` (low, high); no span → zeros."""
    low, high = bounds if bounds is not None else ((float(values.min()), float(values.max())) if values.size else (0.0, 0.0))
    span = high - low
    return (values - low) / span if span > 0 else np.zeros_like(values)


def interpolate(first_stage: FloatArray, maxsim: FloatArray, weight: float, first_stage_bounds: tuple[float, float] | None = None) -> FloatArray:
    """(1-w)·minmax(MaxSim) + w·minmax(first stage), over the candidates scored; w=0 is MaxSim.
    `first_stage_bounds` normalizes the first stage over every candidate instead (see rerank).

    >>> interpolate(np.array([3.0, 1.0]), np.array([0.2, 0.4]), 0.5).tolist()
    [0.5, 0.5]
    >>> interpolate(np.array([3.0, 1.0]), np.array([0.2, 0.4]), 0.5, first_stage_bounds=(0.0, 4.0)).tolist()
    [0.375, 0.625]
    """
    if weight <= 0.0 or not len(maxsim):
        return np.asarray(maxsim, dtype=np.float32)
    first = minmax(np.asarray(first_stage, np.float32), first_stage_bounds)
    return (1.0 - weight) * minmax(np.asarray(maxsim, np.float32)) + weight * first


@dataclass
class RerankStats:
    """How much work a rerank did (for benchmarks and tests)."""

    candidates: int = 0
    after_alpha: int = 0
    scored: int = 0


class MaxSimReranker:
    """Scores first-stage candidates by MaxSim and returns the top k, best first."""

    def __init__(self, settings: RerankSettings | None = None) -> None:
        self.settings = settings or RerankSettings()
        self._local = threading.local()  # a service's threads share one reranker: stats are per thread

    @property
    def last_stats(self) -> RerankStats:
        """The work of the last rerank this thread ran."""
        stats: RerankStats = getattr(self._local, "stats", RerankStats())
        return stats

    def rerank(
        self,
        query: FloatArray,
        candidates: Sequence[Hit],
        multivectors: Mapping[str, StoredMultiVector],
        *,
        k: int | None = None,
    ) -> list[Hit]:
        """`candidates` in first-stage order (best first); their ids key `multivectors`. Returns
        every candidate that was scored, best first; α/β pruning protects the top `k` (default
        settings.k), and the candidates it skipped are not returned.

        A candidate with no stored multivector is scored as having no tokens (0).
        """
        k = k or self.settings.k
        query = np.asarray(query, dtype=np.float32)
        if query.ndim != 2 or (query.size and not np.all(np.isfinite(query))):
            raise InputError("query multivector must be a finite 2-d array")
        stats = RerankStats(candidates=len(candidates))
        first = [c.score for c in candidates]
        kept = alpha_prune(first, k, self.settings.alpha) if self.settings.alpha is not None else len(candidates)
        stats.after_alpha = kept
        pool = list(candidates[:kept])
        empty = np.zeros((0, query.shape[1]), dtype=np.float32)
        docs = [multivectors.get(c.id, empty) for c in pool]
        if self.settings.beta is None:
            scores = maxsim_scores(query, docs)
        else:
            scores = self._early_exit(query, docs, k, self.settings.beta)
            pool = pool[: len(scores)]
        stats.scored = len(pool)
        self._local.stats = stats
        # the first stage is normalized over every candidate, scored or not: pruning then drops
        # candidates without moving the scores of the ones it kept
        bounds = (min(first), max(first)) if first else None
        return self._final(pool, scores, len(pool), bounds)

    def rank_scored(self, candidates: Sequence[Hit], maxsim: Mapping[str, float], *, k: int | None = None) -> list[Hit]:
        """The same final ranking from MaxSim scores computed elsewhere (collected once, for tuning).
        Pruning does not apply here: every candidate was scored."""
        pool = list(candidates)
        scores = np.asarray([maxsim.get(c.id, 0.0) for c in pool], dtype=np.float32)
        self._local.stats = RerankStats(candidates=len(pool), after_alpha=len(pool), scored=len(pool))
        return self._final(pool, scores, k or self.settings.k)

    @staticmethod
    def _early_exit(query: FloatArray, docs: list[StoredMultiVector], k: int, beta: int) -> FloatArray:
        """Scan in first-stage order; stop once β candidates in a row failed to enter the top k.
        Each matmul scores exactly the candidates the scan must see before it could stop: k + β
        first, then as many as the misses still needed, so none is scored in vain."""
        heap: list[float] = []
        misses = 0
        scores: list[float] = []
        scorer = _MaxSim(query)
        while len(scores) < len(docs):
            start = len(scores)
            need = k + beta if start == 0 else beta - misses
            for score in scorer(docs[start : start + need]).tolist():
                scores.append(score)
                if len(heap) < k:
                    heapq.heappush(heap, score)
                    misses = 0
                elif score > heap[0]:
                    heapq.heapreplace(heap, score)
                    misses = 0
                else:
                    misses += 1
            if misses >= beta:
                break
        return np.asarray(scores, dtype=np.float32)

    def _final(self, pool: list[Hit], scores: FloatArray, k: int, first_stage_bounds: tuple[float, float] | None = None) -> list[Hit]:
        first = np.asarray([c.score for c in pool], dtype=np.float32)
        final = interpolate(first, scores, self.settings.interpolation, first_stage_bounds)
        order = np.argsort(-final, kind="stable")[:k]
        finals, maxsims = final.tolist(), scores.tolist()
        return [
            pool[i].evolve(score=finals[i], stage_scores={**pool[i].stage_scores, "first_stage": pool[i].score, "maxsim": maxsims[i]}) for i in order.tolist()
        ]
