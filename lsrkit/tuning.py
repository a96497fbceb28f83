"""Choosing the quality settings on a *train* split: fusion, κ, rerank interpolation, α/β.

First-stage hits and MaxSim scores are collected once per query; every configuration is then
scored offline from them, so a grid of hundreds of settings costs seconds. Run it on the train
split only (`lsrkit tune --split train --write-defaults`): it writes the chosen settings into
lsrkit's defaults file (core/tuned.json), which every pipeline reads; never tune on test.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lsrkit.core.config import DEFAULT_DATA_DIR, RerankSettings
from lsrkit.core.defaults import tuned as tuned_defaults
from lsrkit.core.types import Hit, MultiVector
from lsrkit.encoders import IdfQueryEncoder, MultiVectorEncoder
from lsrkit.evaluation import BeirDataset, per_query_ndcg10, score_run
from lsrkit.plugin import Backend, MultiVectorCodec, Retrieval, aggregate_passages, fuse, index_codec
from lsrkit.plugin.pipeline import reranked_first
from lsrkit.plugin.rerank import MaxSimReranker, maxsim_scores


@dataclass
class QueryEvidence:
    """What one query needs for offline scoring: both first stages and MaxSim scores (no token
    vectors: 800 queries × 150 candidates of them would not fit in memory)."""

    text: str
    bm25: list[Hit]
    sparse: list[Hit]
    maxsim: dict[str, float]
    query_vectors: np.ndarray


def _maxsim(backend: Backend, index: str, codec: MultiVectorCodec, query: MultiVector, ids: list[str]) -> dict[str, float]:
    stored = {i: codec.decode(data) for i, data in backend.fetch_multivectors(index, ids).items()}
    empty = np.zeros((0, query.dim), np.float32)
    return dict(zip(ids, maxsim_scores(query.vectors, [stored.get(i, empty) for i in ids]).tolist()))


def first_stage_evidence(
    backend: Backend,
    index: str,
    dataset: BeirDataset,
    idf: IdfQueryEncoder,
    multivector: MultiVectorEncoder,
    depth: int | None = None,
    on_query: Callable[[], None] | None = None,
) -> dict[str, QueryEvidence]:
    """Both first stages and the query's token vectors, per query (no MaxSim scores yet), each
    run `depth` deep (default: the hybrid pipeline's tuned depth, what its fusion sees)."""
    depth = depth or tuned_defaults().hybrid_depth
    evidence = {}
    for qid, text in dataset.queries.items():
        runs = backend.retrieve(index, Retrieval(sparse=idf.encode_queries([text])[0], text=text, limit=depth, texts=True))
        evidence[qid] = QueryEvidence(text, runs.bm25, runs.sparse, {}, multivector.encode_queries([text])[0].vectors)
        if on_query:
            on_query()
    return evidence


def collect(
    backend: Backend,
    index: str,
    dataset: BeirDataset,
    idf: IdfQueryEncoder,
    multivector: MultiVectorEncoder,
    depth: int | None = None,
    on_query: Callable[[], None] | None = None,
) -> dict[str, QueryEvidence]:
    """first_stage_evidence with the MaxSim score of every candidate from the index's stored token vectors."""
    evidence = first_stage_evidence(backend, index, dataset, idf, multivector, depth, on_query)
    codec = index_codec(backend, index)
    for ev in evidence.values():
        ids = list(dict.fromkeys([h.id for h in ev.sparse] + [h.id for h in ev.bm25]))
        ev.maxsim = _maxsim(backend, index, codec, MultiVector(ev.query_vectors), ids)
    return evidence


@dataclass(frozen=True)
class Config:
    first_stage: str  # sparse | bm25 | hybrid
    fusion: str = "minmax"
    bm25_weight: float = 0.5
    kappa: int = 0  # 0: no rerank
    interpolation: float = 0.0

    def label(self) -> str:
        parts = [self.first_stage]
        if self.first_stage == "hybrid":
            parts.append(f"{self.fusion}:{self.bm25_weight}")
        if self.kappa:
            parts.append(f"rerank k={self.kappa} w={self.interpolation}")
        return " ".join(parts)


def first_stage(ev: QueryEvidence, config: Config) -> list[Hit]:
    if config.first_stage == "sparse":
        return ev.sparse
    if config.first_stage == "bm25":
        return ev.bm25
    return fuse([ev.bm25, ev.sparse], config.fusion, [config.bm25_weight, 1.0 - config.bm25_weight])  # type: ignore[arg-type]


def apply(ev: QueryEvidence, config: Config, k: int = 100) -> list[Hit]:
    """The top k documents the search pipeline returns with `config`, from the evidence."""
    hits = first_stage(ev, config)
    if config.kappa:
        reranker = MaxSimReranker(RerankSettings(kappa=config.kappa, k=config.kappa, interpolation=config.interpolation))
        hits = reranked_first(reranker.rank_scored(hits[: config.kappa], ev.maxsim), hits[config.kappa :], k)
    return aggregate_passages(hits, limit=k)


def evaluate_config(evidence: dict[str, QueryEvidence], dataset: BeirDataset, config: Config) -> dict[str, float]:
    run = {qid: {h.id: h.score for h in apply(ev, config)} for qid, ev in evidence.items()}
    return score_run(run, dataset.qrels)


def grid(has_bm25: bool) -> list[Config]:
    configs = [Config("sparse")] + ([Config("bm25")] if has_bm25 else [])
    hybrids = [Config("hybrid", "rrf", w) for w in (0.3, 0.5, 0.7)] + [Config("hybrid", "minmax", w) for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)]
    configs += hybrids if has_bm25 else []
    firsts = [Config("sparse")] + (hybrids if has_bm25 else [])
    for base, kappa, weight in itertools.product(firsts, (20, 30, 50, 100), (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)):
        configs.append(Config(base.first_stage, base.fusion, base.bm25_weight, kappa, weight))
    return configs


def tune(evidence: dict[str, QueryEvidence], dataset: BeirDataset, has_bm25: bool, tolerance: float = 0.001) -> dict[str, Any]:
    """Score the grid; per pipeline kind, the best setting and the *chosen* one: the smallest κ
    whose nDCG@10 is within `tolerance` of the best (a rerank of 100 candidates costs twice one of
    50 for gains below the split's noise)."""
    results = [(c, evaluate_config(evidence, dataset, c)) for c in grid(has_bm25)]
    by_kind: dict[str, list[tuple[Config, dict[str, float]]]] = {}
    for config, metrics in results:
        by_kind.setdefault(config.first_stage + ("+rerank" if config.kappa else ""), []).append((config, metrics))
    best, chosen = {}, {}
    for kind, rows in by_kind.items():
        top = max(rows, key=lambda r: r[1]["ndcg10"])
        close = [r for r in rows if r[1]["ndcg10"] >= top[1]["ndcg10"] - tolerance]
        pick = min(close, key=lambda r: (r[0].kappa, -r[1]["ndcg10"]))
        best[kind] = {"config": top[0].__dict__, "label": top[0].label(), **top[1]}
        chosen[kind] = {"config": pick[0].__dict__, "label": pick[0].label(), **pick[1]}
    return {
        "tolerance": tolerance,
        "chosen": chosen,
        "best": best,
        "grid": [{"label": c.label(), **m} for c, m in sorted(results, key=lambda r: -r[1]["ndcg10"])],
    }


def sweep_pruning(
    backend: Backend,
    index: str,
    evidence: dict[str, QueryEvidence],
    dataset: BeirDataset,
    base: Config,
    alphas: Sequence[float],
    betas: Sequence[int],
    k: int = 10,
    repeats: int = 2,
    folds: int = 1,
) -> list[dict[str, Any]]:
    """Full rerank vs α/β-pruned rerank of the same candidates (client side, from the stored
    token vectors): the rerank stage's time (best of `repeats`) and the metrics of the ranking the
    pipeline would return (skipped candidates kept below the reranked ones), per setting.
    With `folds` > 1, each row also has `fold_deltas`: the nDCG@10 change on each of that many
    disjoint parts of the judged queries (every `folds`-th query id in sorted order). Every row
    has `query_deltas`: each judged query's nDCG@10 change (for bootstrap intervals)."""
    grid_settings: list[tuple[float | None, int | None]] = [(None, None)] + [(a, None) for a in alphas] + [(None, b) for b in betas]
    grid_settings += [(a, b) for a in alphas for b in betas]
    rerankers = [MaxSimReranker(RerankSettings(kappa=base.kappa, k=k, alpha=a, beta=b, interpolation=base.interpolation)) for a, b in grid_settings]
    runs: list[dict[str, dict[str, float]]] = [{} for _ in grid_settings]
    codec = index_codec(backend, index)
    elapsed = [0.0] * len(grid_settings)
    scored = [0] * len(grid_settings)
    for position, (qid, ev) in enumerate(evidence.items()):
        hits = first_stage(ev, base)
        pool = hits[: base.kappa]
        stored = {i: codec.decode(data) for i, data in backend.fetch_multivectors(index, [h.id for h in pool]).items()}  # one query's at a time
        # untimed first pass: the first rerank over freshly fetched vectors ran ~25 % slower than
        # the same rerank after it (measured), which flattered every setting timed after the full
        # one; the starting setting also rotates from query to query
        rerankers[0].rerank(ev.query_vectors, pool, stored, k=k)
        for n in [(position + i) % len(rerankers) for i in range(len(rerankers))]:
            reranker = rerankers[n]
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                out = reranker.rerank(ev.query_vectors, pool, stored, k=k)
                best = min(best, time.perf_counter() - start)
            elapsed[n] += best
            scored[n] += reranker.last_stats.scored
            # ranked as the pipeline returns them: the candidates α/β skipped, then the first
            # stage past κ, keep their order below the reranked ones
            scored_ids = {h.id for h in out}
            ranking = reranked_first(out, [h for h in pool if h.id not in scored_ids] + hits[base.kappa :], 100)
            runs[n][qid] = {h.id: h.score for h in aggregate_passages(ranking, limit=100)}
    rows: list[dict[str, Any]] = []
    per_query = [per_query_ndcg10(run, dataset.qrels) for run in runs]
    for n, (alpha, beta) in enumerate(grid_settings):
        rows.append(
            {
                "alpha": alpha,
                "beta": beta,
                "rerank_ms": 1000 * elapsed[n] / len(evidence),
                "scored": scored[n] / len(evidence),
                **score_run(runs[n], dataset.qrels),
            }
        )
    for n, row in enumerate(rows):
        row["speedup"] = rows[0]["rerank_ms"] / row["rerank_ms"] if row["rerank_ms"] else 0.0
        row["ndcg10_delta"] = row["ndcg10"] - rows[0]["ndcg10"]
        row["query_deltas"] = {q: per_query[n][q] - per_query[0][q] for q in per_query[0]}
    if folds > 1:
        qids = sorted(rows[0]["query_deltas"])
        parts = [qids[f::folds] for f in range(folds)]
        for row in rows:
            row["fold_deltas"] = [float(np.mean([row["query_deltas"][q] for q in part])) if part else 0.0 for part in parts]
    return rows


def defaults_section(chosen: dict[str, Any]) -> dict[str, Any]:
    """The defaults file's "pipelines" section from tune()'s chosen settings."""
    hybrid, sparse_rerank, hybrid_rerank = chosen["hybrid"]["config"], chosen["sparse+rerank"]["config"], chosen["hybrid+rerank"]["config"]
    return {
        "hybrid": {"fusion": hybrid["fusion"], "bm25_weight": hybrid["bm25_weight"]},
        "sparse+rerank": {"kappa": sparse_rerank["kappa"], "interpolation": sparse_rerank["interpolation"]},
        "hybrid+rerank": {
            "fusion": hybrid_rerank["fusion"],
            "bm25_weight": hybrid_rerank["bm25_weight"],
            "kappa": hybrid_rerank["kappa"],
            "interpolation": hybrid_rerank["interpolation"],
        },
    }


def run_tune(dataset: Path, *, split: str = "train", data_dir: Path = DEFAULT_DATA_DIR, write_defaults: bool = False) -> dict[str, Any]:
    """`lsrkit tune`: collect the evidence on the dataset's Qdrant Edge index, score the grid and,
    with `write_defaults` (a train split only), make the chosen settings lsrkit's defaults."""
    from lsrkit.core.defaults import write_tuned_section
    from lsrkit.core.errors import ConfigError
    from lsrkit.eval_command import default_index
    from lsrkit.evaluation import load_beir
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index
    from lsrkit.jobs import ensure_ingested

    if write_defaults and "train" not in split:
        raise ConfigError(f"defaults are chosen on a train split, not on {split!r}")
    data = load_beir(dataset, split)
    with Index(default_index(dataset), backend=BackendOptions("edge", data_dir=data_dir)) as target:
        ensure_ingested(target, data.corpus)
        evidence = collect(target.backend, target.name, data, target.idf_encoder(), target.query_multivector_encoder())
        result = {"dataset": str(dataset), "split": split, "queries": len(data.queries), **tune(evidence, data, has_bm25=True)}
    if write_defaults:
        write_tuned_section("pipelines", defaults_section(result["chosen"]), source={"dataset": dataset.name, "split": split, "queries": len(data.queries)})
    return result
