"""The dead-letter file: one JSON line per rejected record (position, id, reason, a raw excerpt)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class DeadLetter:
    """Append-only JSONL, flushed per entry so a crash loses nothing already reported."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")
        self.count = 0

    def add(self, *, position: str, reason: str, record_id: str | None = None, stage: str = "validate", raw: str | None = None) -> None:
        entry: dict[str, Any] = {"position": position, "id": record_id, "stage": stage, "reason": reason}
        if raw:
            entry["raw"] = raw[:200]
        # a lone surrogate in the raw excerpt is written as its JSON escape, not refused by the file
        self._handle.write(json.dumps(entry, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
        self._handle.flush()
        self.count += 1

    def size(self) -> int:
        self._handle.flush()
        return self.path.stat().st_size

    def close(self) -> None:
        self._handle.close()

    @staticmethod
    def truncate(path: Path, size: int) -> None:
        """Drop entries written after the last checkpoint (they will be written again on resume)."""
        if Path(path).exists():
            with Path(path).open("r+b") as handle:
                handle.truncate(size)


def read_dead_letters(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
