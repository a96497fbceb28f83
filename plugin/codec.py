"""Compact multivector storage: float16, or int8 with one scale per token row."""

from __future__ import annotations

import base64
from typing import Literal

import numpy as np
import numpy.typing as npt

from lsrkit.core.errors import InputError

Storage = Literal["float16", "uint8", "float32"]
_HEADER = np.dtype("<u4")


def encode_multivector(vectors: npt.NDArray[np.float32], storage: Storage = "float16") -> str:
    """(tokens, dim) float32 → base64 text: [tokens, dim] header, then the rows.

    >>> v = np.eye(2, 4, dtype=np.float32)
    >>> decode_multivector(encode_multivector(v)).tolist() == v.tolist()
    True
    >>> np.allclose(decode_multivector(encode_multivector(v, "uint8"), "uint8"), v, atol=0.01)
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
    elif storage == "uint8":  # symmetric int8 per row, shifted to uint8; scale stored as float32
        scale = np.maximum(np.abs(array).max(axis=1, initial=0.0), 1e-12) / 127.0
        codes = (np.rint(array / scale[:, None]) + 128).astype(np.uint8)
        body = scale.astype("<f4").tobytes() + codes.tobytes()
    else:
        raise InputError(f"unknown multivector storage {storage!r}")
    return base64.b64encode(header + body).decode("ascii")


def decode_multivector(text: str, storage: Storage = "float16") -> npt.NDArray[np.float16] | npt.NDArray[np.float32]:
    """The inverse of encode_multivector; float16 storage stays float16 (upcast later, in bulk)."""
    try:
        raw = base64.b64decode(text, validate=True)
        tokens, dim = (int(x) for x in np.frombuffer(raw[:8], dtype=_HEADER))
        body = raw[8:]
        if storage == "float16":
            return np.frombuffer(body, dtype="<f2").reshape(tokens, dim)
        if storage == "float32":
            return np.frombuffer(body, dtype="<f4").reshape(tokens, dim)
        if storage == "uint8":
            scale = np.frombuffer(body[: 4 * tokens], dtype="<f4")
            codes = np.frombuffer(body[4 * tokens :], dtype=np.uint8).reshape(tokens, dim)
            out = codes.astype(np.float32)
            out -= 128.0
            out *= scale[:, None]
            return out
    except (ValueError, TypeError) as exc:
        raise InputError(f"stored multivector is corrupt: {exc}") from exc
    raise InputError(f"unknown multivector storage {storage!r}")
