"""ColBERT-style multivector encoder: one L2-normalized vector per kept token."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lsrkit.core.config import OnnxOptions
from lsrkit.core.errors import ConfigError, EncoderError
from lsrkit.core.types import MultiVector
from lsrkit.encoders.one_thread import float_product
from lsrkit.encoders.registry import ModelSpec
from lsrkit.encoders.runtime import LoadedModel, load_model
from lsrkit.encoders.text import clean_texts, is_punctuation

# Plain dynamic int8 breaks MiniLM token vectors (cosine down to 0.75); the attention-only recipe
# keeps them >= 0.99 (tests/unit/test_multivector_encoder.py) and is the default.
_DEFAULT_OPTIONS = OnnxOptions(quantize="int8-attention")


class MultiVectorEncoder:
    """Token embeddings from a BERT-style encoder, projected (ColBERT checkpoints), L2-normalized.

    Query / document markers and query padding with [MASK] follow the model spec; punctuation and
    special tokens are dropped from documents when the spec says so (ColBERT does, MiniLM should not).
    `batch_size` applies to fp32 models; a quantized one runs one text at a time (its dynamic
    activation scales span the batch, and a document's vectors must not depend on its neighbours).
    """

    def __init__(self, model: str | ModelSpec = "minilm-l6", *, options: OnnxOptions = _DEFAULT_OPTIONS, batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        self.model: LoadedModel = load_model(model, "multivector", options)
        self.batch_size = batch_size
        spec = self.model.spec
        tokenizer = self.model.tokenizer
        projection_path = self.model.exported.directory / "projection.npy"
        self.projection = np.load(projection_path) if projection_path.is_file() else None
        self._marker = {
            "query": tokenizer.tokenizer.token_to_id(spec.query_marker) if spec.query_marker else None,
            "document": tokenizer.tokenizer.token_to_id(spec.doc_marker) if spec.doc_marker else None,
        }
        self._mask_id = tokenizer.tokenizer.token_to_id("[MASK]")
        skip = np.zeros(len(tokenizer.vocab), dtype=bool)
        if spec.skip_punctuation:
            skip |= np.array([is_punctuation(t) for t in tokenizer.vocab])
        if spec.skip_special:
            skip[list(tokenizer.special_ids)] = True
        self._skip = skip

    @property
    def fingerprint(self) -> str:
        return f"{self.model.spec.name}:{self.model.exported.manifest.get('quantize', 'none')}"

    @property
    def manifest(self) -> dict[str, object]:
        """What an index built with this encoder records of it (see LoadedModel.describe)."""
        return {**self.model.describe(), "dim": self.dim}

    @property
    def dim(self) -> int:
        if self.projection is not None:
            return int(self.projection.shape[1])
        return int(self.model.session.get_outputs()[0].shape[-1])

    def encode_documents(self, texts: Sequence[object]) -> list[MultiVector]:
        return self._encode(texts, "document")

    def encode_queries(self, texts: Sequence[object]) -> list[MultiVector]:
        return self._encode(texts, "query")

    def _sequences(self, texts: list[str], side: str) -> list[list[int]]:
        spec = self.model.spec
        sequences = self.model.tokenizer.token_ids(texts)
        marker = self._marker[side]
        if marker is not None:  # ColBERT: [CLS] marker tokens… [SEP]
            sequences = [s[:1] + [marker] + s[1 : spec.max_length - 1] for s in sequences]
        if side == "query" and spec.query_length and self._mask_id is not None:
            sequences = [s[: spec.query_length] + [self._mask_id] * (spec.query_length - len(s)) for s in sequences]
        return sequences

    def _encode(self, texts: Sequence[object], side: str) -> list[MultiVector]:
        cleaned = clean_texts(texts, max_tokens=self.model.tokenizer.max_length)
        empty = MultiVector(np.zeros((0, self.dim), dtype=np.float32))
        results: list[MultiVector] = [empty] * len(cleaned)
        todo = [i for i, t in enumerate(cleaned) if t]
        if not todo:
            return results
        sequences = self._sequences([cleaned[i] for i in todo], side)
        order = sorted(range(len(todo)), key=lambda j: len(sequences[j]))
        # dynamic int8 activation scales span the whole batch: quantized models run one text at a time
        step = 1 if self.model.exported.manifest.get("quantize", "none") != "none" else self.batch_size
        for start in range(0, len(order), step):
            group = order[start : start + step]
            for j, vectors in zip(group, self._run([sequences[j] for j in group], side), strict=True):
                results[todo[j]] = vectors
        return results

    def _run(self, sequences: list[list[int]], side: str) -> list[MultiVector]:
        batch = self.model.tokenizer.pad(sequences)
        try:
            hidden = self.model.run(batch.feeds(self.model.input_names))
        except Exception as exc:  # onnxruntime's errors are untyped
            raise EncoderError(f"onnxruntime failed on a batch of {len(sequences)} texts: {exc}") from exc
        out = []
        for row, seq in enumerate(sequences):
            ids = np.asarray(seq)
            keep = np.ones(len(seq), dtype=bool) if side == "query" else ~self._skip[ids]
            vectors = hidden[row, : len(seq)][keep]
            if self.projection is not None:
                vectors = float_product(vectors, self.projection)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out.append(MultiVector(vectors / np.maximum(norms, 1e-12)))
        return out
