"""CodeCache: a bounded in-process copy of token-vector codes an engine returned, checked by digest.

An engine that keeps the codes on another machine (OpenSearch) ships ~3.4 KB a candidate per
query; a rerank of 100 candidates then spends more time moving codes than scoring them. The
engine also stores a short content digest per passage, cheap to return with every hit: a cached
copy is used only when its digest equals the engine's, so a passage written again (or an index
dropped and rebuilt) is read afresh and never scored from stale codes. Nothing is persisted: a
new process starts empty and fills the cache from the reads it makes anyway.
"""

from __future__ import annotations

import hashlib
import threading

from cachetools import LRUCache

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
ENTRY_OVERHEAD = 360  # Python's objects for the key, the digest and the entry, roughly, per passage
# a rerank read in digests-only mode costs a second round trip as soon as one candidate misses:
# codes are read with the hits until most such reads find every candidate held
INLINE_BELOW = 0.5
COVERAGE_MEMORY = 0.05  # weight of the newest read in the running share of fully held reads (~20 reads)


def code_digest(codes: bytes) -> str:
    """The digest the engine stores beside a passage's codes (16 hex characters)."""
    return hashlib.blake2b(codes, digest_size=8).hexdigest()


class CodeCache:
    """Codes by (index, passage id), least recently used evicted past `max_bytes`; thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: LRUCache[tuple[str, str], tuple[str, bytes]] = LRUCache(
            maxsize=max(1, max_bytes), getsizeof=lambda entry: len(entry[1]) + ENTRY_OVERHEAD
        )
        self._coverage: dict[str, float] = {}
        self._lock = threading.Lock()
        self.looked_up = 0  # passages asked for since the start, and how many were held
        self.found = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    @property
    def bytes_held(self) -> int:
        return int(self._entries.currsize)

    def lookup(self, index: str, digests: dict[str, str], *, rerank_read: bool = False) -> dict[str, bytes]:
        """The codes held for these passages under the engine's digest. `rerank_read`: every one of
        these codes is wanted (a rerank's candidates); whether all were held steers reads_inline."""
        found = {}
        with self._lock:
            for passage, digest in digests.items():
                entry = self._entries.get((index, passage))
                if entry is not None and entry[0] == digest:
                    found[passage] = entry[1]
            self.looked_up += len(digests)
            self.found += len(found)
            if rerank_read and digests:
                before = self._coverage.get(index, 0.0)
                self._coverage[index] = before + COVERAGE_MEMORY * (float(len(found) == len(digests)) - before)
        return found

    def store(self, index: str, codes: dict[str, bytes], digests: dict[str, str]) -> None:
        """Keep the codes whose bytes match the digest the engine returned with them (none for an
        index that stores no digests: such codes could never be served)."""
        if not self.enabled:
            return
        kept = {
            p: (digests[p], data)
            for p, data in codes.items()
            if p in digests and len(data) + ENTRY_OVERHEAD <= self.max_bytes and code_digest(data) == digests[p]
        }
        with self._lock:
            for passage, entry in kept.items():
                self._entries[(index, passage)] = entry

    def reads_inline(self, index: str) -> bool:
        """Whether a rerank's first stage should read the codes with its hits."""
        return not self.enabled or self._coverage.get(index, 0.0) < INLINE_BELOW

    def forget(self, index: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == index]:
                del self._entries[key]
            self._coverage.pop(index, None)
