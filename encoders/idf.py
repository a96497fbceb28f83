"""IDF tables for inference-free queries: build from document frequencies, load, save.

The file format is OpenSearch's `idf.json`: a JSON object token string → weight. Tokens missing
from the file get the table's default weight (OpenSearch uses 1.0 for them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lsrkit.core.errors import ConfigError
from lsrkit.core.files import write_json_atomic


class IdfTable:
    """A dense float32 array indexed by token id, with the vocabulary that names the ids."""

    def __init__(self, weights: npt.NDArray[np.float32], vocab: Sequence[str]) -> None:
        if weights.ndim != 1 or weights.shape[0] != len(vocab):
            raise ConfigError(f"IDF table has {weights.shape} weights for a vocabulary of {len(vocab)}")
        if not np.all(np.isfinite(weights)):
            raise ConfigError("IDF table contains NaN or inf")
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.vocab = list(vocab)

    @classmethod
    def load(cls, path: Path, vocab: Sequence[str], default: float = 1.0) -> IdfTable:
        """Read an `idf.json` (token → weight); unknown tokens in the file are ignored."""
        try:
            mapping = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read IDF table {path}: {exc}") from exc
        if not isinstance(mapping, dict):
            raise ConfigError(f"IDF table {path} is not a JSON object of token → weight")
        index = {token: i for i, token in enumerate(vocab)}
        weights = np.full(len(vocab), default, dtype=np.float32)
        for token, weight in mapping.items():
            if token in index:
                weights[index[token]] = float(weight)
        return cls(weights, vocab)

    def save(self, path: Path) -> None:
        """Write `idf.json` atomically (tokens with an empty name are skipped)."""
        write_json_atomic(Path(path), {tok: round(float(w), 6) for tok, w in zip(self.vocab, self.weights.tolist()) if tok})


class DocFreqCounter:
    """Counts, per token id, how many documents contain it; turns the counts into BM25 IDF.

    >>> c = DocFreqCounter(vocab_size=4)
    >>> c.add([[1, 2, 2], [2]])
    >>> c.n_docs, c.doc_freq.tolist()
    (2, [0, 1, 2, 0])
    """

    def __init__(self, vocab_size: int) -> None:
        self.doc_freq = np.zeros(vocab_size, dtype=np.int64)
        self.n_docs = 0

    def add(self, token_ids: Iterable[Sequence[int]]) -> None:
        for ids in token_ids:
            unique = np.unique(np.asarray(ids, dtype=np.int64))
            self.doc_freq[unique] += 1
            self.n_docs += 1

    def remove(self, token_ids: Iterable[Sequence[int]]) -> None:
        """Take back documents counted before (an update or a delete)."""
        for ids in token_ids:
            unique = np.unique(np.asarray(ids, dtype=np.int64))
            self.doc_freq[unique] -= 1
            self.n_docs -= 1

    def merge(self, other: DocFreqCounter) -> None:
        self.doc_freq += other.doc_freq
        self.n_docs += other.n_docs

    def to_table(self, vocab: Sequence[str]) -> IdfTable:
        """BM25's IDF, log(1 + (N - df + 0.5) / (df + 0.5)): positive for every df."""
        n = float(max(self.n_docs, 1))
        df = self.doc_freq.astype(np.float64)
        weights = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        return IdfTable(weights, vocab)

    def state(self) -> dict[str, object]:
        """A JSON-able snapshot (for checkpoints): only non-zero counts."""
        nz = np.flatnonzero(self.doc_freq)
        return {"n_docs": self.n_docs, "ids": nz.tolist(), "counts": self.doc_freq[nz].tolist()}

    @classmethod
    def from_state(cls, state: dict[str, object], vocab_size: int) -> DocFreqCounter:
        counter = cls(vocab_size)
        counter.n_docs = int(state["n_docs"])  # type: ignore[call-overload]
        counter.doc_freq[np.asarray(state["ids"], dtype=np.int64)] = np.asarray(state["counts"], dtype=np.int64)
        return counter


def bm25_idf(n_docs: int, doc_freq: int) -> float:
    """The same formula for one term (for tests and docs).

    >>> round(bm25_idf(10, 1), 4)
    1.9924
    """
    return math.log1p((n_docs - doc_freq + 0.5) / (doc_freq + 0.5))
