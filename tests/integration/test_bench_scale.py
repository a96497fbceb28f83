"""`lsrkit bench scale` on a small corpus (Qdrant Edge, two sizes of a few thousand passages): the
JSON's shape, a synthetic corpus whose document-frequency curve is the source's, and corpus
statistics counted as ingest counts them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

pytestmark = pytest.mark.models

SIZES = (2000, 4000)
SAMPLE = 120  # real passages encoded once: enough for a curve of 1000 terms, quick on two cores


@pytest.fixture(scope="module")
def scale_run(mini_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    from lsrkit.bench.scale import run

    data_dir = tmp_path_factory.mktemp("bench-scale")
    result = run(dataset=mini_dir, backend_kind="edge", sizes=",".join(map(str, SIZES)), data_dir=data_dir, queries=6, sample=SAMPLE)
    return result, data_dir


def test_json_shape(scale_run: tuple[dict[str, Any], Path]) -> None:
    from lsrkit.bench.scale import SCALE_PIPELINES

    result, data_dir = scale_run
    assert set(result) == {"backend", "dataset", "method", "sizes", "df_curve", "machine"}
    assert result["backend"] == "edge" and isinstance(result["method"], str) and result["method"]
    assert list(result["sizes"]) == [str(s) for s in SIZES]
    for size, entry in result["sizes"].items():
        assert set(entry) == {"passages", "write_pps", "bytes_per_passage", "rss_mb", "pipelines"}
        assert entry["passages"] == int(size)  # the engine holds what was written, appended
        assert entry["write_pps"] > 0 and entry["bytes_per_passage"] > 0
        assert entry["rss_mb"]["lsrkit"] > 0 and entry["rss_mb"]["engine"] == entry["rss_mb"]["lsrkit"]  # Edge: in-process
        pipelines = entry["pipelines"]
        assert tuple(pipelines) == SCALE_PIPELINES
        assert set(pipelines["bm25"]) == {"p50_ms", "p99_ms"}
        for name in SCALE_PIPELINES[1:]:
            measured = pipelines[name]
            assert set(measured) == {"p50_ms", "p99_ms", "ratio_vs_bm25", "p99_over_p50"}
            assert 0 < measured["p50_ms"] <= measured["p99_ms"]
            assert measured["ratio_vs_bm25"] == pytest.approx(measured["p50_ms"] / pipelines["bm25"]["p50_ms"], rel=0.02)
    assert not any((data_dir / "edge").glob("bench-scale-*/"))  # the synthetic index is dropped
    assert any((data_dir / "bench-scale").glob("*/sample.npz"))  # the encodings are cached


def test_synthetic_df_curve_matches_the_source(scale_run: tuple[dict[str, Any], Path]) -> None:
    """The df of the top terms, by rank, as fractions of each corpus. A synthetic fraction is a
    binomial count over N passages: its relative noise at a source fraction f is
    σ = sqrt((1 - f) / (N f)). The top 100 (smallest f: the 100th) are held to 4σ — the largest of
    100 such deviations — plus 0.02 for the calibration's approximation of successive sampling;
    the mean error over all ranks to the σ of the noisiest rank (the 1000th, or the last)."""
    from lsrkit.bench.scale import df_curve

    curve = scale_run[0]["df_curve"]
    n = curve["synthetic_passages"]
    assert n == SIZES[-1] and curve["ranks"] >= 500
    f100, f_last = curve["source_at_rank_100_1000"]
    sigma100, sigma_last = math.sqrt((1 - f100) / (n * f100)), math.sqrt((1 - f_last) / (n * f_last))
    assert curve["max_rel_error_top100"] <= 4 * sigma100 + 0.02, curve
    assert curve["mean_rel_error"] <= sigma_last, curve
    assert curve["termwise_log_correlation"] >= 0.98, curve  # the same terms are the frequent ones
    # the check can fail: terms drawn uniformly have a flat curve
    source = np.array([50, 40, 30, 20, 10] * 40)
    flat = df_curve(source, 100, np.full(source.size, source.sum() * n // (100 * source.size)), n)
    assert flat["max_rel_error_top100"] > 4 * sigma100 + 0.02


def test_statistics_are_counted_as_ingest_counts_them(scale_run: tuple[dict[str, Any], Path]) -> None:
    """The synthesizer counts a passage's tokenizer ids from its words' (fast at 1M passages):
    the same counts as ingest's CorpusStatistics over the passages' texts."""
    from lsrkit.bench.scale import SourceSample, Synthesizer
    from lsrkit.encoders.idf import DocFreqCounter
    from lsrkit.factory import ModelChoice, sparse_tokenizer
    from lsrkit.ingest.statistics import CorpusStatistics

    folder = next((scale_run[1] / "bench-scale").glob("*/"))
    sample = SourceSample.load(folder)
    assert sample is not None and sample.passages >= SAMPLE
    tokenizer = sparse_tokenizer(ModelChoice().sparse)
    synth = Synthesizer(sample, tokenizer.token_ids(sample.words, add_special_tokens=False), len(tokenizer.vocab), tokenizer.max_length, seed=7)
    block = synth.block(300)
    ingest = CorpusStatistics(cast(Any, None), "unused", tokenizer)  # token_sets needs the tokenizer alone
    counter = DocFreqCounter(len(tokenizer.vocab))
    counter.add(ingest.token_sets([r.full_text for r in block.records]))
    assert np.array_equal(block.token_df, counter.doc_freq)
    real_nnz = set(np.diff(sample.sparse_offsets).tolist())
    assert all(len(r.sparse) in real_nnz and (r.sparse.weights > 0).all() and r.multivector for r in block.records)
    assert len({r.doc_id for r in block.records}) < len(block.records)  # documents of several passages, as in the source


def test_a_kept_index_is_measured_again_without_a_build(mini_dir: Path, tmp_path: Path) -> None:
    from lsrkit.bench.scale import SCALE_PIPELINES, measure_kept, run

    run(dataset=mini_dir, backend_kind="edge", sizes="1500", data_dir=tmp_path, queries=3, sample=SAMPLE, keep_index=True)
    again = measure_kept(dataset=mini_dir, backend_kind="edge", data_dir=tmp_path, queries=3)
    entry = again["sizes"]["1500"]
    assert again["measured_on_kept_index"] and entry["passages"] == 1500 and entry["bytes_per_passage"] > 0
    assert tuple(entry["pipelines"]) == SCALE_PIPELINES and all(v["p50_ms"] > 0 for v in entry["pipelines"].values())
    assert set(entry["stage_p50_ms"]["sparse-idf+rerank"]) >= {"encode", "first_stage", "rerank", "total"}
