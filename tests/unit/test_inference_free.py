"""The inference-free query encoder: tokenizer + IDF, never a model."""

import numpy as np
import pytest

from lsrkit.core import ConfigError
from lsrkit.encoders import IdfQueryEncoder
from lsrkit.encoders.idf import DocFreqCounter

pytestmark = pytest.mark.models


def _encoder_with_table():
    from lsrkit.encoders.registry import resolve
    from lsrkit.encoders.text import TextTokenizer

    resolved = resolve("splade-tiny")
    tokenizer = TextTokenizer(resolved.directory, 512)
    counter = DocFreqCounter(len(tokenizer.vocab))
    counter.add(tokenizer.token_ids(["cells use atp for energy", "energy of the sun", "the cat"], add_special_tokens=False))
    return IdfQueryEncoder("splade-tiny", idf=counter.to_table(tokenizer.vocab)), tokenizer


def test_never_loads_onnx_or_exports(monkeypatch):
    import onnxruntime

    import lsrkit.encoders.export as export

    def forbidden(*args, **kwargs):
        raise AssertionError("the inference-free encoder touched the model")

    monkeypatch.setattr(onnxruntime, "InferenceSession", forbidden)
    monkeypatch.setattr(export, "load_exported", forbidden)
    monkeypatch.setattr(export, "export_model", forbidden)
    encoder, _ = _encoder_with_table()
    vectors = encoder.encode_queries(["ATP energy in cells"])
    assert len(vectors[0]) > 0


def test_weights_are_idf_of_unique_tokens_without_specials():
    encoder, tokenizer = _encoder_with_table()
    vector = encoder.encode_queries(["energy energy cells [SEP]"])[0]
    tokens = {tokenizer.vocab[i] for i in vector.ids.tolist()}
    assert tokens == {"energy", "cells"}
    for i, w in zip(vector.ids.tolist(), vector.weights.tolist()):
        assert w == pytest.approx(float(encoder.idf.weights[i]))


def test_empty_query_gives_empty_vector():
    encoder, _ = _encoder_with_table()
    assert [len(v) for v in encoder.encode_queries(["", "   "])] == [0, 0]


def test_model_without_idf_needs_a_table():
    with pytest.raises(ConfigError, match="ships no IDF"):
        IdfQueryEncoder("splade-tiny")


def test_a_very_long_query_is_cut_not_refused():
    encoder, tokenizer = _encoder_with_table()
    vector = encoder.encode_queries(["a " * 100_000])[0]
    assert [tokenizer.vocab[i] for i in vector.ids.tolist()] == ["a"]
    assert vector.weights.dtype == np.float32
