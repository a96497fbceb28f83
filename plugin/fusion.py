"""Client-side fusion of ranked lists (BM25 + sparse): RRF and normalized weighted sum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from lsrkit.core.types import Hit

FusionMethod = Literal["rrf", "minmax"]


def rrf(runs: Sequence[Sequence[Hit]], *, k: int = 60, weights: Sequence[float] | None = None) -> list[Hit]:
    """Reciprocal rank fusion: Σ w / (k + rank).

    >>> a, b = [Hit("x", 3.0), Hit("y", 2.0)], [Hit("y", 9.0)]
    >>> [h.id for h in rrf([a, b])]
    ['y', 'x']
    """
    weights = weights or [1.0] * len(runs)
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for run, weight in zip(runs, weights):
        for rank, hit in enumerate(run, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + weight / (k + rank)
            first.setdefault(hit.id, hit)
    return _ranked(scores, first)


def minmax_sum(runs: Sequence[Sequence[Hit]], *, weights: Sequence[float] | None = None) -> list[Hit]:
    """Weighted sum of min-max normalized scores (a missing hit counts 0 in that run).

    >>> a, b = [Hit("x", 3.0), Hit("y", 1.0)], [Hit("y", 9.0), Hit("z", 1.0)]
    >>> [(h.id, round(h.score, 2)) for h in minmax_sum([a, b], weights=[0.5, 0.5])]
    [('x', 0.5), ('y', 0.5), ('z', 0.0)]
    """
    weights = weights or [1.0 / len(runs)] * len(runs)
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for run, weight in zip(runs, weights):
        if not run:
            continue
        values = [h.score for h in run]
        low, span = min(values), max(values) - min(values)
        for hit in run:
            norm = (hit.score - low) / span if span > 0 else 1.0
            scores[hit.id] = scores.get(hit.id, 0.0) + weight * norm
            first.setdefault(hit.id, hit)
    return _ranked(scores, first)


def fuse(runs: Sequence[Sequence[Hit]], method: FusionMethod, weights: Sequence[float] | None = None) -> list[Hit]:
    return rrf(runs, weights=weights) if method == "rrf" else minmax_sum(runs, weights=weights)


def _ranked(scores: dict[str, float], first: dict[str, Hit]) -> list[Hit]:
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [first[i].evolve(score=scores[i], stage_scores={**first[i].stage_scores, "fused": scores[i]}) for i in order]
