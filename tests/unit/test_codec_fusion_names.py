"""Round trips and properties of the small pure pieces (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lsrkit.core import Hit, InputError, SparseVector
from lsrkit.plugin.codec import decode_multivector, encode_multivector
from lsrkit.plugin.feature_names import from_feature, to_feature
from lsrkit.plugin.fusion import minmax_sum, rrf

finite = st.floats(-1.0, 1.0, allow_nan=False, width=32)


@given(arrays(np.float32, st.tuples(st.integers(0, 12), st.integers(1, 16)), elements=finite))
def test_multivector_codecs_round_trip(vectors):
    np.testing.assert_array_equal(decode_multivector(encode_multivector(vectors, "float32"), "float32"), vectors)
    np.testing.assert_allclose(decode_multivector(encode_multivector(vectors, "float16"), "float16"), vectors, atol=1e-3)
    np.testing.assert_allclose(decode_multivector(encode_multivector(vectors, "uint8"), "uint8").dequantize(), vectors, atol=1.0 / 127 + 1e-6)


def test_codec_rejects_nan_and_corrupt_data():
    with pytest.raises(InputError):
        encode_multivector(np.array([[np.nan]], dtype=np.float32))
    with pytest.raises(InputError):
        decode_multivector("not base64!!")


@given(st.text(max_size=20))
def test_feature_names_round_trip_and_never_contain_dots(token):
    name = to_feature(token)
    assert "." not in name
    assert from_feature(name) == token


@given(st.dictionaries(st.integers(0, 30521), st.floats(0.125, 50.0, allow_nan=False, width=32), max_size=40))
def test_sparse_vector_dict_round_trip(mapping):
    vector = SparseVector.from_dict(mapping)
    assert vector.to_dict() == pytest.approx({k: np.float32(v) for k, v in mapping.items()})


@settings(max_examples=50)
@given(st.lists(st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=6), min_size=1, max_size=3))
def test_fusion_keeps_every_id_once(runs_ids):
    runs = [[Hit(i, float(10 - n)) for n, i in enumerate(ids)] for ids in runs_ids]
    expected = {i for ids in runs_ids for i in ids}
    for fused in (rrf(runs), minmax_sum(runs)):
        assert [h.id for h in fused] == list(dict.fromkeys(h.id for h in fused))
        assert {h.id for h in fused} == expected
        assert all(a.score >= b.score for a, b in zip(fused, fused[1:]))


@settings(max_examples=60)
@given(
    arrays(np.float32, st.tuples(st.integers(0, 6), st.just(8)), elements=finite),
    st.lists(arrays(np.float32, st.tuples(st.integers(0, 7), st.just(8)), elements=finite), max_size=6),
)
def test_maxsim_equals_the_definition_for_any_shapes(query, docs):
    from lsrkit.plugin.rerank import maxsim_scores

    scores = maxsim_scores(query, docs)
    assert scores.shape == (len(docs),)
    for score, doc in zip(scores.tolist(), docs):
        expected = 0.0 if len(doc) == 0 or len(query) == 0 else float((query @ doc.T).max(axis=1).sum())
        assert score == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ({"status": 404, "error": {"type": "index_not_found_exception"}}, "IndexMissingError"),
        ({"status": 429, "error": {"type": "es_rejected_execution_exception"}}, "UnavailableError"),
        ({"status": 400, "error": {"type": "parsing_exception"}}, "BackendError"),
    ],
)
def test_a_failed_search_inside_an_msearch_raises_like_a_failed_request(item, error):
    from lsrkit.core import errors
    from lsrkit.plugin.opensearch import _raise_item_error

    with pytest.raises(getattr(errors, error)) as raised:
        _raise_item_error("msearch", "idx", item)
    assert type(raised.value).__name__ == error and "idx" in str(raised.value)
