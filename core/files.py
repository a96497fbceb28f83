"""Writing a JSON file so that a reader sees the old or the new content, never half of it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, value: Any, *, durable: bool = False) -> None:
    """Write `value` as JSON to `path` through a temporary file renamed over it. `durable`
    also flushes it to disk before the rename (a checkpoint a crash must not roll back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(value, handle, ensure_ascii=False)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)
