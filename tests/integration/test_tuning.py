"""Settings are chosen from evidence on a split: the tuning grid and the pruning sweep, on the
packaged SciFact subset in Qdrant Edge (real encoders, real engine)."""

from __future__ import annotations

import shutil

import pytest

from lsrkit.quickstart import INDEX

pytestmark = [pytest.mark.models, pytest.mark.slow]


@pytest.fixture(scope="module")
def mini_index(tmp_path_factory, mini_dir, quickstart_run, sparse_encoder):
    from lsrkit.encoders import IdfQueryEncoder
    from lsrkit.evaluation import load_beir
    from lsrkit.plugin.index_meta import load_index_idf
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    root = tmp_path_factory.mktemp("tuning")
    dataset = load_beir(mini_dir)
    # the main job's index of the packaged subset (default encoders and representation), copied
    shutil.copytree(quickstart_run[1] / "edge", root / "edge")
    backend = QdrantEdgeBackend(root / "edge")
    assert backend.count(INDEX) >= 400
    idf = IdfQueryEncoder("splade-tiny", idf=load_index_idf(backend, INDEX, sparse_encoder.vocab))
    yield backend, dataset, idf
    backend.close()


def test_pruning_sweep_reports_every_setting_and_fold(mini_index, mv_encoder):
    from lsrkit.tuning import Config, collect, sweep_pruning

    backend, dataset, idf = mini_index
    evidence = collect(backend, INDEX, dataset, idf, mv_encoder)
    rows = sweep_pruning(backend, INDEX, evidence, dataset, Config("sparse", kappa=30, interpolation=0.3), [0.2], [4], folds=3)
    assert [(r["alpha"], r["beta"]) for r in rows] == [(None, None), (0.2, None), (None, 4), (0.2, 4)]
    full = rows[0]
    assert full["scored"] == 30 and full["ndcg10_delta"] == 0.0 and full["fold_deltas"] == [0.0, 0.0, 0.0]
    for row in rows[1:]:
        assert row["scored"] <= full["scored"] and len(row["fold_deltas"]) == 3
        assert row["ndcg10"] == pytest.approx(full["ndcg10"] + row["ndcg10_delta"])
        # skipped candidates stay in the ranking, below the reranked ones, as the pipeline keeps them:
        # pruning reorders the candidates, it does not lose them (the evidence holds ≤ 100 documents)
        assert row["recall100"] == pytest.approx(full["recall100"])
        # the per-query changes are the ones the mean and the folds are made of
        assert set(row["query_deltas"]) == set(dataset.qrels)
        assert sum(row["query_deltas"].values()) / len(row["query_deltas"]) == pytest.approx(row["ndcg10_delta"])
        assert sum(row["fold_deltas"]) / 3 == pytest.approx(row["ndcg10_delta"], abs=0.02)
    assert rows[-1]["scored"] <= min(rows[1]["scored"], rows[2]["scored"])  # both prunings at once prune most


def test_tune_chooses_within_tolerance_of_the_best(mini_index, mv_encoder):
    from lsrkit.tuning import collect, tune

    backend, dataset, idf = mini_index
    result = tune(collect(backend, INDEX, dataset, idf, mv_encoder), dataset, has_bm25=True, tolerance=0.001)
    assert set(result["chosen"]) == {"sparse", "bm25", "hybrid", "sparse+rerank", "hybrid+rerank"}
    for kind, chosen in result["chosen"].items():
        best = result["best"][kind]
        assert best["ndcg10"] - 0.001 <= chosen["ndcg10"] <= best["ndcg10"]
        assert chosen["config"]["kappa"] <= best["config"]["kappa"]  # the cheaper of the near-best
    assert result["best"]["sparse+rerank"]["ndcg10"] > result["best"]["sparse"]["ndcg10"]  # measured: 0.80 vs 0.75


def test_pruned_pipeline_prunes_at_any_result_depth(mini_index, mv_encoder):
    """α/β protect the top 10 even when 100 results are asked for; the skipped candidates stay,
    in first-stage order, below the reranked ones."""
    from lsrkit.factory import build_pipeline

    backend, dataset, idf = mini_index
    pruned = build_pipeline("sparse-idf+rerank-pruned", backend, INDEX, idf_encoder=idf, multivector=mv_encoder)
    full = build_pipeline("sparse-idf+rerank", backend, INDEX, idf_encoder=idf, multivector=mv_encoder)
    scored = []
    for text in list(dataset.queries.values())[:20]:
        hits = pruned.search(text, k=100).hits
        scored.append(pruned.reranker.last_stats.scored)
        assert {h.id for h in hits} == {h.id for h in full.search(text, k=100).hits}
    assert min(scored) < pruned.settings.kappa  # it did prune


@pytest.mark.parametrize("name", ["hybrid", "hybrid+rerank", "sparse-idf+rerank"])
def test_pipelines_rank_as_the_tuning_replay_that_chose_their_settings(mini_index, mv_encoder, name):
    """`lsrkit tune` scores settings offline from collected evidence (runs 100 passages deep); the
    search pipeline with those settings must return the same documents in the same order, and as
    many. (At k=100 this 400-document subset's runs cover fewer than 100 documents, and the
    pipeline rightly reads deeper than the evidence goes: k=50 here.)"""
    from lsrkit.factory import QualitySettings, build_pipeline
    from lsrkit.tuning import Config, apply, collect

    backend, dataset, idf = mini_index
    quality = QualitySettings()
    if name == "hybrid":
        config = Config("hybrid", quality.hybrid.method, quality.hybrid.weights[0])
    elif name == "hybrid+rerank":
        config = Config("hybrid", quality.hybrid_rerank.method, quality.hybrid_rerank.weights[0], quality.hybrid_kappa, quality.hybrid_interpolation)
    else:
        config = Config("sparse", kappa=quality.sparse_kappa, interpolation=quality.sparse_interpolation)
    evidence = collect(backend, INDEX, dataset, idf, mv_encoder)
    pipeline = build_pipeline(name, backend, INDEX, idf_encoder=idf, multivector=mv_encoder)
    for qid, text in list(dataset.queries.items())[:15]:
        replay = [h.id for h in apply(evidence[qid], config)]
        assert [h.id for h in pipeline.search(text, k=50).hits] == replay[:50]
