"""Frozen, validated settings shared across the layers."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lsrkit.core.defaults import tuned as tuned_defaults
from lsrkit.core.errors import ConfigError

Quantization = Literal["none", "int8", "int8-per-channel", "int8-attention"]
QUANTIZATIONS = ("none", "int8", "int8-per-channel", "int8-attention")

DEFAULT_DATA_DIR = Path(".lsrkit")  # local state: Qdrant Edge / local-mode data, job state
OPENSEARCH_URL_ENV = "LSRKIT_OPENSEARCH_URL"


def opensearch_url(url: str | None = None) -> str:
    """The OpenSearch to use: `url`, else $LSRKIT_OPENSEARCH_URL, else one on this machine."""
    return url or os.environ.get(OPENSEARCH_URL_ENV) or "http://127.0.0.1:9200"


# seconds after which the write lease of a job that died may be taken over (ingest/lease.py)
DEFAULT_LEASE_SECONDS = 60.0

_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,127}$")


def validate_index_name(name: str) -> str:
    """Index / collection names: lowercase letters, digits, `_` and `-`, at most 128 chars.

    >>> validate_index_name("scifact-v1")
    'scifact-v1'
    """
    if not isinstance(name, str) or not _INDEX_NAME.match(name):
        raise ConfigError(f"invalid index name {name!r}: use 1-128 lowercase letters, digits, '_' or '-', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class OnnxOptions:
    """How an encoder's ONNX graph is produced and run.

    int8-per-channel: every weight MatMul (SPLADE: keeps 97 % of top-10 terms).
    int8-attention: only the attention projections (query/key/value/output), per channel; the
    feed-forward layers and activation×activation products stay fp32. Plain dynamic int8 breaks
    MiniLM token vectors (cosine down to 0.75); this recipe keeps them at cosine ≥ 0.99.
    """

    quantize: Quantization = "int8-per-channel"
    intra_op_threads: int = 0  # 0: onnxruntime picks (all cores)
    # onnxruntime's worker threads busy-wait after each run by default: beside an engine on the
    # same few cores that steals the time the search needs
    allow_spinning: bool = False

    def __post_init__(self) -> None:
        if self.quantize not in QUANTIZATIONS:
            raise ConfigError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {self.quantize!r}")
        if self.intra_op_threads < 0:
            raise ConfigError("intra_op_threads must be >= 0")


@dataclass(frozen=True)
class BatchPolicy:
    """Batching of ingest work: engine bulks by count and bytes, and how many batches may wait
    between the encoder and the writer (the encoders batch their own runs: see their batch_size)."""

    write_batch: int = 64
    write_bytes: int = 8 * 1024 * 1024
    queue_depth: int = 4

    def __post_init__(self) -> None:
        for name in ("write_batch", "write_bytes", "queue_depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"BatchPolicy.{name} must be >= 1, got {getattr(self, name)}")


_NAME = re.compile(r"^(?:pool(?P<pool>[1-9])-)?(?P<code>int8|(?P<kind>res|pq|rot)?[124]bit)(?:-d(?P<dims>[1-9][0-9]*))?$")
REPRESENTATIONS = (
    "int8",
    "4bit",
    "2bit",
    "1bit",
    "pool2-int8",
    "pool2-4bit",
    "pool2-2bit",
    "pool2-1bit",
    "pool3-2bit",
    "pool3-1bit",
    "rot1bit",
    "pool2-rot1bit",
    "pool3-rot1bit",
    "pool2-rot1bit-d360",
    "res2bit",
    "res1bit",
    "pool2-res2bit",
    "pool2-res1bit",
    "pool3-res2bit",
    "pool3-res1bit",
    "pq1bit",
    "pool2-pq2bit",
    "pool2-pq1bit",
    "pool3-pq1bit",
)
# a residual token's centroid id: always one byte, so a token's width follows from the name alone
# (no codec needed to split the bytes); the byte, not the calibration sample, caps the centroids at 256
RESIDUAL_ID_BYTES = 1
RESIDUAL_MAX_CENTROIDS = 2 ** (8 * RESIDUAL_ID_BYTES)
ROTATED_FACTOR_BYTES = 2  # a rotated token's correction factor: one float16


def default_representation() -> str:
    """How a new index stores token vectors unless told: the one `lsrkit bench multivector`
    chose on a train split (the defaults file; read when asked, never at import)."""
    return tuned_defaults().multivector_representation


@dataclass(frozen=True)
class Representation:
    """A token pooling factor and a code width; `residual`: each token is stored as the id of its
    nearest corpus centroid plus a b-bit code of what is left (PLAID / ColBERTv2); `product`
    (product quantization): each run of 8/b dimensions of a token is stored as the one-byte id of
    its nearest codeword in that run's own codebook, so b bits a dimension as the scalar codes;
    `rotated`: the centered codes of the tokens turned by one random orthogonal matrix of the index,
    which spreads a token's variance evenly over the dimensions each code's bits stand for, and a
    float16 factor a token that makes its code's dot products unbiased (RaBitQ's estimator);
    `dims` (rotated codes only, the name's `-dK`): at most the first K dimensions of the turned
    token are coded, K/dim of its variance on average (a random rotation leaves none of them
    special), so that a pooling and a code width fit a byte budget they would overshoot by a few
    bytes; a token of K dimensions or fewer is coded whole (one default serves every model).

    >>> r = Representation.parse("pool2-1bit")
    >>> (r.pool, r.bits, r.name, r.bytes_per_token(384))
    (2, 1, 'pool2-1bit', 48)
    >>> r = Representation.parse("pool3-res2bit")
    >>> (r.pool, r.bits, r.residual, r.name, r.bytes_per_token(384))
    (3, 2, True, 'pool3-res2bit', 97)
    >>> r = Representation.parse("pool2-pq1bit")
    >>> (r.product, r.subspace_dims, r.name, r.bytes_per_token(384))
    (True, 8, 'pool2-pq1bit', 48)
    >>> r = Representation.parse("pool3-rot1bit")
    >>> (r.rotated, r.bits, r.name, r.bytes_per_token(384))
    (True, 1, 'pool3-rot1bit', 50)
    >>> Representation.parse("pool2-rot1bit-d360").bytes_per_token(384)
    47
    """

    bits: int = 8
    pool: int = 1
    residual: bool = False
    product: bool = False
    rotated: bool = False
    dims: int | None = None

    def __post_init__(self) -> None:
        kinds = self.residual + self.product + self.rotated
        if self.bits not in (8, 4, 2, 1) or not 1 <= self.pool <= 9 or (kinds and self.bits == 8) or kinds > 1:
            kind = "residual " if self.residual else ""
            kind += "product " if self.product else ""
            kind += "rotated " if self.rotated else ""
            raise ConfigError(f"no multivector representation with {kind}{self.bits} bits and pooling {self.pool}")
        if self.dims is not None and not self.rotated:
            raise ConfigError(f"-d{self.dims}: only rotated codes keep fewer dimensions (rotNbit-dK)")
        if self.dims is not None and (self.dims < 1 or (self.dims * self.bits) % 8):
            raise ConfigError(f"-d{self.dims}: {self.dims} dimensions of {self.bits} bits do not fill whole bytes")

    @classmethod
    def parse(cls, name: str) -> Representation:
        match = _NAME.match(name) if isinstance(name, str) else None
        if match is None:
            raise ConfigError(
                f"unknown multivector representation {name!r}; choose from {', '.join(REPRESENTATIONS)} (poolN- with N in 1-9; rotNbit-dK: at most K dimensions coded)"
            )
        code = match["code"]
        kind = match["kind"]
        return cls(
            bits=8 if code == "int8" else int(code[-4]),
            pool=int(match["pool"] or 1),
            residual=kind == "res",
            product=kind == "pq",
            rotated=kind == "rot",
            dims=int(match["dims"]) if match["dims"] else None,
        )

    @property
    def name(self) -> str:
        kind = "res" if self.residual else "pq" if self.product else "rot" if self.rotated else ""
        code = "int8" if self.bits == 8 else f"{kind}{self.bits}bit"
        code += f"-d{self.dims}" if self.dims is not None else ""
        return code if self.pool == 1 else f"pool{self.pool}-{code}"

    def coded_dims(self, dim: int) -> int:
        """The dimensions a token's code stands for: at most `dims` when set, else all of them."""
        return dim if self.dims is None else min(dim, self.dims)

    @property
    def subspace_dims(self) -> int:
        """Product codes: the dimensions one byte codes (8 at 1 bit a dimension)."""
        return 8 // self.bits if self.product else 1

    def bytes_per_token(self, dim: int) -> int:
        """Bytes of one *stored* token (pooling stores fewer of them)."""
        if self.bits == 8:
            return dim + 4
        return self.coded_dims(dim) * self.bits // 8 + (RESIDUAL_ID_BYTES if self.residual else ROTATED_FACTOR_BYTES if self.rotated else 0)


@dataclass(frozen=True)
class IndexSpec:
    """The layout of one index / collection.

    `sparse_idf_modifier` asks the engine to apply IDF at query time; leave it off when the
    query weights already carry IDF (the inference-free encoder), so IDF is never applied twice.
    """

    name: str
    multivector_dim: int | None = 384
    multivector_representation: str = field(default_factory=default_representation)
    sparse_idf_modifier: bool = False
    with_bm25: bool = True
    text_language: str = "english"  # BM25's stemming and stopwords (the engine's analyzer); "none": neither
    bm25_avg_len: float | None = None  # Qdrant: mean passage length in BM25 terms, measured by ingest before the first write
    shards: int = 1  # server engines (OpenSearch, a Qdrant server); Qdrant Edge has one
    replicas: int = 0

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], what: str) -> IndexSpec:
        """The spec an engine keeps with an index; one this release cannot read names the fix."""
        try:
            return cls(**stored)
        except TypeError as exc:
            raise ConfigError(f"{what} was made by another lsrkit release ({exc}): drop it and ingest again") from exc

    def __post_init__(self) -> None:
        validate_index_name(self.name)
        if self.multivector_dim is not None and self.multivector_dim < 1:
            raise ConfigError("multivector_dim must be positive or None")
        # stored under its canonical name: "pool1-1bit" and "1bit" are one layout
        object.__setattr__(self, "multivector_representation", Representation.parse(self.multivector_representation).name)
        if not re.fullmatch(r"[a-z]+", self.text_language):
            raise ConfigError(f"text_language must be a lower-case language name (english, french, …) or none, got {self.text_language!r}")
        if self.bm25_avg_len is not None and self.bm25_avg_len <= 0:
            raise ConfigError(f"bm25_avg_len must be positive, got {self.bm25_avg_len}")
        if self.shards < 1 or self.replicas < 0:
            raise ConfigError(f"an index needs shards >= 1 and replicas >= 0, got {self.shards} and {self.replicas}")


@dataclass(frozen=True)
class RerankSettings:
    """The rerank stage: κ candidates in, k hits out, optional pruning and score fusion.

    alpha: α-pruning; drop candidates whose first-stage score < (1-α)·(score of the k-th). None: off.
    beta: β early exit; stop after β consecutive candidates fail to enter the top-k. None: off.
    interpolation: weight of the normalized first-stage score in the final score (0: MaxSim only).

    The field defaults are the mechanism's (pure MaxSim, no pruning, the tuned κ); the tuned
    settings of a pipeline are `RerankSettings.tuned(first_stage)`, what a SearchPipeline built
    without settings uses.
    """

    kappa: int = field(default_factory=lambda: tuned_defaults().sparse_rerank.kappa)
    k: int = 10
    alpha: float | None = None
    beta: int | None = None
    interpolation: float = 0.0
    max_kappa: int = 1000

    @classmethod
    def tuned(cls, first_stage: str = "sparse", *, pruned: bool = False) -> RerankSettings:
        """The tuned rerank of a first stage (core/tuned.json); `pruned` adds the tuned α/β,
        protecting the top the pruning was chosen for."""
        defaults = tuned_defaults()
        stage = defaults.stage(first_stage, reranked=True)
        return cls.of_stage(stage.kappa, stage.interpolation, prune_depth=defaults.prune_depth, pruning=(defaults.alpha, defaults.beta) if pruned else None)

    @classmethod
    def of_stage(cls, kappa: int, interpolation: float, *, prune_depth: int, pruning: tuple[float | None, int | None] | None = None) -> RerankSettings:
        """A pipeline's rerank: κ candidates, interpolated; `pruning` (α, β) protects the top
        `prune_depth` (what it was chosen for), which is also the default k of a search."""
        alpha, beta = pruning or (None, None)
        return cls(kappa=kappa, k=min(prune_depth, kappa), interpolation=interpolation, alpha=alpha, beta=beta)

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.kappa:
            raise ConfigError(f"need 1 <= k <= kappa, got k={self.k}, kappa={self.kappa}")
        if self.kappa > self.max_kappa:
            raise ConfigError(f"kappa={self.kappa} exceeds the limit {self.max_kappa}")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.beta is not None and self.beta < 1:
            raise ConfigError(f"beta must be >= 1, got {self.beta}")
        if not 0.0 <= self.interpolation <= 1.0:
            raise ConfigError(f"interpolation must be in [0, 1], got {self.interpolation}")
