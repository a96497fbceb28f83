"""Shared value types: sparse vectors, multivectors, documents and hits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from lsrkit.core.errors import InputError

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int32]


def passage_text(title: str, text: str) -> str:
    """What is encoded, counted and BM25-indexed for a passage: its title, then its text (BEIR
    convention)."""
    return f"{title} {text}".strip() if title else text


@dataclass(frozen=True, eq=False)
class SparseVector:
    """A sparse vector over a vocabulary: sorted unique int32 ids, positive float32 weights.

    >>> v = SparseVector.from_dict({7: 0.5, 3: 1.25})
    >>> v.ids.tolist(), v.weights.tolist()
    ([3, 7], [1.25, 0.5])
    >>> v.dot(SparseVector.from_dict({7: 2.0}))
    1.0
    """

    ids: IdArray
    weights: FloatArray

    def __post_init__(self) -> None:
        ids = np.ascontiguousarray(self.ids, dtype=np.int32)
        weights = np.ascontiguousarray(self.weights, dtype=np.float32)
        if ids.ndim != 1 or ids.shape != weights.shape:
            raise InputError(f"sparse vector needs 1-d ids and weights of one length, got {ids.shape} and {weights.shape}")
        if weights.size and not np.all(np.isfinite(weights)):
            raise InputError("sparse vector weights must be finite (NaN or inf found)")
        if ids.size and np.any(ids < 0):
            raise InputError("sparse vector ids must be non-negative")
        if ids.size > 1 and np.any(np.diff(ids) <= 0):
            order = np.argsort(ids, kind="stable")
            ids, weights = ids[order], weights[order]
            if np.any(np.diff(ids) == 0):
                raise InputError("sparse vector ids must be unique")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "weights", weights)

    @classmethod
    def from_dict(cls, mapping: Mapping[int, float]) -> SparseVector:
        ids = np.fromiter(mapping.keys(), dtype=np.int32, count=len(mapping))
        weights = np.fromiter(mapping.values(), dtype=np.float32, count=len(mapping))
        return cls(ids, weights)

    @classmethod
    def empty(cls) -> SparseVector:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return int(self.ids.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseVector):
            return NotImplemented
        return np.array_equal(self.ids, other.ids) and np.array_equal(self.weights, other.weights)

    def to_dict(self) -> dict[int, float]:
        return dict(zip(self.ids.tolist(), self.weights.tolist()))

    def to_tokens(self, vocab: Sequence[str]) -> dict[str, float]:
        """The token-string view (what OpenSearch `rank_features` and `idf.json` use)."""
        return {vocab[i]: w for i, w in zip(self.ids.tolist(), self.weights.tolist())}

    def dot(self, other: SparseVector) -> float:
        common, left, right = np.intersect1d(self.ids, other.ids, assume_unique=True, return_indices=True)
        if common.size == 0:
            return 0.0
        return float(np.dot(self.weights[left].astype(np.float64), other.weights[right].astype(np.float64)))

    def top_k(self, k: int) -> SparseVector:
        """The k heaviest entries (all when k >= len)."""
        if k >= len(self):
            return self
        keep = np.sort(np.argpartition(-self.weights, k - 1)[:k])
        return SparseVector(self.ids[keep], self.weights[keep])


@dataclass(frozen=True, eq=False)
class MultiVector:
    """Token vectors of one text: a (tokens, dim) float32 matrix with L2-normalized rows."""

    vectors: FloatArray

    def __post_init__(self) -> None:
        array = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if array.ndim != 2:
            raise InputError(f"a multivector is a 2-d (tokens, dim) array, got shape {array.shape}")
        if array.size and not np.all(np.isfinite(array)):
            raise InputError("multivector contains NaN or inf")
        object.__setattr__(self, "vectors", array)

    @property
    def n_tokens(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return self.n_tokens


@dataclass(frozen=True)
class Document:
    """One record to index: id and text are required, title and metadata are optional."""

    id: str
    text: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InputError(f"document id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.text, str):
            raise InputError(f"document {self.id!r}: text must be a string, got {type(self.text).__name__}")

    @property
    def full_text(self) -> str:
        """Title and text as the encoders see them (BEIR convention: title first)."""
        return passage_text(self.title, self.text)


@dataclass(frozen=True)
class Hit:
    """One search result. `stage_scores` keeps each stage's score (first_stage, maxsim, fused).
    A first stage may read hits without title and text; the backend's `hydrate` reads those."""

    id: str
    score: float
    title: str = ""
    text: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    stage_scores: Mapping[str, float] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> Hit:
        """A copy with some fields changed: dataclasses.replace without re-running __init__ over
        every field (the query path copies hundreds of hits per query).

        >>> Hit("a", 1.0, title="t").evolve(score=2.0)
        Hit(id='a', score=2.0, title='t', text='', metadata={}, stage_scores={})
        """
        unknown = changes.keys() - self.__dict__.keys()
        if unknown:
            raise TypeError(f"Hit has no field(s) {sorted(unknown)}")
        copy = object.__new__(Hit)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        return copy


def unencodable_at(value: str) -> int | None:
    """Where a string holds what UTF-8 cannot carry (a lone surrogate, or an undecodable byte read
    as one): its character offset, else None. Tokenizers and engines refuse such strings.

    >>> unencodable_at("ok"), unencodable_at("a\\ud800b")
    (None, 1)
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None
