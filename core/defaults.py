"""The measured defaults: one file (tuned.json beside this module) holds every setting lsrkit
chose by measurement on a train split, and every way of building a pipeline reads it.

`lsrkit tune --write-defaults`, `lsrkit bench rerank --write-defaults` and
`lsrkit bench multivector --write-defaults` write their own section of it; nothing else does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from lsrkit.core.errors import ConfigError
from lsrkit.core.files import write_json_atomic

TUNED_FILE = Path(__file__).with_name("tuned.json")  # the shipped defaults
TUNED_ENV = "LSRKIT_TUNED"  # a defaults file of one's own (tuned on one's own train split)


def tuned_file() -> Path:
    """The defaults file in use: $LSRKIT_TUNED, else the one shipped with lsrkit."""
    return Path(os.environ.get(TUNED_ENV) or TUNED_FILE)


@dataclass(frozen=True)
class StageDefaults:
    """One first stage's tuned numbers: its fusion (hybrid) and, reranked, κ and interpolation."""

    fusion: str
    bm25_weight: float
    kappa: int = 0  # 0: not reranked
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


def _stage(data: Mapping[str, Any], *, reranked: bool, fused: bool) -> StageDefaults:
    """A section's numbers; a key the stage needs and the file lacks is an error, never a guess."""
    return StageDefaults(
        fusion=str(data["fusion"]) if fused else "minmax",
        bm25_weight=float(data["bm25_weight"]) if fused else 0.5,
        kappa=int(data["kappa"]) if reranked else 0,
        interpolation=float(data["interpolation"]) if reranked else 0.0,
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the defaults file {path} is unreadable ({exc}): restore it (reinstall lsrkit) or point {TUNED_ENV} at a good one") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"the defaults file {path} is not a JSON object")
    return data


def load_tuned(path: Path | None = None) -> TunedDefaults:
    path = path or tuned_file()
    data = _read(path)
    try:
        pipelines, pruning = data["pipelines"], data["pruning"]
        return TunedDefaults(
            hybrid=_stage(pipelines["hybrid"], reranked=False, fused=True),
            sparse_rerank=_stage(pipelines["sparse+rerank"], reranked=True, fused=False),
            hybrid_rerank=_stage(pipelines["hybrid+rerank"], reranked=True, fused=True),
            hybrid_depth=int(data["hybrid_depth"]),
            alpha=pruning["alpha"],
            beta=pruning["beta"],
            prune_depth=int(pruning["depth"]),
            multivector_representation=str(data["multivector_representation"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"the defaults file {path} is incomplete (missing or bad {exc}): restore it (reinstall lsrkit) or point {TUNED_ENV} at a good one"
        ) from exc


@lru_cache(maxsize=1)
def tuned() -> TunedDefaults:
    """The installed defaults (read once per process)."""
    return load_tuned()


def write_tuned_section(section: str, value: Any, *, source: Mapping[str, Any], path: Path | None = None) -> Path:
    """Replace one section of the defaults file (the others are kept) and record what it was
    measured on under "sources"; returns the file written. The shipped file sits in the
    installed package: to keep defaults of one's own, point $LSRKIT_TUNED at a copy first."""
    path = path or tuned_file()
    data = _read(path)
    if section not in data:
        raise ConfigError(f"the defaults file {path} has no section {section!r}")
    data[section] = value
    data.setdefault("sources", {})[section] = dict(source)
    try:
        write_json_atomic(path, data, indent=2)
    except OSError as exc:
        raise ConfigError(f"cannot write the defaults file {path} ({exc.strerror}): point {TUNED_ENV} at a copy you may write") from exc
    tuned.cache_clear()
    return path
