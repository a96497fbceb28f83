"""SPLADE pooling: activation of MLM logits, max over the tokens of a passage.

The activations are monotone non-decreasing, so max_t f(x_t) == f(max_t x_t): the max is taken
on the raw logits first and the activation runs on one vocabulary-wide row per passage instead
of on every token's row (the logits are tokens × 30522 floats).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from lsrkit.encoders.registry import Activation

FloatArray = npt.NDArray[np.float32]


def log1p_relu(x: FloatArray) -> FloatArray:
    """SPLADE / OpenSearch v1-v2 activation, in place.

    >>> log1p_relu(np.array([-1.0, 0.0, np.e - 1], dtype=np.float32)).round(4).tolist()
    [0.0, 0.0, 1.0]
    """
    np.maximum(x, 0.0, out=x)
    return np.log1p(x, out=x)


def log1p_log1p_relu(x: FloatArray) -> FloatArray:
    """OpenSearch v3 activation log(1 + log(1 + relu(x))), in place.

    >>> [round(v, 4) for v in log1p_log1p_relu(np.array([-3.0, np.e - 1], dtype=np.float32)).tolist()]
    [0.0, 0.6931]
    """
    return np.log1p(log1p_relu(x), out=x)


ACTIVATIONS: dict[Activation, Callable[[FloatArray], FloatArray]] = {
    "log1p_relu": log1p_relu,
    "log1p_log1p_relu": log1p_log1p_relu,
}


def max_pool(logits: FloatArray, attention_mask: npt.NDArray[np.int64], activation: Activation) -> FloatArray:
    """(batch, tokens, vocab) logits and their mask → (batch, vocab) activated term weights.

    Padding positions never contribute: they are skipped, not zeroed (a logit may be negative).
    """
    batch = logits.shape[0]
    pooled = np.empty((batch, logits.shape[2]), dtype=np.float32)
    lengths = attention_mask.sum(axis=1)
    for row in range(batch):
        np.max(logits[row, : int(lengths[row])], axis=0, out=pooled[row])
    return ACTIVATIONS[activation](pooled)
