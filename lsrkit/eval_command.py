"""`lsrkit eval`: ingest or reuse an index of a BEIR dataset, then score every pipeline."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lsrkit.core.config import DEFAULT_REPRESENTATION
from lsrkit.core.errors import ConfigError, LsrError
from lsrkit.encoders import SparseQueryEncoder
from lsrkit.evaluation import PipelineReport, evaluate_pipeline, load_beir, markdown_table, plot_quality_latency
from lsrkit.factory import (
    PIPELINES,
    BackendOptions,
    ModelChoice,
    QualitySettings,
    build_pipeline,
    document_encoders,
    idf_query_encoder,
    open_backend,
    pipeline_settings,
)
from lsrkit.jobs import ensure_ingested


def default_index(dataset: Path) -> str:
    return re.sub(r"[^a-z0-9_\-]", "-", dataset.resolve().name.lower())[:100] or "dataset"


def run_eval(
    dataset_dir: Path,
    backend_options: BackendOptions,
    *,
    index: str | None = None,
    state_root: Path = Path(".lsrkit/state"),
    split: str = "test",
    pipelines: list[str] | None = None,
    report: Path | None = None,
    reingest: bool = False,
    quality: QualitySettings = QualitySettings(),
    progress: bool | None = None,
    representation: str = DEFAULT_REPRESENTATION,
) -> dict[str, Any]:
    dataset = load_beir(dataset_dir, split)
    index = index or default_index(dataset_dir)
    names = pipelines or list(PIPELINES)
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise ConfigError(f"unknown pipelines {unknown}; choose from {', '.join(PIPELINES)}")
    backend = open_backend(backend_options)
    models = ModelChoice()
    sparse, multivector = document_encoders(models)
    state_dir = state_root / index
    try:
        ingest_info: dict[str, Any] = {"reused": True}
        summary = ensure_ingested(
            backend, index, dataset.corpus, state_dir, (sparse, multivector), reingest=reingest, progress=progress, representation=representation
        )
        if summary is not None:
            ingest_info = {
                "reused": False,
                "docs_per_second": round(summary.docs_per_second, 2),
                "seconds": round(summary.seconds, 1),
                "documents": summary.documents,
            }
        idf = idf_query_encoder(backend, index, models.sparse)
        model_encoder = SparseQueryEncoder(models.sparse) if "sparse-model" in names else None
        reports: list[PipelineReport] = []
        skipped: dict[str, str] = {}
        bar = tqdm(
            total=len(names) * len(dataset.queries), desc="queries", unit="q", disable=None if progress is None else not progress
        )  # None: quiet off a terminal
        for name in names:
            try:
                pipeline = build_pipeline(name, backend, index, idf_encoder=idf, multivector=multivector, model_encoder=model_encoder, quality=quality)
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
            "multivector_representation": representation,
            "ingest": ingest_info,
            "settings": pipeline_settings(quality),
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
    finally:
        backend.close()
