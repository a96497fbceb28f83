"""Compact multivector storage: float16, or int8 with one scale per token row."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
import numpy.typing as npt

from lsrkit.core.errors import InputError

Storage = Literal["float16", "uint8", "float32"]
_HEADER = np.dtype("<u4")


@dataclass(frozen=True, slots=True)
class QuantizedRows:
    """A multivector as stored: per-row symmetric int8, shifted to uint8, with one float32 scale
    per row, so that row i ≈ (codes[i] - 128) × scales[i]. Scoring can use the codes directly
    (see rerank.maxsim_scores), which skips a dequantized copy of every candidate."""

    codes: npt.NDArray[np.uint8]
    scales: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    @property
    def dim(self) -> int:
        return int(self.codes.shape[1])

    def dequantize(self) -> npt.NDArray[np.float32]:
        out = self.codes.astype(np.float32)
        out -= 128.0
        out *= self.scales[:, None]
        return out


StoredMultiVector = Union[npt.NDArray[np.floating], QuantizedRows]


def quantize_rows(vectors: npt.NDArray[np.floating]) -> QuantizedRows:
    """(tokens, dim) floats → QuantizedRows (the max-magnitude entry of a row maps to ±127).

    >>> rows = quantize_rows(np.array([[0.5, -1.0], [0.0, 0.0]], dtype=np.float32))
    >>> rows.codes.tolist(), [[round(x, 3) for x in row] for row in rows.dequantize().tolist()]
    ([[192, 1], [128, 128]], [[0.504, -1.0], [0.0, 0.0]])
    """
    array = np.asarray(vectors, dtype=np.float32)
    scale = np.maximum(np.abs(array).max(axis=1, initial=0.0), 1e-12) / 127.0
    codes = (np.rint(array / scale[:, None]) + 128).astype(np.uint8)
    return QuantizedRows(codes, scale.astype(np.float32))


def digest(text: str) -> str:
    """A short content digest of an encoded multivector: a local copy is used only while it
    matches the engine's."""
    return hashlib.blake2b(text.encode("ascii"), digest_size=8).hexdigest()


def encode_multivector(vectors: npt.NDArray[np.float32], storage: Storage = "float16") -> str:
    """(tokens, dim) float32 → base64 text: [tokens, dim] header, then the rows.

    >>> v = np.eye(2, 4, dtype=np.float32)
    >>> decode_multivector(encode_multivector(v)).tolist() == v.tolist()
    True
    >>> np.allclose(decode_multivector(encode_multivector(v, "uint8"), "uint8").dequantize(), v, atol=0.01)
    True
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise InputError(f"multivector must be 2-d, got shape {array.shape}")
    if array.size and not np.all(np.isfinite(array)):
        raise InputError("multivector contains NaN or inf")
    header = np.array(array.shape, dtype=_HEADER).tobytes()
    if storage == "float16":
        body = array.astype("<f2").tobytes()
    elif storage == "float32":
        body = array.astype("<f4").tobytes()
    elif storage == "uint8":
        rows = quantize_rows(array)
        body = rows.scales.astype("<f4").tobytes() + rows.codes.tobytes()
    else:
        raise InputError(f"unknown multivector storage {storage!r}")
    return base64.b64encode(header + body).decode("ascii")


def decode_multivector(text: str, storage: Storage = "float16") -> StoredMultiVector:
    """The inverse of encode_multivector. Nothing is upcast here: float16 stays float16 and uint8
    comes back as QuantizedRows (the scorer upcasts all candidates at once)."""
    try:
        raw = base64.b64decode(text, validate=True)
        tokens, dim = (int(x) for x in np.frombuffer(raw[:8], dtype=_HEADER))
        body = raw[8:]
        if storage == "float16":
            return np.frombuffer(body, dtype="<f2").reshape(tokens, dim)
        if storage == "float32":
            return np.frombuffer(body, dtype="<f4").reshape(tokens, dim)
        if storage == "uint8":
            scales = np.frombuffer(body[: 4 * tokens], dtype="<f4")
            return QuantizedRows(np.frombuffer(body[4 * tokens :], dtype=np.uint8).reshape(tokens, dim), scales)
    except (ValueError, TypeError) as exc:
        raise InputError(f"stored multivector is corrupt: {exc}") from exc
    raise InputError(f"unknown multivector storage {storage!r}")
