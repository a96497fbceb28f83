import os
import subprocess
import sys

import numpy as np
import pytest

from lsrkit.core import ConfigError, Hit, InputError, RerankSettings
from lsrkit.plugin.rerank import MaxSimReranker, alpha_prune, maxsim_scores


def _unit(rng, n, dim=16):
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_maxsim_matches_a_naive_loop():
    rng = np.random.default_rng(1)
    query = _unit(rng, 5)
    docs = [_unit(rng, n).astype(np.float16) for n in (3, 9, 1, 20)]
    naive = [sum(max(float(q @ d.astype(np.float32)[t]) for t in range(len(d))) for q in query) for d in docs]
    np.testing.assert_allclose(maxsim_scores(query, docs), naive, rtol=1e-5)


def test_empty_inputs():
    rng = np.random.default_rng(2)
    assert maxsim_scores(_unit(rng, 3), []).shape == (0,)
    scores = maxsim_scores(_unit(rng, 3), [np.zeros((0, 16), np.float32), _unit(rng, 2)])
    assert scores[0] == 0.0 and scores[1] != 0.0
    with pytest.raises(InputError):
        maxsim_scores(_unit(rng, 3), [_unit(rng, 2, dim=8)])


def test_alpha_prune_keeps_exactly_the_candidates_above_threshold():
    scores = [10.0, 9.0, 8.0, 6.0, 4.9, 4.0]
    assert alpha_prune(scores, k=2, alpha=0.5) == 5  # threshold (1-0.5)*9 = 4.5: 10, 9, 8, 6, 4.9 survive
    assert alpha_prune(scores, k=2, alpha=0.0) == 2  # threshold 9: only ties with the k-th would survive
    assert alpha_prune(scores, k=10, alpha=0.1) == len(scores)


def _setup(n=30, seed=3):
    rng = np.random.default_rng(seed)
    query = _unit(rng, 4)
    hits = [Hit(f"d{i}", float(100 - i)) for i in range(n)]
    vectors = {h.id: _unit(rng, 6) for h in hits}
    return query, hits, vectors


def test_alpha_pruning_scores_only_the_survivors():
    query, hits, vectors = _setup()
    reranker = MaxSimReranker(RerankSettings(kappa=30, k=5, alpha=0.05))
    out = reranker.rerank(query, hits, vectors)
    survivors = alpha_prune([h.score for h in hits], 5, 0.05)
    assert reranker.last_stats.scored == survivors < len(hits)
    assert {h.id for h in out} <= {h.id for h in hits[:survivors]}


def _beta_replay(scores: list[float], k: int, beta: int) -> int:
    """How many candidates the β rule scores, replayed one candidate at a time: the scan stops right
    after the first run of β candidates that each failed to enter the running top k."""
    top: list[float] = []
    misses = 0
    for i, score in enumerate(scores):
        if len(top) < k or score > min(top):
            top, misses = sorted(top + [score])[-k:], 0
        else:
            misses += 1
            if misses == beta:
                return i + 1
    return len(scores)


@pytest.mark.parametrize(("seed", "k", "beta"), [(0, 3, 4), (1, 3, 4), (2, 5, 2), (3, 1, 1), (4, 10, 8), (5, 2, 30)])
def test_beta_early_exit_stops_at_the_first_run_of_beta_misses(seed, k, beta):
    rng = np.random.default_rng(seed)
    query, hits = _unit(rng, 4), [Hit(f"d{i}", float(100 - i)) for i in range(40)]
    vectors = {h.id: _unit(rng, 6) for h in hits}
    full = MaxSimReranker(RerankSettings(kappa=40, k=k)).rerank(query, hits, vectors)
    reranker = MaxSimReranker(RerankSettings(kappa=40, k=k, beta=beta))
    out = reranker.rerank(query, hits, vectors)
    scores = maxsim_scores(query, [vectors[h.id] for h in hits])
    expected = _beta_replay(scores.tolist(), k, beta)
    assert reranker.last_stats.scored == expected
    assert len(out) == expected and {h.id for h in out} == {h.id for h in hits[:expected]}
    assert [h.stage_scores["maxsim"] for h in out] == pytest.approx(sorted(scores[:expected].tolist(), reverse=True))
    assert full[0].score == pytest.approx(max(scores))


def test_interpolation_mixes_normalized_scores():
    query, hits, vectors = _setup(n=10)
    out = MaxSimReranker(RerankSettings(kappa=10, k=10, interpolation=1.0)).rerank(query, hits, vectors)
    assert [h.id for h in out] == [h.id for h in hits]  # weight 1: first-stage order
    for hit in out:
        assert set(hit.stage_scores) >= {"first_stage", "maxsim"}


def test_missing_multivector_scores_zero_and_nan_query_is_refused():
    query, hits, vectors = _setup(n=5)
    del vectors["d0"]
    out = MaxSimReranker(RerankSettings(kappa=5, k=5)).rerank(query, hits, vectors)
    assert next(h for h in out if h.id == "d0").stage_scores["maxsim"] == 0.0
    with pytest.raises(InputError):
        MaxSimReranker().rerank(np.full((2, 16), np.nan, np.float32), hits, vectors)
    assert MaxSimReranker().rerank(query, [], {}) == []


def test_settings_are_validated():
    with pytest.raises(ConfigError):
        RerankSettings(kappa=5, k=10)
    with pytest.raises(ConfigError):
        RerankSettings(alpha=1.5)
    with pytest.raises(ConfigError):
        RerankSettings(kappa=5000)


def test_pruning_normalizes_the_first_stage_over_every_candidate():
    """A pruned candidate must not move the first-stage part of the survivors' scores: that part is
    min-max normalized over all κ candidates (their first-stage scores are all known)."""
    query, hits, vectors = _setup(n=30)
    weight = 0.4
    pruned = MaxSimReranker(RerankSettings(kappa=30, k=5, alpha=0.05, interpolation=weight))
    out = pruned.rerank(query, hits, vectors)
    assert pruned.last_stats.scored < len(hits)
    first = np.array([h.score for h in hits])
    maxsim = np.array([h.stage_scores["maxsim"] for h in out])
    low, high = first.min(), first.max()
    for hit in out:
        first_part = (hit.stage_scores["first_stage"] - low) / (high - low)
        maxsim_part = (hit.stage_scores["maxsim"] - maxsim.min()) / (maxsim.max() - maxsim.min())
        assert hit.score == pytest.approx((1 - weight) * maxsim_part + weight * first_part, abs=1e-5)


def test_integer_gemm_is_exact_on_the_quantized_operands_even_at_the_extremes():
    """The int8 path equals an int64 numpy product of the same codes (no int16 saturation, even
    with every code at 255 and every query code at ±63), and MaxSim from it stays within the
    rounding of a 7-bit query of the float computation."""
    from lsrkit.plugin.codec import quantize_rows
    from lsrkit.plugin.integer_gemm import CODE_ZERO_POINT, code_similarities, quantize_query

    rng = np.random.default_rng(7)
    query = _unit(rng, 9, dim=384)
    extreme = np.full((40, 384), 255, np.uint8)
    for codes in (rng.integers(1, 256, size=(300, 384), dtype=np.uint8), extreme):
        scales = rng.uniform(0.001, 0.01, size=len(codes)).astype(np.float32)
        quantized = quantize_query(query)
        exact = (codes.astype(np.int64) - CODE_ZERO_POINT) @ quantized.codes.astype(np.int64)
        expected = exact * scales[:, None].astype(np.float64) * quantized.scales[None, :]
        assert np.abs(quantized.codes).max() == 63
        np.testing.assert_allclose(code_similarities(codes, scales, quantized), expected, rtol=1e-5)
    docs = [_unit(rng, n, dim=384) for n in (5, 40, 1)]
    exact_maxsim = maxsim_scores(query, docs)
    np.testing.assert_allclose(maxsim_scores(query, [quantize_rows(d) for d in docs]), exact_maxsim, atol=0.02 * len(query) / 9)


def _normalized(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    "name",
    [
        "4bit",
        "2bit",
        "1bit",
        "pool2-1bit",
        "rot1bit",
        "rot2bit",
        "rot4bit",
        "pool2-rot1bit",
        "pool3-rot1bit",
        "rot1bit-d360",
        "pool2-rot1bit-d360",
        "rot2bit-d196",
    ],
)
def test_centered_codes_score_as_the_float_product_of_their_decoded_values(name):
    """Asymmetric scoring: the integer path over the codes equals MaxSim of the float query
    against the dequantized documents, up to the query's 7-bit rounding."""
    from lsrkit.plugin.codec import MultiVectorCodec

    rng = np.random.default_rng(11)
    shared = rng.normal(size=384)  # token vectors of real models share a mean direction: center ≠ 0
    docs = [_normalized(_unit(rng, n, dim=384) + shared / np.linalg.norm(shared)) for n in (5, 40, 1, 120)]
    codec = MultiVectorCodec.calibrate(name, docs)
    assert np.linalg.norm(codec.center) > 0.3
    query = _normalized(_unit(rng, 9, dim=384) + shared / np.linalg.norm(shared))
    stored = [codec.decode(codec.encode(d)) for d in docs]
    expected = maxsim_scores(query, [s.dequantize() for s in stored])
    got = maxsim_scores(query, stored)
    np.testing.assert_allclose(got, expected, rtol=0, atol=0.02 * len(query) / 9)  # absolute scores, center term included
    # decoding is stable: the codes of the decoded vectors are the codes
    if codec.representation.pool == 1:
        assert all(codec.encode(s.dequantize()) == codec.encode(d) for s, d in zip(stored, docs, strict=True))


def test_per_query_ndcg10_averages_to_score_run():
    from lsrkit.evaluation import per_query_ndcg10, score_run

    qrels = {"q2": {"a": 1}, "q1": {"b": 2, "c": 1}, "q3": {"z": 1}, "q4": {"n": 0}}
    run = {"q1": {"b": 1.0, "x": 0.5}, "q2": {"x": 2.0, "a": 1.0}}  # q3 has no hits; q4 no relevant document
    per_query = per_query_ndcg10(run, qrels)
    assert set(per_query) == {"q1", "q2", "q3"}
    assert per_query["q3"] == 0.0 and per_query["q2"] == pytest.approx(1 / np.log2(3))
    assert sum(per_query.values()) / 3 == pytest.approx(score_run(run, qrels)["ndcg10"])


def test_bootstrap_interval_narrows_with_more_queries():
    from lsrkit.evaluation import bootstrap_interval

    deltas = [-0.05] * 10 + [0.0] * 280 + [0.02] * 10
    wide, narrow = bootstrap_interval(deltas, size=100), bootstrap_interval(deltas, size=3000)
    assert wide[0] < narrow[0] <= narrow[1] < wide[1]
    assert narrow[0] < sum(deltas) / len(deltas) < narrow[1]


def _clustered(rng, n, dim=384, centers=None):
    centers = rng.normal(size=(8, dim)) if centers is None else centers
    return _normalized(centers[rng.integers(0, len(centers), size=n)] + 0.4 * rng.normal(size=(n, dim)))


@pytest.mark.parametrize("name", ["res1bit", "res2bit", "res4bit", "pool2-res1bit", "pool3-res2bit", "pq1bit", "pq2bit", "pool2-pq1bit"])
def test_residual_and_product_codes_score_as_a_naive_loop_over_their_decoded_values(name):
    """Residual codes: q·centroid from a float product, q·residual from the integer path, together
    MaxSim over the dequantized tokens up to the query's 7-bit rounding of the residual term.
    Product codes: decoded from their codebooks, exactly MaxSim over the dequantized tokens."""
    from lsrkit.plugin.codec import MultiVectorCodec, ProductCodes, ResidualCodes

    kind, atol = (ProductCodes, 1e-5) if "pq" in name else (ResidualCodes, 0.02)

    rng = np.random.default_rng(12)
    centers = rng.normal(size=(8, 384))
    docs = [_clustered(rng, n, centers=centers) for n in (5, 40, 1, 120, 60)]
    codec = MultiVectorCodec.calibrate(name, docs)
    query = _clustered(rng, 9, centers=centers)
    stored = [codec.decode(codec.encode(d)) for d in docs] + [codec.decode(b"")]
    assert all(isinstance(s, kind) for s in stored)
    naive = [sum(max((float(q @ t) for t in s.dequantize()), default=0.0) for q in query) if len(s) else 0.0 for s in stored]
    np.testing.assert_allclose(maxsim_scores(query, stored), naive, rtol=0, atol=atol * len(query) / 9)


def test_residual_codes_in_the_beta_scan_score_as_in_one_pass():
    """The β scan scores blocks with one query preparation (q·C included): every score it kept
    is the one-pass score, and the scan stops where the rule says."""
    from lsrkit.plugin.codec import MultiVectorCodec

    rng = np.random.default_rng(13)
    centers = rng.normal(size=(8, 384))
    hits = [Hit(f"d{i}", float(100 - i)) for i in range(40)]
    floats = {h.id: _clustered(rng, int(rng.integers(1, 30)), centers=centers) for h in hits}
    codec = MultiVectorCodec.calibrate("pool2-res1bit", list(floats.values()))
    codes = {i: codec.decode(codec.encode(v)) for i, v in floats.items()}
    query = _clustered(rng, 6, centers=centers)
    k, beta = 3, 4
    reranker = MaxSimReranker(RerankSettings(kappa=40, k=k, beta=beta))
    out = reranker.rerank(query, hits, codes)
    scores = maxsim_scores(query, [codes[h.id] for h in hits])
    expected = _beta_replay(scores.tolist(), k, beta)
    assert reranker.last_stats.scored == expected < len(hits)
    assert [h.stage_scores["maxsim"] for h in out] == pytest.approx(sorted(scores[:expected].tolist(), reverse=True), abs=1e-5)


def test_residual_codes_of_two_codecs_are_not_scored_together():
    from lsrkit.plugin.codec import MultiVectorCodec

    rng = np.random.default_rng(14)
    docs = [_clustered(rng, 30) for _ in range(3)]
    one, other = MultiVectorCodec.calibrate("res1bit", docs[:2]), MultiVectorCodec.calibrate("res1bit", docs[1:])
    query = _clustered(rng, 4)
    with pytest.raises(InputError):
        maxsim_scores(query, [one.decode(one.encode(docs[0])), other.decode(other.encode(docs[0]))])


def test_one_query_scores_two_codecs_in_turn_each_with_its_own_calibration():
    """A _MaxSim prepared for one codec's codes, then given another's (a second index): the second
    call must not reuse the first codec's query preparation."""
    from lsrkit.plugin.codec import MultiVectorCodec
    from lsrkit.plugin.rerank import _MaxSim

    rng = np.random.default_rng(15)
    docs = [_clustered(rng, 30) for _ in range(4)]
    query = _clustered(rng, 5)
    scorer = _MaxSim(query)
    for name, sample in (
        ("res2bit", docs[:2]),
        ("res1bit", docs[2:]),
        ("2bit", docs[:2]),
        ("1bit", docs[2:]),
        ("rot1bit", docs[:2]),
        ("rot1bit", docs[2:]),
        ("1bit", docs[:2]),
    ):
        codec = MultiVectorCodec.calibrate(name, sample)
        stored = [codec.decode(codec.encode(d)) for d in docs]
        naive = [sum(max(float(q @ t) for t in s.dequantize()) for q in query) for s in stored]
        np.testing.assert_allclose(scorer(stored), naive, rtol=0, atol=0.02 * len(query) / 9)


def test_one_query_scores_codes_that_differ_only_in_their_rotation_each_turned_its_own_way():
    """Two rotated codecs sharing their center and spread (the very arrays): the query's
    preparation must follow the rotation too."""
    from lsrkit.plugin.codec import MultiVectorCodec, Representation, random_rotation
    from lsrkit.plugin.rerank import _MaxSim

    rng = np.random.default_rng(16)
    docs = [_clustered(rng, 30, dim=64) for _ in range(3)]
    query = _clustered(rng, 5, dim=64)
    center, spread = np.zeros(64, np.float32), np.full(64, 0.12, np.float32)
    scorer = _MaxSim(query)
    for seed in (1, 2, 1):
        codec = MultiVectorCodec(Representation.parse("rot2bit"), 64, center, spread, rotation=random_rotation(64, seed))
        stored = [codec.decode(codec.encode(d)) for d in docs]
        naive = [sum(max(float(q @ t) for t in s.dequantize()) for q in query) for s in stored]
        np.testing.assert_allclose(scorer(stored), naive, rtol=0, atol=0.02 * len(query) / 9)


RERANK_CPU = """
import sys, time
import numpy as np
from lsrkit.core.config import RerankSettings
from lsrkit.core.types import Hit
from lsrkit.plugin.codec import MultiVectorCodec, decode_or_skip
from lsrkit.plugin.rerank import MaxSimReranker
rng = np.random.default_rng(5)
passages = [rng.normal(size=(n, 384)).astype(np.float32) for n in rng.integers(50, 150, size=100)]
codec = MultiVectorCodec.calibrate(sys.argv[1], passages)
stored = decode_or_skip(codec, {f"p{i}": codec.encode(t) for i, t in enumerate(passages)})
hits = [Hit(f"p{i}", float(100 - i)) for i in range(100)]
query = rng.normal(size=(22, 384)).astype(np.float32)
reranker = MaxSimReranker(RerankSettings(kappa=100))
big = rng.normal(size=(1024, 1024))
big @ big  # numpy's BLAS threads, if it has any, are started
time.sleep(1.0)
reranker.rerank(query, hits, stored)
process, thread = time.process_time(), time.thread_time()
for _ in range(40):
    reranker.rerank(query, hits, stored)
    time.sleep(0.002)  # queries arrive apart: an idle BLAS worker spins through the gap
print(time.process_time() - process - (time.thread_time() - thread), time.thread_time() - thread)
"""


@pytest.mark.parametrize("name", ["pool2-rot1bit-d360", "res1bit", "pq1bit"])
def test_a_rerank_keeps_to_its_own_thread(name):
    """The rerank's products run on one thread: the CPU time of every other thread of the process
    stays small beside the rerank's own. numpy's OpenBLAS split them across its threads, whose idle
    workers then spun between queries (several times the rerank's own CPU time), taking a core
    from the engine and the query encoder."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one usable core: OpenBLAS starts no second thread, so there is no spin to guard against")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    result = subprocess.run([sys.executable, "-c", RERANK_CPU, name], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    others, own = (float(x) for x in result.stdout.split())
    assert others < 0.5 * own, f"other threads took {others:.3f} s of CPU beside the rerank's {own:.3f} s"
