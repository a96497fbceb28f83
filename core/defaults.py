"""The measured defaults: one file (tuned.json beside this module) holds every setting lsrkit
chose by measurement on a train split, and every way of building a pipeline reads it.

`lsrkit tune --write-defaults`, `lsrkit bench rerank --write-defaults` and
`lsrkit bench multivector --write-defaults` write their own section of it; nothing else does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lsrkit.core.errors import ConfigError
from lsrkit.core.files import write_json_atomic

TUNED_FILE = Path(__file__).with_name("tuned.json")


@dataclass(frozen=True)
class StageDefaults:
    """One first stage's tuned numbers: its fusion (hybrid) and, reranked, κ and interpolation."""

    fusion: str = "minmax"
    bm25_weight: float = 0.5
    kappa: int = 100
    interpolation: float = 0.0


@dataclass(frozen=True)
class TunedDefaults:
    hybrid: StageDefaults
    sparse_rerank: StageDefaults
    hybrid_rerank: StageDefaults
    hybrid_depth: int
    alpha: float | None
    beta: int | None
    prune_depth: int
    multivector_representation: str

    def stage(self, first_stage: str, *, reranked: bool) -> StageDefaults:
        """The tuned numbers of a first stage ("sparse", "bm25", "hybrid"), reranked or not
        (BM25 has no reranked pipeline of its own: a rerank over it uses the sparse one's)."""
        if first_stage == "hybrid":
            return self.hybrid_rerank if reranked else self.hybrid
        return self.sparse_rerank


def _stage(data: Mapping[str, Any]) -> StageDefaults:
    return StageDefaults(
        fusion=str(data.get("fusion", "minmax")),
        bm25_weight=float(data.get("bm25_weight", 0.5)),
        kappa=int(data.get("kappa", 100)),
        interpolation=float(data.get("interpolation", 0.0)),
    )


def load_tuned(path: Path = TUNED_FILE) -> TunedDefaults:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pipelines, pruning = data["pipelines"], data["pruning"]
        return TunedDefaults(
            hybrid=_stage(pipelines["hybrid"]),
            sparse_rerank=_stage(pipelines["sparse+rerank"]),
            hybrid_rerank=_stage(pipelines["hybrid+rerank"]),
            hybrid_depth=int(data["hybrid_depth"]),
            alpha=pruning["alpha"],
            beta=pruning["beta"],
            prune_depth=int(pruning["depth"]),
            multivector_representation=str(data["multivector_representation"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the defaults file {path} is unreadable or incomplete ({exc!r}): reinstall lsrkit or run `lsrkit tune --write-defaults`") from exc


@lru_cache(maxsize=1)
def tuned() -> TunedDefaults:
    """The installed defaults (read once per process)."""
    return load_tuned()


def write_tuned_section(section: str, value: Any, *, source: Mapping[str, Any] | None = None, path: Path = TUNED_FILE) -> None:
    """Replace one section of the defaults file (the others are kept); `source` records what
    the numbers were measured on."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if section not in data:
        raise ConfigError(f"the defaults file has no section {section!r}")
    data[section] = value
    if source is not None:
        data.setdefault("sources", {})[section] = dict(source)
    write_json_atomic(path, data)
    tuned.cache_clear()
