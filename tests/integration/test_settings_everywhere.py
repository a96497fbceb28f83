"""Every way of building a pipeline runs it with the same tuned settings, the ones of the one
defaults file (core/tuned.json): `lsrkit search`, `Index.search`, a `SearchPipeline` built with
defaults, and `lsrkit serve`."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.models


def test_cli_index_search_pipeline_and_serve_use_the_same_settings(tmp_path, sparse_encoder, mv_encoder, mini_docs, monkeypatch):
    from starlette.testclient import TestClient
    from typer.testing import CliRunner

    from lsrkit.cli import app as cli
    from lsrkit.core.defaults import load_tuned
    from lsrkit.factory import PIPELINES, BackendOptions, PipelineShape
    from lsrkit.index import Index
    from lsrkit.plugin import SearchPipeline
    from lsrkit.service.app import create_app
    from lsrkit.service.settings import ServiceSettings

    options = BackendOptions("edge", data_dir=tmp_path)
    with Index("t", backend=options, encoders=(sparse_encoder, mv_encoder)) as index:
        index.ingest(mini_docs[:40], progress=False)
        from_index = {name: index.pipeline(name).describe() for name in PIPELINES}
        assert {h.id for h in index.search("cells", k=5)}  # the default pipeline answers
        defaults = {}
        for name in PIPELINES:
            shape = PipelineShape.of(name)
            if shape.pruned or name == "sparse-model":  # pruning and the model encoder are named, not defaults
                continue
            built = SearchPipeline(
                index.backend,
                "t",
                index.idf_encoder() if shape.first_stage != "bm25" else None,
                multivector_encoder=index.query_multivector_encoder() if shape.reranked else None,
                rerank=shape.reranked,
                first_stage=shape.first_stage,
            )
            defaults[name] = built.describe()
            built.close()

    from_cli = {}
    for name in PIPELINES:
        ran = CliRunner().invoke(cli, ["search", "cells", "--backend", "edge", "--index", "t", "--data-dir", str(tmp_path), "--pipeline", name, "--json"])
        assert ran.exit_code == 0, ran.output
        from_cli[name] = json.loads(ran.output.strip().splitlines()[-1])["settings"]

    monkeypatch.delenv("LSRKIT_API_KEY", raising=False)
    with TestClient(create_app(ServiceSettings(index="t", backend=options))) as client:
        served = client.get("/pipelines").json()

    assert from_cli == from_index == served
    assert all(defaults[name] == from_index[name] for name in defaults)
    # and they are the file's numbers, not a copy of them
    tuned = load_tuned()
    assert from_index["sparse-idf+rerank"]["kappa"] == tuned.sparse_rerank.kappa
    assert from_index["sparse-idf+rerank"]["interpolation"] == tuned.sparse_rerank.interpolation
    assert from_index["hybrid+rerank"]["kappa"] == tuned.hybrid_rerank.kappa
    assert from_index["hybrid+rerank"]["hybrid"]["weights"] == [tuned.hybrid_rerank.bm25_weight, 1.0 - tuned.hybrid_rerank.bm25_weight]
    assert (from_index["hybrid+rerank-pruned"]["alpha"], from_index["hybrid+rerank-pruned"]["beta"]) == (tuned.alpha, tuned.beta)


def test_tune_writes_the_defaults_file_every_pipeline_reads(tmp_path, monkeypatch):
    """`--write-defaults` replaces its section of the defaults file in use ($LSRKIT_TUNED here: a
    copy), keeps the rest, and every way of building settings reads the new numbers."""
    import shutil

    from lsrkit.core import RerankSettings
    from lsrkit.core.defaults import TUNED_FILE, load_tuned, tuned, write_tuned_section
    from lsrkit.core.errors import ConfigError
    from lsrkit.factory import QualitySettings
    from lsrkit.plugin import HybridSettings
    from lsrkit.tuning import defaults_section, run_tune

    copy = tmp_path / "tuned.json"
    shipped = TUNED_FILE.read_bytes()
    shutil.copy(TUNED_FILE, copy)
    monkeypatch.setenv("LSRKIT_TUNED", str(copy))
    tuned.cache_clear()
    try:
        before = load_tuned()
        chosen = {
            "hybrid": {"config": {"fusion": "rrf", "bm25_weight": 0.3}},
            "sparse+rerank": {"config": {"kappa": 50, "interpolation": 0.1}},
            "hybrid+rerank": {"config": {"fusion": "minmax", "bm25_weight": 0.6, "kappa": 20, "interpolation": 0.3}},
        }
        assert write_tuned_section("pipelines", defaults_section(chosen), source={"dataset": "x", "split": "train"}) == copy
        after = load_tuned()
        assert (after.alpha, after.beta, after.multivector_representation) == (before.alpha, before.beta, before.multivector_representation)
        assert (RerankSettings.tuned("sparse").kappa, RerankSettings.tuned("sparse").interpolation) == (50, 0.1)
        quality = QualitySettings()
        assert (quality.sparse_kappa, quality.hybrid_kappa, quality.hybrid_interpolation) == (50, 20, 0.3)
        assert (HybridSettings().method, HybridSettings().weights) == ("rrf", (0.3, 0.7))
        assert HybridSettings.tuned(reranked=True).weights == (0.6, 0.4)
        assert TUNED_FILE.read_bytes() == shipped != copy.read_bytes()  # the copy written, the shipped file untouched
        with pytest.raises(ConfigError, match="train split"):
            run_tune(tmp_path, split="test", write_defaults=True)
    finally:
        monkeypatch.delenv("LSRKIT_TUNED")
        tuned.cache_clear()


def test_a_built_index_keeps_its_representation_and_a_dropped_one_takes_the_default(tmp_path, sparse_encoder, mv_encoder, mini_docs):
    """The tuned representation is a new index's default only: reopened without one, an index is
    extended with the codes it was built with; dropped, the next build takes the default again."""
    from lsrkit.core.config import default_representation
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index

    options = BackendOptions("edge", data_dir=tmp_path)
    other = "int8" if default_representation() != "int8" else "1bit"
    with Index("t", backend=options, encoders=(sparse_encoder, mv_encoder), representation=other) as index:
        index.ingest(mini_docs[:8], progress=False)
    with Index("t", backend=options, encoders=(sparse_encoder, mv_encoder)) as index:
        assert index.representation == other
        index.ingest(mini_docs[8:12], progress=False)  # no "exists with another layout"
        assert index.codec().name == other and index.count() >= 12
        index.drop()
        assert index.representation == default_representation()
