"""`lsrkit bench peers` on 30 documents of the bundled mini corpus: the JSON, every system's rankings made of the
corpus' documents, and exhaustive MaxSim equal to a naive loop. PLAID runs only where its own
environment (scripts/setup-peers-env.sh) exists: CI does not make it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import beir_subset

pytestmark = pytest.mark.models

QUERIES = 6
ROW_KEYS = {"ndcg10", "recall100", "p50_ms", "p99_ms", "encode_ms", "bytes_per_passage", "build_seconds", "min_documents_returned", "ranking"}


@pytest.fixture(scope="module")
def peers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return beir_subset(tmp_path_factory.mktemp("data") / "scifact-mini-30", 30)  # 6 judged queries


@pytest.fixture(scope="module")
def peers_run(peers_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    from lsrkit.bench.peers import run

    data_dir = tmp_path_factory.mktemp("bench-peers")
    return run(dataset=peers_dir, data_dir=data_dir, queries=QUERIES, plaid=False), data_dir


def _corpus_ids(peers_dir: Path) -> set[str]:
    with (peers_dir / "corpus.jsonl").open(encoding="utf-8") as handle:
        return {str(json.loads(line)["_id"]) for line in handle}


def test_every_system_ranks_documents_of_the_corpus(peers_run: tuple[dict[str, Any], Path], peers_dir: Path) -> None:
    from lsrkit.bench.peers import LSRKIT_SYSTEMS, MUVERA_CANDIDATES

    result, _ = peers_run
    expected = {f"lsrkit {n}" for n in LSRKIT_SYSTEMS} | {"exhaustive float MaxSim", "MUVERA", f"MUVERA + MaxSim rerank of {MUVERA_CANDIDATES}"}
    assert set(result["systems"]) == expected
    corpus = _corpus_ids(peers_dir)
    for name, row in result["systems"].items():
        assert set(row) == ROW_KEYS, name
        assert len(row["ranking"]) == QUERIES, name
        for docs in row["ranking"].values():
            assert docs and set(docs) <= corpus and len(docs) == len(set(docs)), name
        assert 0.0 <= row["ndcg10"] <= 1.0 and 0.0 <= row["recall100"] <= 1.0
        assert 0 < row["encode_ms"] and 0 < row["p50_ms"] <= row["p99_ms"], name
        if not name.startswith("lsrkit"):  # encoding, then search: each query's total holds its encoding
            assert row["encode_ms"] <= row["p50_ms"], name
        assert row["bytes_per_passage"] > 0
    assert result["queries"] == QUERIES and result["passages"] >= result["documents"] > 0
    assert result["lsrkit_best"] in expected and result["speedup_vs_plaid_at_equal_ndcg"] is None and result["plaid"] == "not run (--no-plaid)"


def test_exhaustive_maxsim_is_the_naive_loop(peers_run: tuple[dict[str, Any], Path], peers_dir: Path) -> None:
    """The first query's ranking: every passage scored on its own by Σ_q max_d q·d."""
    from lsrkit.bench.peers import _passages
    from lsrkit.evaluation import load_beir
    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index

    result, data_dir = peers_run
    data = load_beir(peers_dir)
    qid = next(q for q in data.queries if q in data.qrels)
    cache = next((data_dir / "bench-peers").glob("*.npz"))
    with np.load(cache) as stored:
        ends = np.cumsum(stored["lengths"])
        rows = stored["rows"].astype(np.float32)
        vectors = [rows[end - n : end] for end, n in zip(ends.tolist(), stored["lengths"].tolist())]
    from lsrkit.eval_command import default_index

    with Index(default_index(peers_dir), backend=BackendOptions("edge", data_dir=data_dir)) as target:
        passages = _passages(data.corpus, target.idf_encoder().tokenizer.tokenizer)
        query = target.query_multivector_encoder().encode_queries([data.queries[qid]])[0].vectors
    best: dict[str, float] = {}
    for passage, tokens in zip(passages, vectors):
        score = float((tokens @ query.T).max(axis=0).sum())  # this passage alone: no concatenation, no reduceat
        best[passage.doc_id] = max(best.get(passage.doc_id, -np.inf), score)
    naive = sorted(best, key=lambda d: -best[d])[:5]
    assert result["systems"]["exhaustive float MaxSim"]["ranking"][qid][:5] == naive


def test_plaid_in_its_own_environment(peers_run: tuple[dict[str, Any], Path], peers_dir: Path) -> None:
    from lsrkit.bench.peers import PEERS_ENV, run

    if not (PEERS_ENV / "bin" / "python").is_file():
        pytest.skip(f"PLAID's environment {PEERS_ENV} is not made (scripts/setup-peers-env.sh; CI does not download its torch)")
    one_setting = {"nbits": [2, 4], "search": [{"n_ivf_probe": 8, "n_full_scores": 4096}]}  # fast-plaid's search default only: the sweep is the bench's
    result = run(dataset=peers_dir, data_dir=peers_run[1], queries=4, plaid=True, plaid_settings=one_setting)
    plaid = {n: r for n, r in result["systems"].items() if n.startswith("plaid-")}
    assert sorted(plaid) == ["plaid-nbits2-ivf8-full4096", result["plaid_default"]]
    corpus = _corpus_ids(peers_dir)
    for row in plaid.values():
        assert all(docs and set(docs) <= corpus for docs in row["ranking"].values())
    speedup = result["speedup_vs_plaid_at_equal_ndcg"] if result["plaid_reaches_lsrkit_ndcg"] else result["speedup_vs_plaid_best_ndcg"]
    assert speedup > 0
    builds = {row["settings"]["nbits"]: row["build"] for row in plaid.values()}
    assert builds[2]["kmeans_reused"] is False and builds[4]["kmeans_reused"] is True  # one k-means for both
    assert not any(b["kept_from_an_earlier_run"] for b in builds.values())

    again = run(dataset=peers_dir, data_dir=peers_run[1], queries=4, plaid=True, plaid_settings=one_setting)
    kept = {n: r for n, r in again["systems"].items() if n.startswith("plaid-")}
    for name, row in kept.items():  # the indexes of the first run, same build record, same rankings
        assert row["build"]["kept_from_an_earlier_run"] and row["build_seconds"] == plaid[name]["build_seconds"]
        assert row["ranking"] == plaid[name]["ranking"]
