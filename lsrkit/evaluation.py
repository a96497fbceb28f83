"""Evaluation on BEIR-format folders: metrics from ranx, latency percentiles per stage."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lsrkit.core.errors import ConfigError
from lsrkit.plugin import SearchPipeline

METRICS = ("ndcg@10", "recall@100", "mrr@10")


@dataclass(frozen=True)
class BeirDataset:
    root: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus(self) -> Path:
        return self.root / "corpus.jsonl"


def load_beir(root: str | Path, split: str = "test") -> BeirDataset:
    """corpus.jsonl, queries.jsonl and qrels/<split>.tsv; only judged queries are kept."""
    root = Path(root).expanduser()
    qrels_path = root / "qrels" / f"{split}.tsv"
    for path in (root / "corpus.jsonl", root / "queries.jsonl", qrels_path):
        if not path.is_file():
            raise ConfigError(f"{root} is not a BEIR folder: {path.name} is missing")
    qrels: dict[str, dict[str, int]] = {}
    for line in qrels_path.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].strip().lstrip("-").isdigit():
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            query = json.loads(line)
            if str(query["_id"]) in qrels:
                queries[str(query["_id"])] = query["text"]
    return BeirDataset(root, queries, qrels)


def _ranx_inputs(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]]):  # type: ignore[no-untyped-def]
    from ranx import Qrels, Run

    judged = {q: dict(d) for q, d in qrels.items() if any(v > 0 for v in d.values())}
    filled = {q: dict(run.get(q) or {}) for q in judged}
    for docs in filled.values():
        if not docs:  # ranx refuses empty rankings: a zero-scored non-relevant placeholder scores 0
            docs["__no_hit__"] = 0.0
    return Qrels(judged), Run(filled)


def score_run(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """nDCG@10 (graded), Recall@100, MRR@10 with ranx; queries with no hits count as zero."""
    from ranx import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = evaluate(*_ranx_inputs(run, qrels), list(METRICS), make_comparable=True)
    return {"ndcg10": float(scores["ndcg@10"]), "recall100": float(scores["recall@100"]), "mrr10": float(scores["mrr@10"])}


def per_query_ndcg10(run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """nDCG@10 of each judged query (their mean is score_run's ndcg10)."""
    from ranx import evaluate

    qrels_, run_ = _ranx_inputs(run, qrels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = evaluate(qrels_, run_, "ndcg@10", return_mean=False, make_comparable=True)
    return dict(zip(qrels_.keys(), (float(v) for v in values)))


def bootstrap_interval(
    differences: Sequence[float], *, size: int | None = None, confidence: float = 0.95, resamples: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """Paired bootstrap: the central `confidence` interval of the mean of per-query differences
    over `resamples` resamples of `size` queries (default: as many as given). With the size of
    another split, it is the spread that split's mean would show by sampling alone.

    >>> bootstrap_interval([0.0] * 50)
    (0.0, 0.0)
    >>> low, high = bootstrap_interval([-0.1, 0.0, 0.1] * 100)
    >>> -0.02 < low < 0 < high < 0.02
    True
    """
    values = np.asarray(differences, dtype=np.float64)
    if not values.size:
        return (0.0, 0.0)
    draws = np.random.default_rng(seed).integers(0, values.size, size=(resamples, size or values.size))
    means = values[draws].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    return (float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)))


@dataclass
class PipelineReport:
    name: str
    metrics: dict[str, float]
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        total = self.latency_ms.get("total", {})
        return {**{k: round(v, 4) for k, v in self.metrics.items()}, "p50_ms": round(total.get("p50", 0.0), 2), "p95_ms": round(total.get("p95", 0.0), 2)}


def percentiles(samples: Mapping[str, list[float]]) -> dict[str, dict[str, float]]:
    return {stage: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))} for stage, v in samples.items() if v}


def run_queries(
    pipeline: SearchPipeline, queries: Mapping[str, str], k: int = 100, *, on_query: Callable[[], None] | None = None
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]]]:
    """Search every query; the run (qid → doc → score) and per-stage latency samples."""
    run: dict[str, dict[str, float]] = {}
    samples: dict[str, list[float]] = {}
    for qid, text in queries.items():
        result = pipeline.search(text, k=k)
        run[qid] = {hit.id: hit.score for hit in result.hits}
        for stage, ms in result.timings_ms.items():
            samples.setdefault(stage, []).append(ms)
        if on_query:
            on_query()
    return run, samples


def evaluate_pipeline(name: str, pipeline: SearchPipeline, dataset: BeirDataset, k: int = 100, on_query: Callable[[], None] | None = None) -> PipelineReport:
    for text in list(dataset.queries.values())[:3]:  # warm caches and lazy inits
        pipeline.search(text, k=k)
    run, samples = run_queries(pipeline, dataset.queries, k, on_query=on_query)
    return PipelineReport(name, score_run(run, dataset.qrels), percentiles(samples))


def markdown_table(reports: Iterable[PipelineReport]) -> str:
    lines = ["| pipeline | nDCG@10 | Recall@100 | MRR@10 | p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
    for r in reports:
        d = r.as_dict()
        lines.append(f"| {r.name} | {d['ndcg10']:.4f} | {d['recall100']:.4f} | {d['mrr10']:.4f} | {d['p50_ms']:.1f} | {d['p95_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def plot_quality_latency(reports: Iterable[PipelineReport], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in reports:
        d = r.as_dict()
        ax.scatter(d["p50_ms"], d["ndcg10"])
        ax.annotate(r.name, (d["p50_ms"], d["ndcg10"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("p50 latency per query (ms)")
    ax.set_ylabel("nDCG@10")
    ax.set_title("quality vs latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
