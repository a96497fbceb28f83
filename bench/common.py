"""Helpers shared by the benchmarks: passages from a BEIR corpus, timing."""

from __future__ import annotations

import itertools
import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def passages(dataset: Path, n: int) -> list[str]:
    """The first n documents of a BEIR corpus as 'title text' strings (the packaged subset when
    the dataset folder is absent)."""
    corpus = Path(dataset) / "corpus.jsonl"
    if not corpus.is_file():
        from lsrkit.quickstart import dataset_dir

        corpus = dataset_dir() / "corpus.jsonl"
    with corpus.open(encoding="utf-8") as handle:
        docs = [json.loads(line) for line in itertools.islice(handle, n)]
    return [f"{d.get('title', '')} {d['text']}".strip() for d in docs]


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}


def time_pipelines(
    pipelines: dict[str, Any], queries: list[str], *, rounds: int = 1, k: int = 10
) -> tuple[dict[str, list[float]], dict[str, dict[str, list[float]]]]:
    """Each pipeline's wall ms per query, and its per-stage ms: a warm-up pass of every pipeline
    over every query, then `rounds` timed passes with the pipelines interleaved query by query
    (drift hits all of them alike)."""
    for pipeline in pipelines.values():
        for text in queries:
            pipeline.search(text, k=k)
    samples: dict[str, list[float]] = {name: [] for name in pipelines}
    stages: dict[str, dict[str, list[float]]] = {name: {} for name in pipelines}
    for _ in range(rounds):
        for text in queries:
            for name, pipeline in pipelines.items():
                start = time.perf_counter()
                result = pipeline.search(text, k=k)
                samples[name].append((time.perf_counter() - start) * 1000)
                for stage, ms in result.timings_ms.items():
                    stages[name].setdefault(stage, []).append(ms)
    return samples, stages
