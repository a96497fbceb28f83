"""Helpers shared by the benchmarks: passages from a BEIR corpus, timing."""

from __future__ import annotations

import itertools
import json
import os
import platform
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
