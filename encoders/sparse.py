"""SPLADE-style sparse encoders run by onnxruntime: documents, and queries by the same model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lsrkit.core.config import OnnxOptions
from lsrkit.core.errors import ConfigError, EncoderError
from lsrkit.core.types import SparseVector
from lsrkit.encoders.pooling import max_pool
from lsrkit.encoders.registry import ModelSpec
from lsrkit.encoders.runtime import LoadedModel, load_model
from lsrkit.encoders.text import clean_texts


def prune(vector: SparseVector, *, top_k: int | None = None, max_ratio: float | None = None) -> SparseVector:
    """Keep the top_k heaviest terms and/or drop terms below max_ratio × the heaviest (OpenSearch's
    `max_ratio` pruning).

    >>> v = SparseVector.from_dict({1: 1.0, 2: 0.05, 3: 0.5})
    >>> prune(v, max_ratio=0.1).to_dict()
    {1: 1.0, 3: 0.5}
    >>> prune(v, top_k=1).to_dict()
    {1: 1.0}
    """
    if max_ratio is not None and len(vector):
        keep = vector.weights >= max_ratio * float(vector.weights.max())
        vector = SparseVector(vector.ids[keep], vector.weights[keep])
    if top_k is not None:
        vector = vector.top_k(top_k)
    return vector


class _SparseModelEncoder:
    """Shared machinery: tokenize, run the MLM, max-pool, zero special tokens, prune."""

    def __init__(
        self,
        model: str | ModelSpec = "splade-tiny",
        *,
        options: OnnxOptions = OnnxOptions(),
        batch_size: int = 8,
        top_k: int | None = None,
        max_ratio: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if top_k is not None and top_k < 1:
            raise ConfigError("top_k must be >= 1")
        if max_ratio is not None and not 0.0 <= max_ratio < 1.0:
            raise ConfigError("max_ratio must be in [0, 1)")
        self.model: LoadedModel = load_model(model, "sparse", options)
        self.options = options
        self.batch_size = batch_size
        self.top_k = top_k
        self.max_ratio = max_ratio
        self._special = np.array(sorted(self.model.tokenizer.special_ids), dtype=np.int64)
        # dynamic int8 activation scales span the whole batch tensor, so a text's weights would
        # depend on its batch neighbours: a quantized model runs one text at a time, batch_size
        # applies to fp32 models only
        self._per_text = options.quantize != "none"

    @property
    def vocab(self) -> list[str]:
        return self.model.tokenizer.vocab

    @property
    def fingerprint(self) -> str:
        """Model, quantization and pruning: what makes two encoders' vectors comparable."""
        return f"{self.model.spec.name}:{self.options.quantize}:top{self.top_k}:ratio{self.max_ratio}"

    @property
    def manifest(self) -> dict[str, object]:
        """What an index built with this encoder records of it (see LoadedModel.describe)."""
        return {**self.model.describe(), "top_k": self.top_k, "max_ratio": self.max_ratio}

    def _encode(self, texts: Sequence[object]) -> list[SparseVector]:
        cleaned = clean_texts(texts, max_tokens=self.model.tokenizer.max_length)
        results: list[SparseVector] = [SparseVector.empty()] * len(cleaned)
        todo = [i for i, t in enumerate(cleaned) if t]
        if not todo:
            return results
        token_ids = self.model.tokenizer.token_ids([cleaned[i] for i in todo])
        order = sorted(range(len(todo)), key=lambda j: len(token_ids[j]))  # length-sorted: little padding
        step = 1 if self._per_text else self.batch_size
        for start in range(0, len(order), step):
            group = order[start : start + step]
            for j, vector in zip(group, self._run([token_ids[j] for j in group]), strict=True):
                results[todo[j]] = vector
        return results

    def _run(self, sequences: list[list[int]]) -> list[SparseVector]:
        batch = self.model.tokenizer.pad(sequences)
        try:
            logits = self.model.run(batch.feeds(self.model.input_names))
        except Exception as exc:  # onnxruntime's errors are untyped
            raise EncoderError(f"onnxruntime failed on a batch of {len(sequences)} texts: {exc}") from exc
        pooled = max_pool(logits, batch.attention_mask, self.model.spec.activation)
        pooled[:, self._special] = 0.0
        vectors = []
        for row in pooled:
            ids = np.flatnonzero(row > 0.0).astype(np.int32)
            vectors.append(prune(SparseVector(ids, row[ids]), top_k=self.top_k, max_ratio=self.max_ratio))
        return vectors


class SparseDocEncoder(_SparseModelEncoder):
    """Document side: text → SparseVector (int32 token ids, float32 weights)."""

    def encode_documents(self, texts: Sequence[object]) -> list[SparseVector]:
        return self._encode(texts)


class SparseQueryEncoder(_SparseModelEncoder):
    """Query side with model inference (bi-encoder SPLADE)."""

    def encode_queries(self, texts: Sequence[object]) -> list[SparseVector]:
        return self._encode(texts)
