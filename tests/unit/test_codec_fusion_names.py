"""Round trips and properties of the small pure pieces (hypothesis)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lsrkit.core import ConfigError, Hit, InputError, SparseVector
from lsrkit.plugin import codec as codec_module
from lsrkit.plugin.codec import REPRESENTATIONS, MultiVectorCodec, Representation, pack_levels, pool_tokens, unpack_levels
from lsrkit.plugin.feature_names import from_feature, to_feature
from lsrkit.plugin.fusion import minmax_sum, rrf

finite = st.floats(-1.0, 1.0, allow_nan=False, width=32)


def _tokens(rng, n: int, dim: int = 32) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("name", REPRESENTATIONS)
def test_every_representation_round_trips_through_bytes_and_its_meta(name):
    rng = np.random.default_rng(3)
    rep = Representation.parse(name)
    dim = 32 if rep.dims is None else 384  # a code of K dimensions needs tokens of at least K
    sample = [_tokens(rng, n, dim) for n in (30, 17, 1)]
    codec = MultiVectorCodec.calibrate(name, sample)
    again = MultiVectorCodec.from_meta(json.loads(json.dumps(codec.to_meta())))
    for vectors in sample:
        data = codec.encode(vectors)
        stored_tokens = len(pool_tokens(vectors, rep.pool))
        assert len(data) == stored_tokens * rep.bytes_per_token(dim)
        decoded, decoded_again = codec.decode(data), again.decode(data)
        assert len(decoded) == stored_tokens
        np.testing.assert_array_equal(decoded.dequantize(), decoded_again.dequantize())
        if rep.product and rep.pool == 1:  # 4 codewords a run from 48 tokens: each run is its nearest one
            assert codec.codebooks is not None
            runs = vectors.reshape(len(vectors), -1, 1, rep.subspace_dims)
            nearest = np.min(np.sum((runs - codec.codebooks[None]) ** 2, axis=3), axis=2)
            got = np.sum((decoded.dequantize().reshape(runs.shape[:2] + (rep.subspace_dims,)) - runs[:, :, 0]) ** 2, axis=2)
            np.testing.assert_allclose(got, nearest, rtol=1e-5, atol=1e-6)
        elif rep.pool == 1:  # no pooling: each token comes back close to itself
            cosine = np.sum(decoded.dequantize() * vectors, axis=1) / np.linalg.norm(decoded.dequantize(), axis=1)
            assert cosine.min() > {8: 0.99, 4: 0.95, 2: 0.8, 1: 0.6}[rep.bits]


@given(arrays(np.uint8, st.tuples(st.integers(0, 9), st.sampled_from([8, 16, 24])), elements=st.integers(0, 255)), st.sampled_from([1, 2, 4]))
def test_packed_levels_round_trip(raw, bits):
    levels = raw % (2**bits)
    np.testing.assert_array_equal(unpack_levels(pack_levels(levels, bits), bits, raw.shape[1]), levels)


def test_codec_refuses_nan_wrong_dims_corrupt_bytes_and_unknown_names():
    codec = MultiVectorCodec.calibrate("2bit", [_tokens(np.random.default_rng(1), 20)])
    with pytest.raises(InputError):
        codec.encode(np.array([[np.nan] * 32], dtype=np.float32))
    with pytest.raises(InputError):
        codec.encode(np.ones((2, 16), dtype=np.float32))
    with pytest.raises(InputError):
        codec.decode(b"\x00" * 7)  # not a whole number of 8-byte tokens
    with pytest.raises(ConfigError):
        Representation.parse("3bit")
    with pytest.raises(ConfigError):
        MultiVectorCodec.from_meta({"representation": "1bit"})


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


def test_qdrant_bm25_counts_query_terms_and_text_lengths():
    from lsrkit.core import IndexSpec
    from lsrkit.plugin.qdrant_bm25 import QdrantBm25

    bm25 = QdrantBm25(IndexSpec("t", bm25_avg_len=12.0))
    terms, counts = bm25.query("cells cell running cells")  # stemmed: cell ×3, run ×1
    assert sorted(counts) == [1.0, 3.0] and len(terms) == 2
    assert bm25.lengths(["the cells are running", "cell"]) == [2, 1]  # "the", "are": stopwords
    plain = QdrantBm25(IndexSpec("t", text_language="none"))
    assert len(plain.query("cells cell running")[0]) == 3


def _clustered(rng, n: int, dim: int = 64, clusters: int = 6, centers: np.ndarray | None = None) -> np.ndarray:
    """Token vectors around a few directions, as a model's tokens gather around common meanings."""
    centers = rng.normal(size=(clusters, dim)) if centers is None else centers
    v = centers[rng.integers(0, clusters, size=n)] + 0.35 * rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_residual_names_parse_and_count_their_centroid_id():
    assert {"res1bit", "res2bit", "pool2-res1bit", "pool2-res2bit", "pool3-res1bit", "pool3-res2bit"} <= set(REPRESENTATIONS)
    rep = Representation.parse("pool1-res4bit")
    assert (rep.residual, rep.bits, rep.pool, rep.name) == (True, 4, 1, "res4bit")
    assert Representation.parse("pool3-res1bit").bytes_per_token(384) == 48 + 1  # the one-byte centroid id
    assert not Representation.parse("pool3-1bit").residual and Representation.parse("pool3-1bit").name == "pool3-1bit"
    for bad in ("resint8", "res3bit", "res8bit", "pool0-res1bit", "res1bit-pool2"):
        with pytest.raises(ConfigError):
            Representation.parse(bad)


def test_residual_codes_round_trip_closer_with_more_bits_and_closer_than_centered_codes():
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(6, 64))
    sample = [_clustered(rng, n, centers=centers) for n in (200, 150, 90)]
    held_out = _clustered(np.random.default_rng(6), 80, centers=centers)  # new tokens of the same corpus
    errors = {}
    for name in ("res1bit", "res2bit", "res4bit", "1bit", "2bit", "4bit"):
        codec = MultiVectorCodec.calibrate(name, sample)
        decoded = codec.decode(codec.encode(held_out))
        assert len(decoded) == len(held_out) and decoded.dim == 64
        errors[name] = float(np.mean(np.sum((decoded.dequantize() - held_out) ** 2, axis=1)))
    assert errors["res4bit"] < errors["res2bit"] < errors["res1bit"] < 0.5
    for bits in (1, 2, 4):  # the centroid takes the shared part away: the residual spreads less
        assert errors[f"res{bits}bit"] < errors[f"{bits}bit"]


def test_residual_calibration_follows_the_centroid_rule_and_its_meta_stays_small():
    from lsrkit.plugin.codec import ResidualCodes, centroid_count, decode_or_skip

    rng = np.random.default_rng(8)
    sample = [_clustered(rng, 100) for _ in range(10)]
    codec = MultiVectorCodec.calibrate("res2bit", sample)
    assert codec.centroids is not None and len(codec.centroids) == centroid_count(1000) == 64
    meta = json.loads(json.dumps(codec.to_meta()))
    again = MultiVectorCodec.from_meta(meta)
    np.testing.assert_array_equal(again.centroids, codec.centroids)  # float16 in the meta, float16-exact in the codec
    data = codec.encode(sample[0])
    assert again.encode(sample[0]) == data
    decoded = again.decode(data)
    assert isinstance(decoded, ResidualCodes) and decoded.bits == 2
    # ids come first, one byte each: an id past the centroids is a corrupt record, skipped on read
    corrupt = bytes([255]) + data[1:]
    assert set(decode_or_skip(codec, {"ok": data, "bad": corrupt})) == {"ok"}
    # the largest codec (256 centroids of 384 dims) keeps its meta document small
    big = MultiVectorCodec.calibrate("res1bit", [_tokens(rng, 2100, dim=384)])
    assert big.centroids is not None and len(big.centroids) == 256
    assert len(json.dumps(big.to_meta())) < 300_000
    with pytest.raises(ConfigError):  # a residual codec without its centroids is unreadable
        MultiVectorCodec.from_meta({k: v for k, v in big.to_meta().items() if k != "centroids"})
    with pytest.raises(ConfigError):
        MultiVectorCodec.from_meta({**big.to_meta(), "centroids": "not base64!"})


def test_residual_bytes_are_the_centroid_ids_then_the_packed_residual_levels():
    """The stored layout, by hand: dim 8, two centroids, 1-bit residuals (level 1 where the residual
    is ≥ the center 0, first dimension in the highest bit)."""
    e = np.eye(8, dtype=np.float32)
    codec = MultiVectorCodec(Representation.parse("res1bit"), 8, np.zeros(8, np.float32), np.ones(8, np.float32), e[:2].copy())
    tokens = np.stack([e[0] + 0.1 * e[2] - 0.1 * e[3], e[1] - 0.2 * e[7]]).astype(np.float32)
    data = codec.encode(tokens)
    # ids 0, 1; token 0's residual (0, 0, .1, -.1, 0, 0, 0, 0) → levels 1,1,1,0,1,1,1,1; token 1's → 1,1,1,1,1,1,1,0
    assert data == bytes([0, 1, 0b11101111, 0b11111110])
    decoded = codec.decode(data)
    assert decoded.ids.tolist() == [0, 1] and len(decoded) == 2
    with pytest.raises(ConfigError):  # centroids of a wrong length
        MultiVectorCodec.from_meta({**codec.to_meta(), "centroids": codec.to_meta()["centroids"][:-4]})
    with pytest.raises(ConfigError):  # centroids on a representation without residuals
        MultiVectorCodec.from_meta({**codec.to_meta(), "representation": "1bit"})


def test_product_names_parse_and_take_one_byte_a_run():
    assert {"pq1bit", "pool2-pq1bit", "pool2-pq2bit", "pool3-pq1bit"} <= set(REPRESENTATIONS)
    rep = Representation.parse("pool2-pq2bit")
    assert (rep.product, rep.residual, rep.bits, rep.pool, rep.subspace_dims, rep.bytes_per_token(384)) == (True, False, 2, 2, 4, 96)
    assert Representation.parse("pool1-pq4bit").name == "pq4bit"
    for bad in ("pqint8", "pq3bit", "respq1bit", "pq1bit-pool2"):
        with pytest.raises(ConfigError):
            Representation.parse(bad)


def test_product_codes_round_trip_closer_than_centered_codes_of_the_same_bits():
    """Same bytes a token; a codeword of 8 dimensions follows how they vary together, a scalar
    code cannot."""
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(6, 64))
    sample = [_clustered(rng, n, centers=centers) for n in (900, 700, 600)]
    held_out = _clustered(np.random.default_rng(6), 200, centers=centers)
    errors = {}
    for name in ("pq1bit", "pq2bit", "1bit", "2bit"):
        codec = MultiVectorCodec.calibrate(name, sample)
        data = codec.encode(held_out)
        assert len(data) == len(held_out) * Representation.parse(name).bytes_per_token(64)
        errors[name] = float(np.mean(np.sum((codec.decode(data).dequantize() - held_out) ** 2, axis=1)))
    assert errors["pq2bit"] < errors["pq1bit"] < errors["1bit"]
    assert errors["pq2bit"] < errors["2bit"]


def test_product_bytes_are_each_runs_nearest_codeword_and_the_meta_keeps_the_codebooks():
    """The stored layout, by hand: dim 16, pq1bit = two runs of 8 dims, two codewords each."""
    from lsrkit.plugin.codec import ProductCodes, decode_or_skip

    e = np.eye(8, dtype=np.float32)
    codebooks = np.stack([np.stack([e[0], e[1]]), np.stack([e[2], -e[2]])])  # runs × codewords × 8
    codec = MultiVectorCodec(Representation.parse("pq1bit"), 16, codebooks=codebooks)
    tokens = np.array([np.concatenate([e[1], -e[2]]), np.concatenate([0.9 * e[0], 0.5 * e[2] + 0.1 * e[3]])], dtype=np.float32)
    data = codec.encode(tokens)
    assert data == bytes([1, 1, 0, 0])  # token 0: codewords 1, 1; token 1: codewords 0, 0
    decoded = codec.decode(data)
    assert isinstance(decoded, ProductCodes) and decoded.dim == 16
    np.testing.assert_array_equal(decoded.dequantize()[0], np.concatenate([e[1], -e[2]]))
    again = MultiVectorCodec.from_meta(json.loads(json.dumps(codec.to_meta())))
    assert again.encode(tokens) == data
    # a codeword past the codebook is a corrupt record, skipped on read
    assert set(decode_or_skip(codec, {"ok": data, "bad": bytes([2, 0, 0, 0])})) == {"ok"}
    with pytest.raises(ConfigError):  # a product codec without its codebooks is unreadable
        MultiVectorCodec.from_meta({k: v for k, v in codec.to_meta().items() if k != "codebooks"})
    with pytest.raises(ConfigError):  # codebooks of the wrong shape for the dim
        MultiVectorCodec(Representation.parse("pq2bit"), 16, codebooks=codebooks)


def test_the_largest_product_codec_keeps_its_meta_small():
    rng = np.random.default_rng(9)
    big = MultiVectorCodec.calibrate("pq1bit", [_tokens(rng, 2100, dim=384)])
    assert big.codebooks is not None and big.codebooks.shape == (48, 256, 8)
    assert len(json.dumps(big.to_meta())) < 300_000


def _few_dominant_axes(rng, n: int, dim: int = 64) -> np.ndarray:
    """Tokens whose variance sits on a few of their dimensions, as a real encoder's often does."""
    v = rng.normal(size=(n, dim)) * np.exp(-np.arange(dim) / 6.0) + 0.3
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_rotated_names_parse_and_take_the_bytes_of_their_centered_codes_and_a_factor():
    assert {"rot1bit", "pool2-rot1bit", "pool3-rot1bit"} <= set(REPRESENTATIONS)
    rep = Representation.parse("pool1-rot2bit")
    assert (rep.rotated, rep.residual, rep.product, rep.bits, rep.name, rep.bytes_per_token(384)) == (
        True,
        False,
        False,
        2,
        "rot2bit",
        96 + 2,
    )  # its float16 factor
    for bad in ("rotint8", "rotres1bit", "rot3bit", "pool0-rot1bit"):
        with pytest.raises(ConfigError):
            Representation.parse(bad)


def test_rotated_codes_of_fewer_dimensions_code_the_first_turned_ones_and_name_their_count():
    rep = Representation.parse("pool2-rot1bit-d360")
    assert (rep.dims, rep.name, rep.bytes_per_token(384), rep.coded_dims(384)) == (360, "pool2-rot1bit-d360", 45 + 2, 360)
    for bad in ("1bit-d360", "res1bit-d360", "pq1bit-d360", "rot1bit-d7", "rot1bit-d0", "int8-d8"):
        with pytest.raises(ConfigError):
            Representation.parse(bad)
    rng = np.random.default_rng(24)
    tokens = _tokens(rng, 400, dim=64)
    # a token of K dimensions or fewer is coded whole: the default serves models of any width
    whole = MultiVectorCodec.calibrate("rot1bit-d72", [tokens])
    assert whole.coded_dim == 64 and len(whole.encode(tokens[:3])) == 3 * (8 + 2)
    from lsrkit.core.config import default_representation

    for dim in (96, 128, 384):
        small = MultiVectorCodec.calibrate(default_representation(), [_tokens(rng, 300, dim=dim)])
        assert small.decode(small.encode(_tokens(rng, 5, dim=dim))).dequantize().shape[1] == dim
    codec = MultiVectorCodec.calibrate("rot4bit-d48", [tokens])
    again = MultiVectorCodec.from_meta(json.loads(json.dumps(codec.to_meta())))
    assert codec.rotation is not None and codec.rotation.shape == (64, 48) and codec.center.shape == (48,)
    turned = codec.orthogonal_rotation
    np.testing.assert_allclose(turned.T @ turned, np.eye(48), atol=1e-5)  # orthonormal columns
    np.testing.assert_array_equal(again.orthogonal_rotation, turned)
    decoded = codec.decode(codec.encode(tokens))
    assert decoded.dim == 64 and decoded.coded_dim == 48 and decoded.dequantize().shape == (400, 64)
    # what is decoded is the token's projection onto the 48 kept directions (4 bits a dimension: close)
    projected = tokens @ turned @ turned.T
    cosine = np.sum(decoded.dequantize() * projected, axis=1) / np.linalg.norm(decoded.dequantize(), axis=1) / np.linalg.norm(projected, axis=1)
    assert cosine.min() > 0.95


def test_rotated_codes_keep_dot_products_better_where_few_dimensions_dominate_and_keep_their_rotation_in_the_meta():
    """Turned by a random rotation, a token's variance is spread over every dimension: the same
    bits keep the dot products with held-out queries closer. The meta holds the float16 rotation;
    every reader turns it into the same orthogonal matrix, and decodes exactly as the writer."""
    rng = np.random.default_rng(21)
    sample, held_out, queries = [_few_dominant_axes(rng, n) for n in (300, 200)], _few_dominant_axes(rng, 150), _few_dominant_axes(rng, 20)
    exact = (queries @ held_out.T).ravel()
    agreement = {}
    for name in ("1bit", "rot1bit", "2bit", "rot2bit"):
        codec = MultiVectorCodec.calibrate(name, sample)
        decoded = codec.decode(codec.encode(held_out)).dequantize()
        agreement[name] = float(np.corrcoef((queries @ decoded.T).ravel(), exact)[0, 1])
    assert agreement["rot1bit"] > agreement["1bit"] + 0.03 and agreement["rot2bit"] > agreement["2bit"] + 0.01, agreement

    codec = MultiVectorCodec.calibrate("rot1bit", sample)
    rotation = codec.orthogonal_rotation
    assert rotation is not None and codec.rotation is not None
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(64), atol=1e-5)
    np.testing.assert_allclose(rotation, codec.rotation, atol=2e-3)  # the float16 matrix, made orthogonal
    codec_module._polar_factor.cache_clear()  # a reader in another process derives it afresh
    again = MultiVectorCodec.from_meta(json.loads(json.dumps(codec.to_meta())))
    assert again.orthogonal_rotation is not rotation
    np.testing.assert_array_equal(again.orthogonal_rotation, rotation)
    data = codec.encode(held_out)
    assert again.encode(held_out) == data and len(data) == len(held_out) * (8 + 2)
    np.testing.assert_array_equal(again.decode(data).dequantize(), codec.decode(data).dequantize())
    with pytest.raises(ConfigError):  # a rotated codec without its rotation is unreadable
        MultiVectorCodec.from_meta({k: v for k, v in codec.to_meta().items() if k != "rotation"})
    with pytest.raises(ConfigError):  # a rotation on codes that take none
        MultiVectorCodec.from_meta({**codec.to_meta(), "representation": "1bit"})
    with pytest.raises(ConfigError):  # a rotation of the wrong size
        MultiVectorCodec(Representation.parse("rot1bit"), 64, codec.center, codec.spread, rotation=np.eye(32, dtype=np.float32))


def test_the_largest_rotated_codec_keeps_its_meta_under_half_a_megabyte():
    big = MultiVectorCodec.calibrate("pool3-rot1bit", [_tokens(np.random.default_rng(22), 900, dim=384)])
    assert big.rotation is not None and big.rotation.shape == (384, 384)
    assert len(json.dumps(big.to_meta())) < 500_000


def test_rotated_bytes_are_every_tokens_float16_factor_then_every_tokens_packed_levels():
    """The stored layout, by hand: dim 8, the identity as the rotation, center 0, spread 1: a
    token's 1-bit code decodes to ±step/2 in each dimension, and its factor is ‖z‖² / ẑ·z; the
    factors of all the tokens come first (as int8 puts its scales first), then their codes."""
    from lsrkit.plugin.codec import CenteredCodes, decode_or_skip

    step = 1.5958  # the 1-bit Gaussian step
    codec = MultiVectorCodec(Representation.parse("rot1bit"), 8, np.zeros(8, np.float32), np.ones(8, np.float32), rotation=np.eye(8, dtype=np.float32))
    tokens = np.array([[0.5, -0.25, 0.0, 1.0, -1.0, 0.25, 0.0, -0.5], [-1.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]], dtype=np.float32)
    data = codec.encode(tokens)
    coded = np.where(tokens >= 0, step / 2, -step / 2)
    factors = np.sum(tokens**2, axis=1) / np.sum(coded * tokens, axis=1)
    assert len(data) == 2 * (2 + 1)
    assert np.frombuffer(data[:4], dtype="<f2").tolist() == factors.astype(np.float16).tolist()
    assert data[4:] == bytes([0b10110110, 0b01111111])  # ≥ 0 → 1, first dimension in the highest bit
    decoded = codec.decode(data)
    assert isinstance(decoded, CenteredCodes) and decoded.factors is not None
    np.testing.assert_allclose(decoded.dequantize(), factors.astype(np.float16)[:, None].astype(np.float32) * coded, rtol=1e-6)
    # each decoded token projects onto its token as the token itself does (float16 factor aside)
    np.testing.assert_allclose(np.sum(decoded.dequantize() * tokens, axis=1), np.sum(tokens**2, axis=1), rtol=1e-3)
    # a factor that is not a number is a corrupt record, skipped on read
    corrupt = np.array([np.nan, 1.0], dtype="<f2").tobytes() + data[4:]
    assert set(decode_or_skip(codec, {"ok": data, "bad": corrupt})) == {"ok"}


ROTATED_DIGEST = """
import hashlib, json, sys
import numpy as np
from lsrkit.plugin.codec import MultiVectorCodec
rng = np.random.default_rng(23)
passages = [rng.normal(size=(n, 384)).astype(np.float32) for n in rng.integers(20, 200, size=60)]
codec = MultiVectorCodec.calibrate(sys.argv[1], passages)
digest = hashlib.sha256(json.dumps(codec.to_meta(), sort_keys=True).encode())
for tokens in passages:
    digest.update(codec.encode(tokens))
print(digest.hexdigest())
"""


@pytest.mark.parametrize("name", ["pool2-rot1bit-d360", "rot2bit"])
def test_rotated_codes_are_the_same_bytes_whatever_the_blas_thread_count(name):
    """A Ray worker (one BLAS thread) and a local job (several) must write one corpus into the same
    bytes, calibration included: the float32 product of the rotation differs in its last bits."""
    import os
    import subprocess
    import sys

    digests = set()
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        result = subprocess.run([sys.executable, "-c", ROTATED_DIGEST, name], capture_output=True, text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        digests.add(result.stdout.strip())
    assert len(digests) == 1
