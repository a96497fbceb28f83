"""A progress bar with documents/s and ETA, quiet when the output is not a terminal."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    def __init__(self, total: int | None, *, initial: int = 0, enabled: bool | None = None) -> None:
        show = sys.stderr.isatty() if enabled is None else enabled
        self._bar = tqdm(total=total, initial=initial, unit="doc", desc="ingest", disable=not show, dynamic_ncols=True, smoothing=0.1)

    def advance(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()
