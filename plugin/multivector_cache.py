"""A local, memory-mapped copy of an index's multivectors, used only while it matches the engine.

Why: an engine that cannot score MaxSim itself (OpenSearch without a late-interaction plugin)
must ship every candidate's token vectors to the reranker — measured on SciFact, 50 candidates
× ~265 tokens × 384 int8 is ~5 MB of base64 JSON per query, 70–100 ms, four times a BM25 query.
Read from a local memory map the same candidates cost ~1 ms. The engine stays the source of
truth: each entry carries the digest of the encoded multivector the engine holds, and a lookup
asks for that digest, so an entry that another writer has since replaced is a miss, not a wrong
score.

Layout of a cache directory: `vectors.bin`, append-only records (float32 row scales, then the
uint8 codes, padded to 4 bytes), and `index.sqlite` mapping id → (digest, offset, rows, dim).
A record is written and fsynced before the row that points to it is committed, so a crash
leaves at worst unreferenced bytes at the end of the file. Replaced records are not reclaimed.
Writers in several processes serialise on a lock file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lsrkit.core.errors import BackendError
from lsrkit.plugin.codec import QuantizedRows

_DATA = "vectors.bin"
_INDEX = "index.sqlite"
_LOCK = "write.lock"
_SQL_VARIABLES = 500  # ids per SELECT … IN (…)


def _padded(size: int) -> int:
    return (size + 3) & ~3


class MultiVectorCache:
    """id → QuantizedRows, looked up by (id, digest). Thread-safe; several processes may share it."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / _DATA).touch(exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.directory / _INDEX, check_same_thread=False, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (id TEXT PRIMARY KEY, digest TEXT NOT NULL, "
                "offset INTEGER NOT NULL, rows INTEGER NOT NULL, dim INTEGER NOT NULL) WITHOUT ROWID"
            )
            self._db.commit()
        except sqlite3.Error as exc:
            raise BackendError(f"multivector cache at {self.directory}: {exc}") from exc
        self._map: npt.NDArray[np.uint8] | None = None

    # -- writes --------------------------------------------------------------------------------
    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock, open(self.directory / _LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def put(self, items: Mapping[str, tuple[str, QuantizedRows]]) -> None:
        """Store (digest, rows) per id; a later put of the same id replaces the entry."""
        if not items:
            return
        with self._exclusive():
            with open(self.directory / _DATA, "ab") as data:
                offset = data.seek(0, os.SEEK_END)
                rows = []
                for record_id, (digest, vectors) in items.items():
                    scales = np.ascontiguousarray(vectors.scales, dtype="<f4").tobytes()
                    codes = np.ascontiguousarray(vectors.codes, dtype=np.uint8).tobytes()
                    size = len(scales) + len(codes)
                    data.write(scales + codes + b"\0" * (_padded(size) - size))
                    rows.append((record_id, digest, offset, len(vectors), vectors.dim))
                    offset += _padded(size)
                data.flush()
                os.fsync(data.fileno())  # the bytes first, then the rows that point at them
            try:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
                self._db.commit()
            except sqlite3.Error as exc:
                raise BackendError(f"multivector cache at {self.directory}: {exc}") from exc

    # -- reads ---------------------------------------------------------------------------------
    def _mapped(self, end: int) -> npt.NDArray[np.uint8]:
        """The data file mapped at least up to byte `end` (remapped when it has grown), as a plain
        ndarray over the map: slicing an np.memmap runs Python hooks on every slice (0.5 ms for a
        50-candidate rerank, profiled); the view keeps the map open through its base."""
        if self._map is None or len(self._map) < end:
            self._map = np.memmap(self.directory / _DATA, dtype=np.uint8, mode="r").view(np.ndarray)
        return self._map

    def get(self, wanted: Mapping[str, str]) -> dict[str, QuantizedRows]:
        """The cached entries of the ids in `wanted` whose digest equals the one given; views into
        the memory map, no copy."""
        found: dict[str, QuantizedRows] = {}
        ids = list(wanted)
        with self._lock:
            for start in range(0, len(ids), _SQL_VARIABLES):
                chunk = ids[start : start + _SQL_VARIABLES]
                placeholders = ",".join("?" * len(chunk))
                try:
                    rows = self._db.execute(f"SELECT id, digest, offset, rows, dim FROM vectors WHERE id IN ({placeholders})", chunk).fetchall()
                except sqlite3.Error as exc:
                    raise BackendError(f"multivector cache at {self.directory}: {exc}") from exc
                for record_id, digest, offset, count, dim in rows:
                    if digest != wanted[record_id]:
                        continue
                    end = offset + 4 * count + count * dim
                    data = self._mapped(end)
                    scales = data[offset : offset + 4 * count].view("<f4")
                    codes = data[offset + 4 * count : end].reshape(count, dim)
                    found[record_id] = QuantizedRows(codes, scales)
        return found

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())

    def close(self) -> None:
        with self._lock:
            self._map = None
            self._db.close()

    @staticmethod
    def remove(directory: Path) -> None:
        """Delete a cache directory (when its index is dropped)."""
        shutil.rmtree(directory, ignore_errors=True)
