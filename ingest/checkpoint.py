"""Checkpoints of an ingest job, written only after the engine acknowledged a batch.

The checkpoint names the next source ordinal to read; the sizes of the side files (ids seen,
dead letters) at that moment let a resumed job cut them back to exactly that point, so a resumed
job neither skips nor duplicates.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from lsrkit.core.errors import CheckpointError
from lsrkit.core.files import write_json_atomic

# each runner's checkpoint file in an index's state folder
JOB_CHECKPOINTS = {"local": "checkpoint.json", "ray": "ray-checkpoint.json"}


class JobState:
    """Saving and loading of a job's checkpoint (a dataclass whose first field is `job`)."""

    job: str

    def save(self, path: Path) -> None:
        # atomic and on disk: a reader sees the old or the new checkpoint, never half
        write_json_atomic(path, asdict(self), durable=True)  # type: ignore[call-overload]

    @classmethod
    def load(cls: type[S], path: Path, job: str) -> S | None:
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            checkpoint = cls(**data)  # type: ignore[call-arg]
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} is unreadable: {exc}") from exc
        if checkpoint.job != job:
            raise CheckpointError(f"checkpoint {path} belongs to another job ({checkpoint.job!r}); use another --state-dir or drop --resume")
        return checkpoint


S = TypeVar("S", bound=JobState)


@dataclass
class Checkpoint(JobState):
    job: str  # source path + index + model names: a checkpoint of another job is refused
    next_ordinal: int = 0
    written: int = 0
    rejected: int = 0
    passages: int = 0
    ids_bytes: int = 0
    dead_letter_bytes: int = 0
    done: bool = False
