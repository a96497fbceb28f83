"""Compact token vectors: how a passage's multivector is stored once, and read back for scoring.

A representation is an optional token pooling (similar tokens of a passage merged, ×2 or ×3
fewer) followed by one of four codes:
- `int8`: per-token symmetric int8 with one float32 scale per token;
- `4bit`, `2bit`, `1bit`: per-dimension scalar codes after centering each dimension on the
  corpus mean and dividing by its spread (both measured on the first batch ingested and stored
  with the index), with the uniform step that suits a Gaussian;
- `res4bit`, `res2bit`, `res1bit` (PLAID / ColBERTv2 residuals): a one-byte id of the token's
  nearest centroid (k-means on the same first batch) and the per-dimension scalar code of the
  residual, token minus centroid, which spreads far less than the token itself;
- `pq4bit`, `pq2bit`, `pq1bit` (product quantization): each run of 8/b dimensions of a token is
  the one-byte id of its nearest codeword in that run's codebook (up to 256 codewords, k-means on
  the same first batch), so the same b bits a dimension as the scalar codes, but a codeword follows
  how the dimensions of a run vary together;
- `rot4bit`, `rot2bit`, `rot1bit` (after RaBitQ): the centered codes of the tokens turned by one
  random orthogonal matrix R (from a fixed seed, stored with the index), each token with a
  float16 factor α = ‖z‖² / ẑ·z (z: the turned token minus the center, ẑ: its code decoded), so
  that the decoded α·ẑ projects onto z as z itself does (q·α·ẑ is RaBitQ's unbiased estimate of
  q·z, where q·ẑ alone shrinks by how far ẑ points from z). q·d = (qR)·(dR):
  the query is turned once and scored against the codes as they are. Turned, a token's variance
  is spread evenly over the dimensions, so each dimension's few bits code an equal share of it;
  principal axes would do the opposite (on tokens of low effective rank they leave most bits
  coding noise). `rotNbit-dK` codes at most the first K of the turned dimensions (R is dim × K,
  its columns orthonormal): q·d ≈ (qR)·(dR), what the other dim - K dimensions hold left out.
Documents stay compact; queries stay float (asymmetric scoring, see rerank.maxsim_scores).
A stored multivector is opaque bytes to the engines: only this module reads or writes them.
"""

from __future__ import annotations

import base64
import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from lsrkit.core.config import REPRESENTATIONS, RESIDUAL_MAX_CENTROIDS, ROTATED_FACTOR_BYTES, Representation, default_representation
from lsrkit.core.errors import ConfigError, InputError

FloatArray = npt.NDArray[np.float32]
INT8_ZERO_POINT = 128
__all__ = [
    "REPRESENTATIONS",
    "default_representation",
    "CenteredCodes",
    "MultiVectorCodec",
    "ProductCodes",
    "QuantizedRows",
    "Representation",
    "ResidualCodes",
    "centroid_count",
    "pool_tokens",
    "random_rotation",
    "quantize_rows",
]
# the uniform quantizer step (in standard deviations) with the least squared error for a Gaussian
_GAUSSIAN_STEP = {1: 1.5958, 2: 0.9957, 4: 0.3352}


@dataclass(frozen=True, slots=True)
class QuantizedRows:
    """int8 codes: per-row symmetric int8 shifted to uint8, one float32 scale per row, so that
    row i ≈ (codes[i] - 128) × scales[i]."""

    codes: npt.NDArray[np.uint8]
    scales: FloatArray

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def dim(self) -> int:
        return int(self.codes.shape[1])

    def dequantize(self) -> FloatArray:
        out = self.codes.astype(np.float32)
        out -= float(INT8_ZERO_POINT)
        out *= self.scales[:, None]
        return out


@dataclass(frozen=True, slots=True)
class CenteredCodes:
    """b-bit per-dimension codes: token j ≈ center + spread ⊙ step·(levels[j] - (2^b - 1)/2).
    `packed` holds 8/b codes a byte; `levels()` unpacks them (uint8, 0…2^b - 1). With `rotation`
    (dim × K, orthonormal columns: K = dim unless the representation keeps fewer) the codes are of
    the turned token t·R, each token's deviation from the center scaled by its `factors` entry: the
    token is center + factor·(the code's deviation), times Rᵀ."""

    packed: npt.NDArray[np.uint8]
    bits: int
    center: FloatArray
    spread: FloatArray
    rotation: FloatArray | None = None
    factors: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.packed.shape[0])

    @property
    def dim(self) -> int:
        """The token's dimensions (what a query must have)."""
        return int(self.center.shape[0] if self.rotation is None else self.rotation.shape[0])

    @property
    def coded_dim(self) -> int:
        """The dimensions the codes stand for (fewer than `dim` for `rotNbit-dK`)."""
        return int(self.center.shape[0])

    @property
    def step(self) -> float:
        return _GAUSSIAN_STEP[self.bits]

    def levels(self) -> npt.NDArray[np.uint8]:
        return unpack_levels(self.packed, self.bits, self.coded_dim)

    def dequantize(self) -> FloatArray:
        middle = (2**self.bits - 1) / 2.0
        deviation = (self.levels().astype(np.float32) - middle) * self.step * self.spread
        if self.factors is not None:
            deviation *= self.factors[:, None]
        turned = (self.center + deviation).astype(np.float32)
        return turned if self.rotation is None else (turned @ self.rotation.T).astype(np.float32)


@dataclass(frozen=True, slots=True)
class ResidualCodes:
    """Residual codes: token j ≈ centroids[ids[j]] + residual_j, with the residuals stored as
    CenteredCodes (their own center and spread). Every token of an index shares `centroids`."""

    ids: npt.NDArray[np.uint8]
    residual: CenteredCodes
    centroids: FloatArray

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def dim(self) -> int:
        return self.residual.dim

    @property
    def bits(self) -> int:
        return self.residual.bits

    def dequantize(self) -> FloatArray:
        return (self.centroids[self.ids] + self.residual.dequantize()).astype(np.float32)


@dataclass(frozen=True, slots=True)
class ProductCodes:
    """Product codes: token j ≈ the concatenation over runs s of codebooks[s, codes[j, s]]
    (codebooks: runs × codewords × dimensions of a run, shared by every token of an index)."""

    codes: npt.NDArray[np.uint8]
    codebooks: FloatArray

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def dim(self) -> int:
        return int(self.codebooks.shape[0] * self.codebooks.shape[2])

    def dequantize(self) -> FloatArray:
        runs = np.arange(self.codebooks.shape[0])
        return self.codebooks[runs[None, :], self.codes].reshape(len(self), self.dim)


StoredMultiVector = npt.NDArray[np.floating] | QuantizedRows | CenteredCodes | ResidualCodes | ProductCodes
CODES = (QuantizedRows, CenteredCodes, ResidualCodes, ProductCodes)  # the decoded kinds that are not plain float rows


def as_floats(stored: StoredMultiVector) -> FloatArray:
    """Stored token vectors as float rows (codes dequantized)."""
    return stored.dequantize() if isinstance(stored, CODES) else np.asarray(stored, dtype=np.float32)


def quantize_rows(vectors: npt.NDArray[np.floating]) -> QuantizedRows:
    """(tokens, dim) floats → QuantizedRows (the max-magnitude entry of a row maps to ±127).

    >>> rows = quantize_rows(np.array([[0.5, -1.0], [0.0, 0.0]], dtype=np.float32))
    >>> rows.codes.tolist(), [[round(x, 3) for x in row] for row in rows.dequantize().tolist()]
    ([[192, 1], [128, 128]], [[0.504, -1.0], [0.0, 0.0]])
    """
    array = np.asarray(vectors, dtype=np.float32)
    scale = np.maximum(np.abs(array).max(axis=1, initial=0.0), 1e-12) / 127.0
    codes = (np.rint(array / scale[:, None]) + INT8_ZERO_POINT).astype(np.uint8)
    return QuantizedRows(codes, scale.astype(np.float32))


def pack_levels(levels: npt.NDArray[np.uint8], bits: int) -> npt.NDArray[np.uint8]:
    """(tokens, dim) codes of `bits` bits each → (tokens, dim·bits/8) bytes, first code highest.

    >>> pack_levels(np.array([[3, 0, 1, 2]], dtype=np.uint8), 2).tolist()
    [[198]]
    >>> unpack_levels(pack_levels(np.array([[3, 0, 1, 2]], dtype=np.uint8), 2), 2, 4).tolist()
    [[3, 0, 1, 2]]
    """
    if bits == 1:
        return np.packbits(levels, axis=1)
    per_byte = 8 // bits
    grouped = levels.reshape(levels.shape[0], levels.shape[1] // per_byte, per_byte).astype(np.uint8)
    shifts = np.arange(per_byte - 1, -1, -1, dtype=np.uint8) * bits
    return np.bitwise_or.reduce(grouped << shifts, axis=2).astype(np.uint8)


def unpack_levels(packed: npt.NDArray[np.uint8], bits: int, dim: int) -> npt.NDArray[np.uint8]:
    if bits == 1:
        return np.unpackbits(packed, axis=1, count=dim)
    per_byte = 8 // bits
    levels = np.empty((packed.shape[0], packed.shape[1], per_byte), dtype=np.uint8)
    for j in range(per_byte):  # one shift per position: plain uint8 ufuncs, no broadcast of shifts
        np.right_shift(packed, (per_byte - 1 - j) * bits, out=levels[:, :, j])
    levels &= np.uint8(2**bits - 1)
    return levels.reshape(packed.shape[0], packed.shape[1] * per_byte)[:, :dim]


def pool_tokens(vectors: FloatArray, factor: int) -> FloatArray:
    """Merge a passage's similar token vectors: Ward clustering into ⌈tokens/factor⌉ groups,
    each replaced by its L2-normalized mean (token pooling, Clavié et al. 2024).

    >>> v = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.1, 0.99]], dtype=np.float32)
    >>> pool_tokens(v, 2).shape
    (2, 2)
    """
    count = int(vectors.shape[0])
    groups = math.ceil(count / factor)
    if factor <= 1 or count <= 2 or groups >= count:
        return vectors
    from scipy.cluster.hierarchy import fcluster, linkage

    labels = fcluster(linkage(vectors.astype(np.float64), method="ward"), t=groups, criterion="maxclust") - 1
    pooled = np.zeros((int(labels.max()) + 1, vectors.shape[1]), dtype=np.float64)
    np.add.at(pooled, labels, vectors)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled.astype(np.float32)


def centroid_count(tokens: int) -> int:
    """How many centroids a residual codec calibrated on `tokens` vectors gets: the power of two
    nearest 4·√tokens (PLAID's rule scaled to a calibration sample), at most one per 8 tokens
    (a centroid must be a mean of several) and at most what the one-byte id addresses.

    >>> [centroid_count(n) for n in (1, 40, 1000, 4400, 13000)]
    [1, 4, 64, 256, 256]
    """
    wanted = 2 ** round(math.log2(4.0 * math.sqrt(max(tokens, 1))))
    return min(wanted, codebook_size(tokens))  # what the sample supports and the byte addresses


def nearest_centroids(vectors: FloatArray, centroids: FloatArray) -> npt.NDArray[np.intp]:
    """Each row's nearest centroid (Euclidean): argmin ‖c‖² - 2·x·c, one matmul."""
    if not len(vectors):
        return np.zeros(0, dtype=np.intp)
    distances = vectors @ centroids.T
    distances *= -2.0
    distances += np.einsum("kd,kd->k", centroids, centroids)[None, :]
    return np.argmin(distances, axis=1)


def kmeans_centroids(tokens: FloatArray, count: int) -> FloatArray:
    """`count` k-means centroids of `tokens` (Lloyd from random tokens, fixed seed: one sample,
    one codec), rounded to float16 as the index stores them."""
    from scipy.cluster.vq import kmeans2

    with warnings.catch_warnings():  # an emptied cluster keeps its last position: fine here
        warnings.simplefilter("ignore")
        centroids, _ = kmeans2(tokens.astype(np.float32), count, iter=20, minit="points", rng=np.random.default_rng(0))
    return np.asarray(centroids, dtype=np.float16).astype(np.float32)


def codebook_size(tokens: int) -> int:
    """Codewords of each run of a product codec calibrated on `tokens` vectors: as many as the
    one-byte id addresses, but at most one per 8 tokens (a power of two).

    >>> [codebook_size(n) for n in (1, 100, 2047, 2048, 50000)]
    [1, 8, 128, 256, 256]
    """
    return max(1, min(2 ** int(math.log2(max(tokens // 8, 1))), RESIDUAL_MAX_CENTROIDS))


def product_codebooks(tokens: FloatArray, run: int) -> FloatArray:
    """One k-means codebook for each run of `run` dimensions: runs × codewords × run."""
    count = codebook_size(len(tokens))
    if count < 16:  # every token of a run would decode to one of a handful of vectors
        warnings.warn(
            f"product codes calibrated on {len(tokens)} token vectors get {count} codewords a run: a first batch this small codes poorly", stacklevel=3
        )
    split = tokens.reshape(len(tokens), -1, run)
    return np.stack([kmeans_centroids(np.ascontiguousarray(split[:, s, :]), count) for s in range(split.shape[1])])


@functools.lru_cache(maxsize=4)
def random_rotation(dim: int, seed: int = 0) -> FloatArray:
    """A random orthogonal dim × dim matrix, uniform over rotations (QR of a Gaussian matrix with
    the signs of R's diagonal moved into Q), from a fixed seed (read-only: it is shared)."""
    gaussian = np.random.default_rng(seed).standard_normal((dim, dim))
    q, r = np.linalg.qr(gaussian)
    rotation = (q * np.sign(np.diag(r))[None, :]).astype(np.float32)
    rotation.setflags(write=False)
    return rotation


def stored_rotation(rotation: npt.NDArray[np.floating]) -> FloatArray:
    """The matrix of orthonormal columns nearest `rotation` rounded to float16 (its polar factor):
    the index stores float16, and every reader derives the same matrix from it (to the last bits
    on one machine; another BLAS may differ by float rounding, far below the codes' own error)."""
    rounded = np.asarray(rotation, dtype=np.float16)
    return _polar_factor(rounded.tobytes(), rounded.shape)


@functools.lru_cache(maxsize=4)
def _polar_factor(float16_bytes: bytes, shape: tuple[int, int]) -> FloatArray:
    """One SVD per stored rotation in a process (each index opened, each batch calibrated would
    take one): the result is read-only, shared by every codec of that rotation."""
    left, _, right = np.linalg.svd(np.frombuffer(float16_bytes, dtype=np.float16).reshape(shape).astype(np.float64), full_matrices=False)
    orthogonal = (left @ right).astype(np.float32)
    orthogonal.setflags(write=False)
    return orthogonal


def turned(tokens: npt.NDArray[np.floating], rotation: FloatArray) -> FloatArray:
    """tokens · rotation, in float64 rounded once to float32: the float32 product's last bits
    change with the BLAS thread count, and an index's bytes must not (a Ray worker and a local
    job write one corpus into the same bytes)."""
    return (np.asarray(tokens, dtype=np.float64) @ rotation.astype(np.float64)).astype(np.float32)


def unbiasing_factors(deviations: FloatArray, coded: FloatArray) -> npt.NDArray[np.float16]:
    """Per token, α = ‖z‖² / ẑ·z (z: its deviation from the center, ẑ: that deviation as coded),
    as little-endian float16: q·(α·ẑ) is then RaBitQ's unbiased estimate of q·z. Each coded
    coordinate keeps its coordinate's sign, so ẑ·z > 0 unless z = 0 (a token at the center: α = 1)."""
    dot = np.einsum("td,td->t", coded, deviations, dtype=np.float64)
    norm = np.einsum("td,td->t", deviations, deviations, dtype=np.float64)
    factors = np.where(dot > 0, norm / np.where(dot > 0, dot, 1.0), 1.0)
    # large only where a dimension's spread was floored (a constant dimension): kept in float16's range
    return np.clip(factors, 0.0, 1e4).astype("<f2")


def nearest_codewords(vectors: FloatArray, codebooks: FloatArray) -> npt.NDArray[np.uint8]:
    """Each run of each row's nearest codeword in its run's codebook: tokens × runs ids (one
    batched matmul a run: runs × tokens × codewords)."""
    runs = vectors.reshape(len(vectors), codebooks.shape[0], codebooks.shape[2]).transpose(1, 0, 2)
    distances = np.matmul(runs, codebooks.transpose(0, 2, 1))
    distances *= -2.0
    distances += np.einsum("skd,skd->sk", codebooks, codebooks)[:, None, :]
    return np.argmin(distances, axis=2).T.astype(np.uint8)


@dataclass(frozen=True, eq=False)
class MultiVectorCodec:
    """One index's representation with its calibration (the centered codes' per-dimension center
    and spread; for residual codes, the centroids and the residuals' center and spread; for product
    codes, the codebooks; for rotated codes, the rotation, float16 as stored, and the center and
    spread of the turned tokens): turns
    float token vectors into the stored bytes and the bytes into codes the rerank scores."""

    representation: Representation
    dim: int
    center: FloatArray | None = None
    spread: FloatArray | None = None
    centroids: FloatArray | None = None
    codebooks: FloatArray | None = None
    rotation: FloatArray | None = None
    orthogonal_rotation: FloatArray | None = field(init=False, repr=False, default=None)  # what `rotation` stands for, exactly orthogonal

    def __post_init__(self) -> None:
        rep = self.representation
        if rep.rotated != (self.rotation is not None):
            raise ConfigError(f"{rep.name} {'needs' if rep.rotated else 'takes no'} rotation: use MultiVectorCodec.calibrate")
        if self.rotation is not None:
            if np.shape(self.rotation) != (self.dim, self.coded_dim) or not np.all(np.isfinite(self.rotation)):
                raise ConfigError(f"{rep.name} needs a finite {self.dim} × {self.coded_dim} rotation, got shape {np.shape(self.rotation)}")
            rounded = np.asarray(self.rotation, dtype=np.float16).astype(np.float32)  # as stored: see centroids
            object.__setattr__(self, "rotation", rounded)
            object.__setattr__(self, "orthogonal_rotation", stored_rotation(rounded))
        if self.dim < 1 or (self.coded_dim * rep.bits) % 8:
            raise ConfigError(f"{rep.name} needs a coded dimension whose bits fill whole bytes, got {self.coded_dim}")
        if rep.bits < 8 and not rep.product and (self.center is None or self.spread is None):
            raise ConfigError(f"{rep.name} needs a calibration (center and spread): use MultiVectorCodec.calibrate")
        if rep.product != (self.codebooks is not None):
            raise ConfigError(f"{rep.name} {'needs' if rep.product else 'takes no'} codebooks: use MultiVectorCodec.calibrate")
        if self.codebooks is not None:
            runs, run = self.dim // rep.subspace_dims, rep.subspace_dims
            shape = self.codebooks.shape
            if self.codebooks.ndim != 3 or (shape[0], shape[2]) != (runs, run) or not 1 <= shape[1] <= RESIDUAL_MAX_CENTROIDS:
                raise ConfigError(f"{rep.name} needs {runs} codebooks of 1 to {RESIDUAL_MAX_CENTROIDS} codewords of {run} dims, got shape {shape}")
            if not np.all(np.isfinite(self.codebooks)):
                raise ConfigError(f"{rep.name}'s codebooks hold NaN or inf")
            object.__setattr__(self, "codebooks", self.codebooks.astype(np.float16).astype(np.float32))  # as stored, see centroids
        if rep.residual != (self.centroids is not None):
            raise ConfigError(f"{rep.name} {'needs' if rep.residual else 'takes no'} centroids: use MultiVectorCodec.calibrate")
        for name in ("center", "spread"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (self.coded_dim,):
                raise ConfigError(f"{rep.name}'s calibration {name} must have {self.coded_dim} values, got shape {np.shape(value)}")
        if self.centroids is not None:
            if self.centroids.ndim != 2 or self.centroids.shape[1] != self.dim or not 1 <= len(self.centroids) <= RESIDUAL_MAX_CENTROIDS:
                raise ConfigError(f"{rep.name} needs 1 to {RESIDUAL_MAX_CENTROIDS} centroids of dim {self.dim}, got shape {self.centroids.shape}")
            # the index stores them as float16: the writer encodes against exactly what readers decode with
            object.__setattr__(self, "centroids", self.centroids.astype(np.float16).astype(np.float32))

    @classmethod
    def calibrate(cls, representation: str | Representation, sample: Sequence[FloatArray]) -> MultiVectorCodec:
        """The codec for `representation`, its center and spread measured on `sample` (token
        vectors of some passages, before pooling; pooled the way they will be stored)."""
        rep = representation if isinstance(representation, Representation) else Representation.parse(representation)
        arrays = [np.asarray(v, dtype=np.float32) for v in sample if len(v)]
        if not arrays:
            raise InputError("cannot calibrate a multivector codec on no token vectors")
        dim = int(arrays[0].shape[1])
        if rep.bits == 8:
            return cls(rep, dim)
        tokens = np.concatenate([pool_tokens(v, rep.pool) for v in arrays])
        if rep.product:
            return cls(rep, dim, codebooks=product_codebooks(tokens, rep.subspace_dims))
        centroids = rotation = None
        if rep.residual:
            centroids = kmeans_centroids(tokens, centroid_count(len(tokens)))
            tokens = tokens - centroids[nearest_centroids(tokens, centroids)]
        if rep.rotated:
            rotation = np.asarray(random_rotation(dim)[:, : rep.coded_dims(dim)], dtype=np.float16).astype(np.float32)
            tokens = turned(tokens, stored_rotation(rotation))
        center, spread = tokens.mean(axis=0).astype(np.float32), np.maximum(tokens.std(axis=0), 1e-6).astype(np.float32)
        return cls(rep, dim, center, spread, centroids, rotation=rotation)

    @property
    def name(self) -> str:
        return self.representation.name

    @property
    def coded_dim(self) -> int:
        return self.representation.coded_dims(self.dim)

    def encode(self, vectors: npt.NDArray[np.floating]) -> bytes:
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise InputError(f"token vectors of shape {array.shape} do not fit a codec of dim {self.dim}")
        if array.size and not np.all(np.isfinite(array)):
            raise InputError("multivector contains NaN or inf")
        array = pool_tokens(array, self.representation.pool)
        if self.representation.bits == 8:
            rows = quantize_rows(array)
            return rows.scales.astype("<f4").tobytes() + rows.codes.tobytes()
        if self.codebooks is not None:
            return nearest_codewords(array, self.codebooks).tobytes()
        assert self.center is not None and self.spread is not None
        prefix = b""
        if self.centroids is not None:  # ids first, then the residuals' codes (as int8 puts its scales first)
            ids = nearest_centroids(array, self.centroids)
            array = array - self.centroids[ids]
            prefix = ids.astype(np.uint8).tobytes()
        if self.orthogonal_rotation is not None:
            array = turned(array, self.orthogonal_rotation)
        bits = self.representation.bits
        normalized = (array - self.center) / self.spread
        levels = np.clip(np.floor(normalized / _GAUSSIAN_STEP[bits] + 2 ** (bits - 1)), 0, 2**bits - 1).astype(np.uint8)
        if self.representation.rotated:  # factors first, then the codes (as int8 puts its scales first)
            prefix = unbiasing_factors(array - self.center, (levels - (2**bits - 1) / 2.0) * _GAUSSIAN_STEP[bits] * self.spread).tobytes()
        return prefix + pack_levels(levels, bits).tobytes()

    def decode(self, data: bytes) -> StoredMultiVector:
        """Stored bytes → codes, not upcast (the rerank scores codes)."""
        width = self.representation.bytes_per_token(self.dim)
        if len(data) % width:
            raise InputError(f"stored multivector of {len(data)} bytes is not a whole number of {self.name} tokens of dim {self.dim}")
        tokens = len(data) // width
        if self.representation.bits == 8:
            scales = np.frombuffer(data, dtype="<f4", count=tokens)
            return QuantizedRows(np.frombuffer(data, dtype=np.uint8, offset=4 * tokens).reshape(tokens, self.dim), scales.astype(np.float32))
        if self.codebooks is not None:
            codes = np.frombuffer(data, dtype=np.uint8).reshape(tokens, width)
            if tokens and int(codes.max()) >= self.codebooks.shape[1]:
                raise InputError(f"stored multivector names codeword {int(codes.max())}, the codebooks have {self.codebooks.shape[1]}")
            return ProductCodes(codes, self.codebooks)
        assert self.center is not None and self.spread is not None
        if self.representation.rotated:
            factors = np.frombuffer(data, dtype="<f2", count=tokens).astype(np.float32)
            if not np.all(np.isfinite(factors)):
                raise InputError("stored multivector holds a NaN or inf token factor")
            packed = np.frombuffer(data, dtype=np.uint8, offset=ROTATED_FACTOR_BYTES * tokens).reshape(tokens, width - ROTATED_FACTOR_BYTES)
            return CenteredCodes(packed, self.representation.bits, self.center, self.spread, self.orthogonal_rotation, factors)
        if self.centroids is None:
            return CenteredCodes(np.frombuffer(data, dtype=np.uint8).reshape(tokens, width), self.representation.bits, self.center, self.spread)
        ids = np.frombuffer(data, dtype=np.uint8, count=tokens)  # RESIDUAL_ID_BYTES: one byte an id
        if tokens and int(ids.max()) >= len(self.centroids):
            raise InputError(f"stored multivector names centroid {int(ids.max())}, the codec has {len(self.centroids)}")
        packed = np.frombuffer(data, dtype=np.uint8, offset=tokens).reshape(tokens, width - 1)
        return ResidualCodes(ids, CenteredCodes(packed, self.representation.bits, self.center, self.spread), self.centroids)

    def to_meta(self) -> dict[str, Any]:
        """What the index stores so that every reader decodes as the writer encoded (centroids as
        base64 of little-endian float16: 256 × 384 of them are ~260 KB)."""
        meta: dict[str, Any] = {
            "representation": self.name,
            "dim": self.dim,
            "center": None if self.center is None else self.center.tolist(),
            "spread": None if self.spread is None else self.spread.tolist(),
        }
        if self.centroids is not None:
            meta["centroids"] = base64.b64encode(self.centroids.astype("<f2").tobytes()).decode("ascii")
        if self.codebooks is not None:  # runs × codewords × run; the codewords follow from the length
            meta["codebooks"] = base64.b64encode(self.codebooks.astype("<f2").tobytes()).decode("ascii")
        if self.rotation is not None:  # dim × K float16: 384 × 384 is ~390 KB of base64
            meta["rotation"] = base64.b64encode(self.rotation.astype("<f2").tobytes()).decode("ascii")
        return meta

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> MultiVectorCodec:
        try:
            center, spread, centroids, codebooks = meta.get("center"), meta.get("spread"), meta.get("centroids"), meta.get("codebooks")
            rotation = meta.get("rotation")
            dim = int(meta["dim"])
            rep = Representation.parse(meta["representation"])
            return cls(
                rep,
                dim,
                None if center is None else np.asarray(center, dtype=np.float32),
                None if spread is None else np.asarray(spread, dtype=np.float32),
                None if centroids is None else _float16_rows(centroids, (-1, dim)),
                None if codebooks is None else _float16_rows(codebooks, (dim // rep.subspace_dims, -1, rep.subspace_dims)),
                None if rotation is None else _float16_rows(rotation, (dim, rep.coded_dims(dim))),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"the multivector codec stored with the index is unreadable: {exc}") from exc


def _float16_rows(encoded: str, shape: tuple[int, ...]) -> FloatArray:
    return np.frombuffer(base64.b64decode(encoded, validate=True), dtype="<f2").reshape(shape).astype(np.float32)


def decode_or_skip(codec: MultiVectorCodec, stored: Mapping[str, bytes]) -> dict[str, StoredMultiVector]:
    """The candidates' decoded codes; one whose bytes do not decode is left out, so it scores as
    having no tokens (as a candidate without stored vectors does) rather than failing the query."""
    decoded = {}
    for key, data in stored.items():
        try:
            decoded[key] = codec.decode(data)
        except InputError:
            continue
    return decoded
