"""The same vectors must give the same top-10 on every backend, and the exact dot product."""

from __future__ import annotations

import pytest

from lsrkit.core import Hit, IndexMissingError
from lsrkit.plugin import SearchPipeline, search_sparse

from ..conftest import unique_index

pytestmark = pytest.mark.models

# rank_features keeps ~9 significant bits per stored weight: relative error up to ~0.4 % per term
TOLERANCE = {"edge": 1e-4, "qdrant": 1e-4, "opensearch": 1e-2}


def _exhaustive(records, query, k=10):
    scores = {r.id: r.sparse.dot(query) for r in records}
    return sorted(((s, i) for i, s in scores.items() if s > 0), reverse=True)[:k], scores


def _assert_matches_exact(hits: list[Hit], records, query, rel: float) -> None:
    top, scores = _exhaustive(records, query)
    assert len(hits) == len(top)
    for hit in hits:
        assert hit.score == pytest.approx(scores[hit.id], rel=rel, abs=1e-4)
    # same ids, except candidates tied (within tolerance) with the 10th score
    cutoff = top[-1][0]
    firm = {i for s, i in top if s > cutoff * (1 + 2 * rel) + 1e-4}
    assert firm <= {h.id for h in hits}


def test_sparse_first_stage_is_the_exact_dot_product(backend, scenario):
    spec = unique_index(f"contract-{backend.name}")
    assert backend.ensure_index(spec)
    try:
        result = backend.write(spec.name, scenario["records"])
        assert not result.failed and len(result.written) == len(scenario["records"])
        backend.flush(spec.name)
        assert backend.count(spec.name) == len(scenario["records"])
        assert not backend.ensure_index(spec)  # exists: not clobbered
        for text in scenario["queries"]:
            query = scenario["query_encoder"].encode_queries([text])[0]
            hits = search_sparse(backend, spec.name, query, 10)
            _assert_matches_exact(hits, scenario["records"], query, TOLERANCE[backend.name])
            assert all(h.title is not None and h.text for h in hits)
    finally:
        backend.drop_index(spec.name)
    with pytest.raises(IndexMissingError):
        backend.count(spec.name)


def test_rerank_and_filters_agree_with_numpy(backend, scenario):
    """The rerank scores the stored compact codes exactly as a float matmul over their decoded
    values would (up to the query's 7-bit rounding), on every engine."""
    from lsrkit.core import RerankSettings
    from lsrkit.plugin.rerank import maxsim_scores

    spec = unique_index(f"contract-{backend.name}")
    backend.ensure_index(spec)
    codec = scenario["codec"]
    try:
        backend.write(spec.name, scenario["records"])
        backend.flush(spec.name)
        by_id = {r.id: r for r in scenario["records"]}
        pipeline = SearchPipeline(
            backend,
            spec.name,
            scenario["query_encoder"],
            multivector_encoder=scenario["mv_encoder"],
            rerank=True,
            codec=codec,
            settings=RerankSettings(kappa=20, k=5),
            aggregate=False,
        )
        text = scenario["queries"][0]
        result = pipeline.search(text, k=5)
        query_mv = scenario["mv_encoder"].encode_queries([text])[0].vectors
        sparse = scenario["query_encoder"].encode_queries([text])[0]
        candidates = search_sparse(backend, spec.name, sparse, 20)
        exact = dict(
            zip(
                [c.id for c in candidates],
                maxsim_scores(query_mv, [codec.decode(by_id[c.id].multivector).dequantize() for c in candidates]).tolist(),
                strict=True,
            )
        )
        expected = sorted(exact, key=lambda i: -exact[i])[:5]
        # each hit's score is its decoded vectors' MaxSim (up to the query's 7-bit rounding), and the
        # order is MaxSim's but for near ties
        for hit in result.hits:
            assert hit.stage_scores["maxsim"] == pytest.approx(exact[hit.id], rel=1e-2)
        assert {h.id for h in result.hits} - set(expected) <= {i for i in exact if exact[i] >= exact[expected[-1]] * 0.99}
        stored = backend.fetch_multivectors(spec.name, [expected[0], "no-such-id"])
        assert stored == {expected[0]: by_id[expected[0]].multivector}  # the bytes as written, once
        # metadata filters
        filtered = search_sparse(backend, spec.name, sparse, 10, filters={"parity": "even"})
        assert filtered and all(h.metadata["parity"] == "even" for h in filtered)
        graded = search_sparse(backend, spec.name, sparse, 10, filters={"grade": 0.5})  # a float value: an exact match too
        assert graded and all(h.metadata["grade"] == 0.5 for h in graded)
        whole = search_sparse(backend, spec.name, sparse, 10, filters={"grade": 1})  # an integer matches a stored 1.0
        assert whole and all(h.metadata["grade"] == 1.0 for h in whole)
    finally:
        backend.drop_index(spec.name)


def test_one_retrieval_serves_both_runs_per_document_and_without_text(backend, scenario):
    """The first stage's read: both runs at once equal each run alone; `documents` keeps each
    document's best passage; hits read without text carry ids, doc ids and the same scores, and
    `hydrate` fills them in; token vectors come back with the read where asked."""
    from lsrkit.plugin import Retrieval, search_text

    spec = unique_index(f"contract-read-{backend.name}")
    backend.ensure_index(spec)
    try:
        records = scenario["records"]
        # two passages of one document, the second weaker
        long = [r for r in records[:6]]
        split = [type(r)(f"{r.id}#{n}", "shared-doc", r.text, r.sparse, r.title, r.metadata, r.multivector) for n, r in enumerate(long)]
        backend.write(spec.name, records[6:] + split)
        backend.flush(spec.name)
        text = scenario["queries"][1]
        sparse = scenario["query_encoder"].encode_queries([text])[0]
        both = backend.retrieve(spec.name, Retrieval(sparse=sparse, text=text, limit=15, texts=True))
        assert [h.id for h in both.sparse] == [h.id for h in search_sparse(backend, spec.name, sparse, 15)]
        assert [h.id for h in both.bm25] == [h.id for h in search_text(backend, spec.name, text, 15)]
        bare = backend.retrieve(spec.name, Retrieval(sparse=sparse, limit=15, multivectors=True))
        assert [(h.id, h.metadata["doc_id"]) for h in bare.sparse] == [(h.id, h.metadata["doc_id"]) for h in both.sparse]
        assert [h.score for h in bare.sparse] == pytest.approx([h.score for h in both.sparse], rel=1e-6)
        assert not any(h.text for h in bare.sparse)
        assert [h.text for h in backend.hydrate(spec.name, bare.sparse)] == [h.text for h in both.sparse]
        by_id = {r.id: r for r in records[6:] + split}
        assert set(bare.multivectors) == {h.id for h in bare.sparse}
        assert all(by_id[i].multivector == v for i, v in bare.multivectors.items())
        both_bare = backend.retrieve(spec.name, Retrieval(sparse=sparse, text=text, limit=15, multivectors=True))
        assert [h.id for h in both_bare.sparse] == [h.id for h in both.sparse] and [h.id for h in both_bare.bm25] == [h.id for h in both.bm25]
        assert set(both_bare.multivectors) == {h.id for h in both_bare.sparse + both_bare.bm25}
        every = search_sparse(backend, spec.name, sparse, len(records) + len(split))
        best: dict[str, str] = {}
        for hit in every:
            best.setdefault(hit.metadata["doc_id"], hit.id)
        per_document = backend.retrieve(spec.name, Retrieval(sparse=sparse, limit=8, documents=True)).sparse
        assert [h.id for h in per_document] == list(best.values())[:8]
    finally:
        backend.drop_index(spec.name)


def test_a_rerank_whose_candidates_cover_too_few_documents_reads_on_by_document(backend, scenario):
    """κ passages of one long document are one document: the pipeline reads the first stage again,
    per document, and still returns k documents, the reranked ones first."""
    from lsrkit.core import RerankSettings

    spec = unique_index(f"contract-cover-{backend.name}")
    backend.ensure_index(spec)
    try:
        records = scenario["records"]
        text = scenario["queries"][2]
        sparse = scenario["query_encoder"].encode_queries([text])[0]
        # the six best passages become the parts of one document
        best = sorted(records, key=lambda r: -r.sparse.dot(sparse))[:6]
        long = [type(r)(f"long#{n}", "long", r.text, r.sparse, r.title, r.metadata, r.multivector) for n, r in enumerate(best)]
        backend.write(spec.name, [r for r in records if r not in best] + long)
        backend.flush(spec.name)
        pipeline = SearchPipeline(
            backend,
            spec.name,
            scenario["query_encoder"],
            multivector_encoder=scenario["mv_encoder"],
            rerank=True,
            codec=scenario["codec"],
            settings=RerankSettings(kappa=6, k=5),
        )
        hits = pipeline.search(text, k=5).hits
        assert len(hits) == 5 and len({h.id for h in hits}) == 5
        assert "long" in {h.id for h in hits}
        assert all(h.text for h in hits)
    finally:
        backend.drop_index(spec.name)


def test_documents_are_read_back_whole_and_deleted(backend, scenario):
    """What updates and deletes rest on: every passage of the asked documents read back, and gone
    once deleted (an id never stored is no error)."""
    spec = unique_index(f"docs-{backend.name}")
    backend.ensure_index(spec)
    try:
        records = scenario["records"]
        backend.write(spec.name, records)
        backend.flush(spec.name)
        wanted = sorted({r.doc_id for r in records})[:3]
        hits = backend.read_documents(spec.name, wanted)
        expected = {(r.id, r.doc_id, r.title, r.text) for r in records if r.doc_id in wanted}
        assert {(h.id, h.metadata["doc_id"], h.title, h.text) for h in hits} == expected
        assert len(backend.read_documents(spec.name, [r.doc_id for r in records])) == len(records)
        backend.delete(spec.name, [h.id for h in hits] + ["never-stored"])
        backend.flush(spec.name)
        assert backend.read_documents(spec.name, wanted) == [] and backend.count(spec.name) == len(records) - len(expected)
    finally:
        backend.drop_index(spec.name)
