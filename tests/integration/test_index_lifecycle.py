"""Indexes that live: any sequence of add/update/delete jobs, some stopped by a crash at any engine
call and run again, ends with the index a single ingest of the final corpus builds: the same
passages, the same vectors and the same corpus statistics (IDF). On Qdrant Edge and on OpenSearch."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsrkit.index import Index
from lsrkit.plugin import CODEC_META, search_sparse

from ..conftest import CLUSTER_SIZES

pytestmark = pytest.mark.models

DOCS = ["a", "b", "c", "d", "e"]


class Crash(Exception):
    """A job killed at an engine call (before or after the engine did it)."""


class Crashing:
    """The backend, dying at its n-th write, delete or put_meta (or only the calls named `only`)."""

    def __init__(self, backend: Any, at: int, after: bool, only: str | None = None) -> None:
        self._backend, self._left, self._after, self._only = backend, at, after, only

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._backend, name)
        if name not in ("write", "delete", "put_meta") or (self._only is not None and name != self._only):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._left -= 1
            if self._left == 0 and not self._after:
                raise Crash(f"before {name}")
            result = attribute(*args, **kwargs)
            if self._left == 0:
                raise Crash(f"after {name}")
            return result

        return call


def _texts(mini_docs: list[dict]) -> dict[str, dict[str, dict[str, str]]]:
    """Per document id, a short version (one passage) and a long one (several)."""
    texts = {}
    for n, doc in enumerate(DOCS):
        parts = mini_docs[3 * n : 3 * n + 3]
        texts[doc] = {
            "short": {"_id": doc, "title": parts[0]["title"], "text": parts[0]["text"][:200]},
            "long": {"_id": doc, "title": parts[0]["title"], "text": " ".join(p["text"] for p in parts)},
        }
    return texts


upsert = st.tuples(st.just("upsert"), st.dictionaries(st.sampled_from(DOCS), st.sampled_from(["short", "long"]), min_size=1, max_size=3))
delete = st.tuples(st.just("delete"), st.lists(st.sampled_from(DOCS), min_size=1, max_size=2, unique=True))
# a delete needs an index: the first job writes one
operations = st.tuples(upsert, st.lists(st.one_of(upsert, delete), min_size=1, max_size=3)).map(lambda jobs: [jobs[0], *jobs[1]])
crashes = st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(1, 4), st.booleans()))  # (which job, which call, after it?)


def _state(index: Index) -> dict[str, Any]:
    passages = index.backend.read_documents(index.name, DOCS)
    ids = sorted(h.id for h in passages)
    stats = index.backend.get_meta(index.name, "idf") or {}
    queries = index.idf_encoder().encode_queries(["cells energy", "cancer risk mutation", "protein immune response"])
    return {
        "passages": sorted((h.id, h.metadata["doc_id"], h.title, h.text) for h in passages),
        "vectors": index.backend.fetch_multivectors(index.name, ids),
        "sparse": [sorted((h.id, round(h.score, 4)) for h in search_sparse(index.backend, index.name, q, 50)) for q in queries],
        "statistics": {k: stats.get(k) for k in ("n_docs", "ids", "counts")},
    }


def _run_lifecycle(open_index: Callable[[str], Index], mini_docs: list[dict], ops: list[tuple[str, Any]], crash: tuple[int, int, bool] | None) -> None:
    texts = _texts(mini_docs)
    folder = Path(tempfile.mkdtemp(prefix="lsrkit-lifecycle-"))
    live, rebuilt = open_index(f"live-{uuid.uuid4().hex[:8]}"), open_index(f"rebuilt-{uuid.uuid4().hex[:8]}")
    try:
        final: dict[str, dict[str, str]] = {}
        for n, (kind, what) in enumerate(ops):
            source = folder / f"job-{n}.jsonl"
            if kind == "upsert":
                source.write_text("".join(json.dumps(texts[d][v]) + "\n" for d, v in what.items()))
                final.update({d: texts[d][v] for d, v in what.items()})
            else:
                final = {d: r for d, r in final.items() if d not in what}

            def job(index: Index, resume: bool, kind: str = kind, what: Any = what, source: Path = source) -> None:
                if kind == "upsert":
                    index.ingest(source, resume=resume, progress=False)
                else:
                    index.delete(what)

            if crash is not None and crash[0] == n:
                backend = live.backend
                live.backend = Crashing(backend, crash[1], crash[2])
                try:
                    job(live, resume=False)
                except Crash:
                    pass
                finally:
                    live.backend = backend
                job(live, resume=True)  # the same job, run again
            else:
                job(live, resume=False)
        if not final:
            assert live.backend.read_documents(live.name, DOCS) == []
            assert (live.backend.get_meta(live.name, "idf") or {}).get("n_docs", 0) == 0
            return
        # the rebuild decodes alike: the same codec (calibrated on a first batch) is given to it
        source = folder / "final.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in final.values()))
        codec = live.backend.get_meta(live.name, CODEC_META)
        assert codec is not None
        rebuilt.backend.ensure_index(rebuilt.spec())
        rebuilt.backend.put_meta(rebuilt.name, CODEC_META, codec)
        rebuilt.ingest(source, progress=False)
        assert _state(live) == _state(rebuilt)
    finally:
        for index in (live, rebuilt):
            index.drop()
            index.close()
        shutil.rmtree(folder, ignore_errors=True)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=operations, crash=crashes)
def test_edge_lifecycle_equals_a_rebuild(ops, crash, sparse_encoder, mv_encoder, mini_docs, tmp_path_factory):
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    root = tmp_path_factory.mktemp("edge")
    backend = QdrantEdgeBackend(root / "edge")
    try:
        _run_lifecycle(lambda name: Index(name, backend=backend, data_dir=root, encoders=(sparse_encoder, mv_encoder)), mini_docs, ops, crash)
    finally:
        backend.close()


def _opensearch_lifecycle(url: str, sizes: dict[str, Any], ops, crash, encoders, mini_docs, root: Path) -> None:
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    backend = OpenSearchBackend(client_from_env(url), vocab=encoders[0].vocab)
    try:
        _run_lifecycle(lambda name: Index(name, backend=backend, data_dir=root, encoders=encoders, **sizes), mini_docs, ops, crash)
    finally:
        backend.close()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=operations, crash=crashes)
def test_opensearch_lifecycle_equals_a_rebuild(ops, crash, opensearch_url, sparse_encoder, mv_encoder, mini_docs, tmp_path_factory):
    _opensearch_lifecycle(opensearch_url, {}, ops, crash, (sparse_encoder, mv_encoder), mini_docs, tmp_path_factory.mktemp("os"))


@pytest.mark.cluster
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=operations, crash=crashes)
def test_cluster_lifecycle_equals_a_rebuild(ops, crash, opensearch_cluster_url, sparse_encoder, mv_encoder, mini_docs, tmp_path_factory):
    """The same on a multi-node cluster, every index in 3 shards with a replica each."""
    _opensearch_lifecycle(opensearch_cluster_url, CLUSTER_SIZES, ops, crash, (sparse_encoder, mv_encoder), mini_docs, tmp_path_factory.mktemp("cluster"))


def test_a_shrunk_document_leaves_no_stale_passage_and_the_idf_counts_the_whole_index(tmp_path, sparse_encoder, mv_encoder, mini_docs):
    """The issue's example: three documents, one long; the long one shrinks in a second job with
    one other document: no stale passage, its old words no longer find it, and the IDF of a
    token only the untouched third document has is unchanged."""
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    texts = _texts(mini_docs)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(json.dumps(texts[d][v]) + "\n" for d, v in (("a", "long"), ("b", "short"), ("c", "short"))))
    second.write_text("".join(json.dumps(texts[d][v]) + "\n" for d, v in (("a", "short"), ("d", "short"))))
    with Index("t", backend=QdrantEdgeBackend(tmp_path / "edge"), data_dir=tmp_path, encoders=(sparse_encoder, mv_encoder)) as index:
        index.ingest(first, progress=False)
        assert len(index.backend.read_documents("t", ["a"])) >= 3
        index.ingest(second, progress=False)
        assert [h.id for h in index.backend.read_documents("t", ["a"])] == ["a#0"] and index.count() == 4
        old_words = texts["a"]["long"]["text"][-400:]
        assert all(old_words[-80:] not in h.text for h in index.search(old_words, pipeline="bm25", k=4))
        # the statistics are the whole index's: 4 passages, and a token only the untouched third
        # document has is still counted once
        tokens = sparse_encoder.model.tokenizer.token_ids
        sets = {
            d: set(tokens([f"{r['title']} {r['text']}"], add_special_tokens=False)[0])
            for d, r in (("a", texts["a"]["short"]), ("b", texts["b"]["short"]), ("c", texts["c"]["short"]), ("d", texts["d"]["short"]))
        }
        only_in_c = min(sets["c"] - sets["a"] - sets["b"] - sets["d"])
        stats = index.backend.get_meta("t", "idf")
        assert stats["n_docs"] == 4 and dict(zip(stats["ids"], stats["counts"], strict=True))[only_in_c] == 1
        summary = index.delete(["c", "nope"])
        assert (summary.documents, summary.passages, summary.not_found) == (1, 1, ["nope"]) and index.count() == 3
        stats = index.backend.get_meta("t", "idf")
        assert stats["n_docs"] == 3 and only_in_c not in stats["ids"]


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_every_crash_point_of_an_update_and_a_delete(after, sparse_encoder, mv_encoder, mini_docs, tmp_path_factory):
    """The second job (an update that shrinks and adds) and the third (a delete) killed at each of
    their engine calls in turn — before it, and after the engine did it — then run again."""
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    ops = [("upsert", {"a": "long", "b": "short"}), ("upsert", {"a": "short", "c": "long"}), ("delete", ["b", "c"])]
    root = tmp_path_factory.mktemp("sweep")
    backend = QdrantEdgeBackend(root / "edge")
    try:
        for job in (1, 2):
            for call in range(1, 5):
                _run_lifecycle(
                    lambda name: Index(name, backend=backend, data_dir=root, encoders=(sparse_encoder, mv_encoder)), mini_docs, ops, (job, call, after)
                )
    finally:
        backend.close()


def test_crashes_of_an_update_and_a_delete_on_opensearch(opensearch_url, sparse_encoder, mv_encoder, mini_docs, tmp_path_factory):
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    ops = [("upsert", {"a": "long", "b": "short"}), ("upsert", {"a": "short", "c": "long"}), ("delete", ["b", "c"])]
    root = tmp_path_factory.mktemp("os-sweep")
    backend = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    try:
        for crash in (
            (1, 1, True),
            (1, 2, False),
            (1, 3, True),
            (2, 1, True),
        ):  # after the write, before the stale delete, after the statistics; after the delete
            _run_lifecycle(lambda name: Index(name, backend=backend, data_dir=root, encoders=(sparse_encoder, mv_encoder)), mini_docs, ops, crash)
    finally:
        backend.close()


@pytest.mark.parametrize("stop_after", ["write", "delete"])
def test_a_batch_left_half_done_is_finished_by_the_next_job_on_another_machine(stop_after, sparse_encoder, mv_encoder, mini_docs, tmp_path):
    """An update job dies after its batch's write (or its deletes), never to be resumed; a job on
    another machine (another state folder) then ingests other documents: it finishes the stopped
    batch from the engine's journal first, so the statistics count exactly the passages stored."""
    from lsrkit.core.types import passage_text
    from lsrkit.encoders.idf import DocFreqCounter
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    texts = _texts(mini_docs)
    backend = QdrantEdgeBackend(tmp_path / "edge")
    here = Index("t", backend=backend, data_dir=tmp_path / "here", encoders=(sparse_encoder, mv_encoder))
    here.ingest([texts["a"]["long"], texts["b"]["short"]], progress=False)
    here.backend = Crashing(backend, 1, after=True, only=stop_after)
    with pytest.raises(Crash):
        here.ingest([texts["a"]["short"], texts["c"]["long"]], progress=False)
    here.backend = backend
    assert backend.get_meta("t", "journal-open")["ids"]  # the stopped batch is open in the engine
    elsewhere = Index("t", backend=backend, data_dir=tmp_path / "elsewhere", encoders=(sparse_encoder, mv_encoder))
    elsewhere.ingest([texts["d"]["short"]], progress=False)
    stored = backend.read_documents("t", DOCS)
    fresh = DocFreqCounter(len(sparse_encoder.vocab))
    fresh.add(sparse_encoder.model.tokenizer.token_ids([passage_text(h.title, h.text) for h in stored], add_special_tokens=False))
    stats = backend.get_meta("t", "idf")
    assert {k: stats[k] for k in ("n_docs", "ids", "counts")} == fresh.state()
    assert backend.get_meta("t", "journal-open")["ids"] == []
    backend.close()
