"""`lsrkit eval`: ingest or reuse an index of a BEIR dataset, then score every pipeline."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lsrkit.core.errors import ConfigError, LsrError
from lsrkit.evaluation import BeirDataset, PipelineReport, evaluate_pipeline, load_beir, markdown_table, plot_quality_latency
from lsrkit.factory import (
    PIPELINES,
    BackendOptions,
    ModelChoice,
    QualitySettings,
)
from lsrkit.index import Index
from lsrkit.jobs import ensure_ingested


def default_index(dataset: Path) -> str:
    return re.sub(r"[^a-z0-9_\-]", "-", dataset.resolve().name.lower())[:100] or "dataset"


def run_eval(
    dataset_dir: Path,
    backend_options: BackendOptions,
    *,
    index: str | None = None,
    models: ModelChoice | None = None,
    split: str = "test",
    pipelines: list[str] | None = None,
    report: Path | None = None,
    reingest: bool = False,
    quality: QualitySettings | None = None,
    progress: bool | None = None,
    representation: str | None = None,
    shards: int | None = None,
    replicas: int | None = None,
) -> dict[str, Any]:
    """`models`: the encoders of a new index (None: the index's own, else the bundled ones)."""
    dataset = load_beir(dataset_dir, split)
    named_by_user = index is not None
    index = index or default_index(dataset_dir)
    names = pipelines or list(PIPELINES)
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise ConfigError(f"unknown pipelines {unknown}; choose from {', '.join(PIPELINES)}")
    with Index(index, backend=backend_options, models=models, representation=representation, quality=quality, shards=shards, replicas=replicas) as target:
        ingest_info: dict[str, Any] = {"reused": True}
        summary = ensure_ingested(target, dataset.corpus, reingest=reingest, progress=progress, named_by_user=named_by_user)
        if summary is not None:
            ingest_info = {
                "reused": False,
                "docs_per_second": round(summary.docs_per_second, 2),
                "seconds": round(summary.seconds, 1),
                "documents": summary.documents,
            }
        return _score(target, dataset, dataset_dir, split, names, ingest_info, report, progress)


def _score(
    target: Index,
    dataset: BeirDataset,
    dataset_dir: Path,
    split: str,
    names: list[str],
    ingest_info: dict[str, Any],
    report: Path | None,
    progress: bool | None,
) -> dict[str, Any]:
    backend, index, quality = target.backend, target.name, target.quality
    reports: list[PipelineReport] = []
    skipped: dict[str, str] = {}
    bar = tqdm(
        total=len(names) * len(dataset.queries), desc="queries", unit="q", disable=None if progress is None else not progress
    )  # None: quiet off a terminal
    for name in names:
        try:
            pipeline = target.pipeline(name)
        except LsrError as exc:
            skipped[name] = str(exc)
            bar.update(len(dataset.queries))
            continue
        reports.append(evaluate_pipeline(name, pipeline, dataset, on_query=lambda: bar.update(1)))
    bar.close()
    points = backend.count(index)
    size = backend.disk_bytes(index)
    result: dict[str, Any] = {
        "dataset": str(dataset_dir),
        "split": split,
        "queries": len(dataset.queries),
        "backend": backend.name,
        "index": index,
        "index_points": points,
        "index_bytes": size,
        "index_bytes_per_passage": round(size / points, 1) if points and size is not None else None,
        "multivector_representation": target.representation,
        "models": target.manifest,
        "ingest": ingest_info,
        "settings": quality.as_dict(),
        "pipelines": {r.name: r.as_dict() for r in reports},
        "latency_ms": {r.name: r.latency_ms for r in reports},
        "skipped": skipped,
        "markdown": markdown_table(reports),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.with_suffix(".md").write_text(f"# lsrkit eval: {dataset_dir} ({split}, {backend.name})\n\n" + result["markdown"])
        plot_quality_latency(reports, report.with_suffix(".png"))
    return result
