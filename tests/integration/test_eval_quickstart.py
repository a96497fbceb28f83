"""Evaluation is honest (it agrees with an exhaustive numpy computation); the CLI's main job runs
end to end on the packaged SciFact subset, and the eval command on the index that job built."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lsrkit.quickstart import INDEX as QUICKSTART_INDEX
from lsrkit.quickstart import dataset_dir as quickstart_dataset_dir

pytestmark = [pytest.mark.models, pytest.mark.slow]


def test_sparse_pipeline_scores_equal_an_exhaustive_numpy_run(tmp_path, mini_subset_dir, sparse_encoder):
    from lsrkit.core import Document
    from lsrkit.encoders import IdfQueryEncoder
    from lsrkit.evaluation import load_beir, run_queries, score_run
    from lsrkit.factory import build_pipeline
    from lsrkit.index import Index
    from lsrkit.ingest import Chunker, read_records
    from lsrkit.plugin.index_meta import load_index_idf
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    dataset = load_beir(mini_subset_dir)
    backend = QdrantEdgeBackend(tmp_path / "edge")
    Index("mini", backend=backend, data_dir=tmp_path, encoders=(sparse_encoder, None)).ingest(dataset.corpus, progress=False)
    idf = IdfQueryEncoder("splade-tiny", idf=load_index_idf(backend, "mini", sparse_encoder.vocab))
    run, _ = run_queries(build_pipeline("sparse-idf", backend, "mini", idf_encoder=idf, multivector=None), dataset.queries, k=100)

    # the independent computation: every passage re-encoded, one sparse matrix, numpy dot products
    chunker = Chunker(sparse_encoder.model.tokenizer.tokenizer)
    passages = [p for r in read_records(dataset.corpus) for p in chunker.split(Document(r.data["_id"], r.data["text"], r.data["title"]))]
    vectors = sparse_encoder.encode_documents([f"{p.title} {p.text}".strip() for p in passages])
    matrix = np.zeros((len(passages), len(sparse_encoder.vocab)), dtype=np.float32)
    for row, v in enumerate(vectors):
        matrix[row, v.ids] = v.weights
    exhaustive: dict[str, dict[str, float]] = {}
    for qid, text in dataset.queries.items():
        q = idf.encode_queries([text])[0]
        scores = matrix[:, q.ids] @ q.weights
        best: dict[str, float] = {}
        for p, s in zip(passages, scores.tolist()):
            if s > 0 and s > best.get(p.doc_id, -1.0):
                best[p.doc_id] = s
        top = sorted(best.items(), key=lambda kv: -kv[1])[:100]
        exhaustive[qid] = dict(top)
        engine = run[qid]
        for doc_id, score in list(engine.items())[:10]:
            assert score == pytest.approx(best[doc_id], rel=1e-4)
    ours, reference = score_run(run, dataset.qrels), score_run(exhaustive, dataset.qrels)
    for metric in ("ndcg10", "recall100", "mrr10"):
        assert ours[metric] == pytest.approx(reference[metric], abs=1e-3)
    backend.close()


def _cli(*args: str, cwd) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "lsrkit.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_quickstart_main_job(quickstart_run):
    result, data_dir = quickstart_run
    assert result["docs_ingested"] == 400 and result["index_points"] >= 400
    assert result["queries"] == 60
    assert 0.5 < result["ndcg10_sparse"] < result["ndcg10_rerank"] <= 1.0
    example = result["example"]
    assert result["query_ms_p50"] > 0 and len(example["hits"]) == 5 and example["relevant"]
    # each hit says whether it is judged relevant and where the first stage had it
    assert all(h["relevant"] == (h["id"] in example["relevant"]) for h in example["hits"])
    assert all(h["first_stage_rank"] is None or 1 <= h["first_stage_rank"] <= example["first_stage_depth"] for h in example["hits"])
    again = _cli("quickstart", "--json", "--data-dir", str(data_dir), cwd=data_dir.parent)  # reuses the index
    assert again["ndcg10_rerank"] == result["ndcg10_rerank"] and again["ndcg10_sparse"] == result["ndcg10_sparse"]
    assert [p.name for p in data_dir.parent.iterdir()] == [data_dir.name]  # nothing written outside the data folder


def test_eval_command_with_report(tmp_path, quickstart_run):
    """`lsrkit eval` of the packaged subset, on a copy of the main job's data folder: eval reuses an
    index a job finished on the same source with the same encoders (nothing is encoded again)."""
    dataset_dir = quickstart_dataset_dir()
    shutil.copytree(quickstart_run[1], tmp_path / "data")
    report = tmp_path / "report" / "mini"
    result = _cli(
        "eval",
        "--dataset",
        str(dataset_dir),
        "--backend",
        "edge",
        "--data-dir",
        str(tmp_path / "data"),
        "--pipelines",
        "bm25,sparse-idf,hybrid,hybrid+rerank",
        "--report",
        str(report),
        "--json",
        cwd=tmp_path,
    )
    assert set(result["pipelines"]) == {"bm25", "sparse-idf", "hybrid", "hybrid+rerank"}
    for metrics in result["pipelines"].values():
        assert set(metrics) >= {"ndcg10", "recall100", "mrr10", "p50_ms", "p95_ms"}
        assert 0 < metrics["ndcg10"] <= 1
    assert report.with_suffix(".md").read_text().count("|") > 20
    assert report.with_suffix(".png").stat().st_size > 10_000
    assert result["models"]["sparse"]["model"] == "splade-tiny" and result["models"]["multivector"]["model"] == "minilm-l6"

    # the Python API, given nothing but engine, index and data folder, scores as the CLI did
    from lsrkit import BackendOptions, Index
    from lsrkit.evaluation import load_beir, score_run

    assert result["ingest"]["reused"] and result["index"] == QUICKSTART_INDEX and result["index_points"] == quickstart_run[0]["index_points"]
    dataset = load_beir(dataset_dir)
    with Index(result["index"], backend=BackendOptions("edge", data_dir=tmp_path / "data")) as index:
        for name in ("bm25", "hybrid+rerank"):
            run = {qid: {h.id: h.score for h in index.search(text, pipeline=name, k=100)} for qid, text in dataset.queries.items()}
            assert score_run(run, dataset.qrels)["ndcg10"] == pytest.approx(result["pipelines"][name]["ndcg10"], abs=1e-4)
