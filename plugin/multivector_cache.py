"""A local, memory-mapped copy of an index's multivectors, used only while it matches the engine.

Why: an engine that cannot score MaxSim itself (OpenSearch without a late-interaction plugin)
must ship every candidate's token vectors to the reranker — measured on SciFact, 50 candidates
× ~265 tokens × 384 int8 is ~5 MB of base64 JSON per query, 70–100 ms, four times a BM25 query.
Read from a local memory map the same candidates cost ~1 ms. The engine stays the source of
truth: each entry carries the digest of the encoded multivector the engine holds, and a lookup
asks for that digest, so an entry that another writer has since replaced is a miss, not a wrong
score.

Layout of a cache directory: a data file of append-only records (float32 row scales, then the
uint8 codes, padded to 4 bytes) and `index.sqlite` mapping id → (digest, offset, rows, dim), with
the data file's generation: `vectors.bin` is generation 0, `vectors.<n>.bin` generation n.
A record is written and fsynced before the row that points to it is committed, so a crash
leaves at worst unreferenced bytes at the end of the file. Writers in several processes
serialise on a lock file.

Replaced records are reclaimed by compaction: the live records are copied to the next
generation's file, fsynced, and only then do the rows and the generation change, in one
transaction; the old file is deleted afterwards. A reader takes rows and generation from one
statement, so it never reads new offsets in an old file (a map it holds stays valid after the
delete). A write compacts on its own once the dead bytes outweigh the live ones (and 64 MiB), so
re-ingesting an index over and over keeps its file within about 2.5 times its live size.
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

_INDEX = "index.sqlite"
_LOCK = "write.lock"
_SQL_VARIABLES = 500  # ids per SELECT … IN (…)


def _padded(size: int) -> int:
    return (size + 3) & ~3


def _data_name(generation: int) -> str:
    return "vectors.bin" if generation == 0 else f"vectors.{generation}.bin"


_RECORD_BYTES = "((4 * rows + rows * dim + 3) / 4) * 4"  # _padded() in SQL (integer division)


class MultiVectorCache:
    """id → QuantizedRows, looked up by (id, digest). Thread-safe; several processes may share it."""

    def __init__(self, directory: Path, *, compact_after_bytes: int = 64 << 20) -> None:
        """`compact_after_bytes`: a write compacts once the dead bytes exceed both this and the
        live bytes."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.compact_after_bytes = compact_after_bytes
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.directory / _INDEX, check_same_thread=False, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (id TEXT PRIMARY KEY, digest TEXT NOT NULL, "
                "offset INTEGER NOT NULL, rows INTEGER NOT NULL, dim INTEGER NOT NULL) WITHOUT ROWID"
            )
            # generation: which data file the offsets point into; next_look: the file size at
            # which a write next sums the live bytes to decide on compaction
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
            self._db.commit()
        except sqlite3.Error as exc:
            raise BackendError(f"multivector cache at {self.directory}: {exc}") from exc
        self._map: npt.NDArray[np.uint8] | None = None
        self._map_generation = -1
        (self.directory / _data_name(self._generation())).touch(exist_ok=True)

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
            generation = self._generation()
            with open(self.directory / _data_name(generation), "ab") as data:
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
            self._compact_if_mostly_dead(offset)

    def compact(self) -> int:
        """Copy the live records to a new data file and drop the old one; returns the bytes freed."""
        with self._exclusive():
            return self._compact()

    def _compact_if_mostly_dead(self, file_bytes: int) -> None:
        if file_bytes < self._meta("next_look"):
            return  # summing the live bytes reads every row: look again only after the file grew
        live = self._live_bytes()
        if file_bytes - live > max(live, self.compact_after_bytes):
            self._compact()
        else:
            self._set_meta("next_look", file_bytes + max(live // 2, self.compact_after_bytes))

    def _compact(self) -> int:
        """Under the exclusive lock."""
        generation = self._generation()
        old_path, new_path = self.directory / _data_name(generation), self.directory / _data_name(generation + 1)
        try:
            records = self._db.execute("SELECT id, offset, rows, dim FROM vectors ORDER BY offset").fetchall()
            moved, offset = [], 0
            with open(old_path, "rb") as source, open(new_path, "wb") as target:
                for record_id, old_offset, count, dim in records:
                    size = _padded(4 * count + count * dim)
                    source.seek(old_offset)
                    target.write(source.read(size))
                    moved.append((offset, record_id))
                    offset += size
                target.flush()
                os.fsync(target.fileno())  # the new file first, then the rows that point into it
            self._db.executemany("UPDATE vectors SET offset = ? WHERE id = ?", moved)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (generation + 1,))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('next_look', ?)", (offset + max(offset // 2, self.compact_after_bytes),))
            self._db.commit()
        except (sqlite3.Error, OSError) as exc:
            self._db.rollback()
            new_path.unlink(missing_ok=True)
            raise BackendError(f"multivector cache at {self.directory}: compaction failed: {exc}") from exc
        freed = old_path.stat().st_size - offset
        old_path.unlink()  # readers that mapped it keep their map; new reads use the new file
        return freed

    def _sql(self, statement: str, parameters: tuple[object, ...] = (), *, commit: bool = False) -> list[tuple[object, ...]]:
        try:
            rows = self._db.execute(statement, parameters).fetchall()
            if commit:
                self._db.commit()
            return rows
        except sqlite3.Error as exc:
            raise BackendError(f"multivector cache at {self.directory}: {exc}") from exc

    def _live_bytes(self) -> int:
        return int(self._sql(f"SELECT COALESCE(SUM({_RECORD_BYTES}), 0) FROM vectors")[0][0])  # type: ignore[call-overload]

    def _meta(self, key: str) -> int:
        rows = self._sql("SELECT value FROM meta WHERE key = ?", (key,))
        return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]

    def _set_meta(self, key: str, value: int) -> None:
        self._sql("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value), commit=True)

    def _generation(self) -> int:
        return self._meta("generation")

    # -- reads ---------------------------------------------------------------------------------
    def _mapped(self, generation: int, end: int) -> npt.NDArray[np.uint8]:
        """The generation's data file mapped at least up to byte `end` (remapped when it has grown
        or been compacted), as a plain ndarray over the map: slicing an np.memmap runs Python
        hooks on every slice (0.5 ms for a 50-candidate rerank, profiled); the view keeps the map
        open through its base."""
        if self._map is None or self._map_generation != generation or len(self._map) < end:
            self._map = np.memmap(self.directory / _data_name(generation), dtype=np.uint8, mode="r").view(np.ndarray)
            self._map_generation = generation
        return self._map

    def get(self, wanted: Mapping[str, str]) -> dict[str, QuantizedRows]:
        """The cached entries of the ids in `wanted` whose digest equals the one given; views into
        the memory map, no copy."""
        found: dict[str, QuantizedRows] = {}
        ids = list(wanted)
        with self._lock:
            for start in range(0, len(ids), _SQL_VARIABLES):
                chunk = ids[start : start + _SQL_VARIABLES]
                for attempt in range(3):
                    try:
                        found.update(self._get_chunk(chunk, wanted))
                        break
                    except FileNotFoundError:  # compacted between our read and the map: read again
                        if attempt == 2:
                            raise
        return found

    def _get_chunk(self, chunk: list[str], wanted: Mapping[str, str]) -> dict[str, QuantizedRows]:
        placeholders = ",".join("?" * len(chunk))
        # rows and generation from one statement: one snapshot, so offsets and file agree
        query = f"SELECT id, digest, offset, rows, dim, (SELECT value FROM meta WHERE key = 'generation') FROM vectors WHERE id IN ({placeholders})"
        try:
            rows = self._db.execute(query, chunk).fetchall()
        except sqlite3.Error as exc:
            raise BackendError(f"multivector cache at {self.directory}: {exc}") from exc
        found: dict[str, QuantizedRows] = {}
        for record_id, digest, offset, count, dim, generation in rows:
            if digest != wanted[record_id]:
                continue
            end = offset + 4 * count + count * dim
            data = self._mapped(int(generation or 0), end)
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
