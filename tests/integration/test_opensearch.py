"""OpenSearchBackend against a real OpenSearch (docker/opensearch-local.sh)."""

from __future__ import annotations

import uuid

import pytest

from lsrkit.core import IndexExistsError, IndexSpec
from lsrkit.plugin import Retrieval, Retrieved, SearchPipeline, default_representation, index_codec, search_sparse, search_text
from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env, rank_feature_query

pytestmark = [pytest.mark.models, pytest.mark.opensearch]


@pytest.fixture(scope="module")
def ingested(opensearch_url, sparse_encoder, mv_encoder, scifact_dir, tmp_path_factory):
    """100 SciFact documents ingested by the real job into a unique index."""
    import itertools
    import json

    from lsrkit.ingest import IngestJob

    source = tmp_path_factory.mktemp("os") / "corpus.jsonl"
    with (scifact_dir / "corpus.jsonl").open() as handle:
        source.write_text("".join(itertools.islice(handle, 100)))
    backend = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    spec = IndexSpec(f"it-{uuid.uuid4().hex[:10]}", multivector_dim=mv_encoder.dim)
    pipeline = IngestJob(
        backend, spec, sparse_encoder, sparse_encoder.model.tokenizer, multivector_encoder=mv_encoder, state_dir=source.parent / "state", progress=False
    )
    summary = pipeline.run(source)
    docs = [json.loads(line) for line in source.open()]
    yield backend, spec, summary, docs
    backend.drop_index(spec.name)
    backend.close()


def test_count_and_summary(ingested):
    backend, spec, summary, docs = ingested
    assert summary.documents == len(docs) == 100 and summary.rejected == 0
    assert backend.count(spec.name) == summary.passages_written >= 100


def test_bm25_finds_a_title(ingested):
    backend, spec, _, docs = ingested
    hits = search_text(backend, spec.name, docs[42]["title"], 5)
    assert hits[0].metadata["doc_id"] == docs[42]["_id"]


def test_bm25_stems_and_drops_stopwords(ingested):
    """The text is analyzed in the index's language: a title's words inflected otherwise, with
    stopwords around them, still find it."""
    backend, spec, _, docs = ingested
    words = [w for w in docs[42]["title"].split() if w.isalpha() and len(w) > 3][:4]
    inflected = " ".join(w + "s" if not w.endswith("s") else w[:-1] for w in words)
    hits = search_text(backend, spec.name, f"the {inflected} of the", 5)
    assert docs[42]["_id"] in {h.metadata["doc_id"] for h in hits}


def test_rank_feature_scores_equal_the_dot_product(ingested, sparse_encoder):
    backend, spec, _, docs = ingested
    from lsrkit.encoders import IdfQueryEncoder
    from lsrkit.plugin.index_meta import load_index_idf

    encoder = IdfQueryEncoder("splade-tiny", idf=load_index_idf(backend, spec.name, sparse_encoder.vocab))
    query = encoder.encode_queries([docs[7]["title"]])[0]
    hits = search_sparse(backend, spec.name, query, 5)
    stored = {h.id: h for h in hits}
    texts = {d["_id"]: f"{d['title']} {d['text']}".strip() for d in docs}
    by_id = {d["_id"]: d for d in docs}
    for hit_id, hit in stored.items():
        doc_id = hit_id.rsplit("#", 1)[0]
        if hit.text != by_id[doc_id]["text"]:
            continue  # a chunk of a long document: its text is a window, checked by the contract suite
        doc_vector = sparse_encoder.encode_documents([texts[doc_id]])[0]
        assert hit.score == pytest.approx(doc_vector.dot(query), rel=1e-2)


def test_dotted_tokens_are_queryable(ingested, sparse_encoder):
    """Tokens such as '.' cannot be rank_features names as is; lsrkit escapes them reversibly."""
    backend, spec, _, _ = ingested
    from lsrkit.core import SparseVector

    dot_id = sparse_encoder.vocab.index(".")
    hits = search_sparse(backend, spec.name, SparseVector.from_dict({dot_id: 1.0}), 3)
    assert hits  # every passage with a '.' expansion is found
    assert "sparse.%2E" in str(rank_feature_query(SparseVector.from_dict({dot_id: 1.0}), sparse_encoder.vocab))


def test_hybrid_rerank_and_one_round_trip_fetch(ingested, sparse_encoder, mv_encoder):
    backend, spec, _, docs = ingested
    from lsrkit.core import RerankSettings
    from lsrkit.encoders import IdfQueryEncoder
    from lsrkit.plugin.index_meta import load_index_idf

    encoder = IdfQueryEncoder("splade-tiny", idf=load_index_idf(backend, spec.name, sparse_encoder.vocab))
    query = docs[3]["title"]
    hybrid = SearchPipeline(backend, spec.name, encoder, first_stage="hybrid", settings=RerankSettings(kappa=20, k=10))
    assert hybrid.search(query).hits[0].id == docs[3]["_id"]
    rerank = SearchPipeline(backend, spec.name, encoder, multivector_encoder=mv_encoder, rerank=True, settings=RerankSettings(kappa=20, k=5))
    result = rerank.search(query)
    assert result.hits[0].id == docs[3]["_id"]
    assert "fetch" not in result.timings_ms  # candidates and multivectors came in one search
    read = backend.retrieve(spec.name, Retrieval(sparse=encoder.encode_queries([query])[0], limit=5, multivectors=True))
    hits, vectors = read.sparse, read.multivectors
    codec = index_codec(backend, spec.name)
    assert codec.name == default_representation() and set(vectors) == {h.id for h in hits}
    assert all(codec.decode(v).dim == 384 for v in vectors.values())


class _EngineReads:
    """Counts the engine's mget and search calls (a spy on the real client's methods, not a
    stand-in); `restore` puts the methods back."""

    def __init__(self, client):
        self.client, self.mget, self.search, self.msearch = client, 0, 0, 0
        self.real = {name: getattr(client, name) for name in ("mget", "search", "msearch")}
        for name in self.real:
            setattr(client, name, lambda *a, _name=name, **kw: self._count(_name, *a, **kw))

    def _count(self, name, *args, **kwargs):
        setattr(self, name, getattr(self, name) + 1)
        return self.real[name](*args, **kwargs)

    def restore(self):
        for name, method in self.real.items():
            setattr(self.client, name, method)


def test_filters_and_lifecycle(opensearch_url, sparse_encoder, scenario_records):
    backend = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    spec = IndexSpec(f"life-{uuid.uuid4().hex[:8]}", multivector_dim=None)
    try:
        assert backend.ensure_index(spec)
        with pytest.raises(IndexExistsError):
            backend.ensure_index(IndexSpec(spec.name, multivector_dim=384))  # another layout: refused
        result = backend.write(spec.name, scenario_records)
        assert not result.failed
        backend.flush(spec.name)
        query = scenario_records[0].sparse.top_k(8)
        filtered = search_sparse(backend, spec.name, query, 10, filters={"parity": "odd"})
        assert filtered and {h.metadata["parity"] for h in filtered} == {"odd"}
        assert backend.ensure_index(spec, recreate=True) and backend.count(spec.name) == 0
    finally:
        backend.drop_index(spec.name)


@pytest.fixture()
def scenario_records(sparse_encoder, mini_docs):
    from lsrkit.plugin import EncodedRecord

    docs = mini_docs[:30]
    vectors = sparse_encoder.encode_documents([d["text"] for d in docs])
    return [EncodedRecord(d["_id"], d["_id"], d["text"], v, d["title"], {"parity": "odd" if n % 2 else "even"}) for n, (d, v) in enumerate(zip(docs, vectors))]


def test_per_document_search_equals_max_passage_over_every_passage(ingested, sparse_encoder):
    """Collapsing on doc_id in the engine gives what aggregating all passages gives: the same
    documents, each with its best passage and score, in one round trip."""
    backend, spec, summary, docs = ingested
    from lsrkit.encoders import IdfQueryEncoder
    from lsrkit.plugin import aggregate_passages
    from lsrkit.plugin.index_meta import load_index_idf

    encoder = IdfQueryEncoder("splade-tiny", idf=load_index_idf(backend, spec.name, sparse_encoder.vocab))
    assert summary.passages_written > summary.documents  # some documents have several passages
    every = summary.passages_written
    for query in (docs[5]["title"], docs[77]["title"], "cancer cell growth in mice"):
        sparse = encoder.encode_queries([query])[0]
        for collapsed, exhaustive in (
            (backend.retrieve(spec.name, Retrieval(text=query, limit=20, documents=True, texts=True)).bm25, search_text(backend, spec.name, query, every)),
            (
                backend.retrieve(spec.name, Retrieval(sparse=sparse, limit=20, documents=True, texts=True)).sparse,
                search_sparse(backend, spec.name, sparse, every),
            ),
        ):
            expected = aggregate_passages(exhaustive)[:20]
            got = aggregate_passages(collapsed)
            assert [(h.id, h.metadata["passage_id"]) for h in got] == [(h.id, h.metadata["passage_id"]) for h in expected]
            assert [h.score for h in got] == pytest.approx([h.score for h in expected])
    bm25 = SearchPipeline(backend, spec.name, None, first_stage="bm25").search(docs[5]["title"], k=20)
    assert [h.id for h in bm25.hits] == [h.id for h in aggregate_passages(search_text(backend, spec.name, docs[5]["title"], every))[:20]]


class _CompleteReads(OpenSearchBackend):
    """The same engine, every first stage read with its texts, one search a run."""

    def retrieve(self, index, request):
        from dataclasses import replace

        runs = [replace(request, text=None, texts=True), replace(request, sparse=None, texts=True)]
        sparse, bm25 = (super(_CompleteReads, self).retrieve(index, r) for r in runs)
        return Retrieved(sparse.sparse, bm25.bm25, {**sparse.multivectors, **bm25.multivectors})


def test_partial_candidates_rank_and_read_as_complete_ones(ingested, sparse_encoder, mv_encoder, opensearch_url):
    """Hybrid, BM25 and hybrid+rerank over partial candidates (doc values only, the k returned
    read whole in one mget; hybrid's two runs in one msearch) return what they return over
    complete candidates read one search at a time."""
    backend, spec, _, docs = ingested
    from lsrkit.core import RerankSettings
    from lsrkit.encoders import IdfQueryEncoder
    from lsrkit.plugin.code_cache import CodeCache
    from lsrkit.plugin.index_meta import load_index_idf

    encoder = IdfQueryEncoder("splade-tiny", idf=load_index_idf(backend, spec.name, sparse_encoder.vocab))
    complete_only = _CompleteReads(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    # the reads counted are those of an adapter keeping no codes (a CodeCache saves the fetch)
    backend = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab, code_cache=CodeCache(0))
    settings = RerankSettings(kappa=20, k=10, interpolation=0.3)
    # reads expected: (searches, msearches, mgets)
    pipelines = {
        "hybrid": (dict(first_stage="hybrid", settings=settings), (0, 1, 1)),
        # one more search: the κ candidates' token vectors, from doc values
        "hybrid+rerank": (dict(first_stage="hybrid", settings=settings, multivector_encoder=mv_encoder, rerank=True), (1, 1, 1)),
        "bm25 per passage": (dict(first_stage="bm25", settings=settings, aggregate=False), (1, 0, 0)),
    }
    for name, (options, expected_reads) in pipelines.items():
        for query in (docs[21]["title"], "cancer cell growth in mice"):
            spy = _EngineReads(backend.client)
            partial = SearchPipeline(backend, spec.name, encoder, **options).search(query, k=8)
            reads = (spy.search, spy.msearch, spy.mget)
            spy.restore()
            complete = SearchPipeline(complete_only, spec.name, encoder, **options).search(query, k=8)
            assert len(partial.hits) == 8, name
            assert [(h.id, h.title, h.text, dict(h.metadata)) for h in partial.hits] == [(h.id, h.title, h.text, dict(h.metadata)) for h in complete.hits], name
            assert [h.score for h in partial.hits] == pytest.approx([h.score for h in complete.hits], abs=1e-5), name
            assert reads == expected_reads and ("hydrate" in partial.timings_ms) == (expected_reads[2] == 1), name
    complete_only.close()
    backend.close()


def test_codes_read_once_are_served_from_the_cache_while_their_digest_holds(opensearch_url, sparse_encoder, scenario):
    """Once most candidates hit the CodeCache the first stage reads digests, not codes; what it
    returns is byte for byte what the engine holds, and a passage written again with other codes
    is never served from its stale copy."""
    from dataclasses import replace

    from lsrkit.plugin.code_cache import CodeCache
    from lsrkit.plugin.opensearch import MV_FIELD

    cached = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    uncached = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab, code_cache=CodeCache(0))
    spec = IndexSpec(f"cache-{uuid.uuid4().hex[:8]}", multivector_dim=scenario["dim"])
    records = scenario["records"]
    bodies = []
    real_search = cached.client.search
    try:
        cached.ensure_index(spec)
        assert not cached.write(spec.name, records).failed
        cached.flush(spec.name)
        request = Retrieval(sparse=scenario["query_encoder"].encode_queries([scenario["queries"][0]])[0], limit=20, multivectors=True)
        cached.client.search = lambda *a, **kw: bodies.append(kw["body"]) or real_search(*a, **kw)
        truth = uncached.retrieve(spec.name, request)
        assert len(truth.multivectors) == len(truth.sparse) == 20
        for _ in range(20):
            read = cached.retrieve(spec.name, request)
            assert read.multivectors == truth.multivectors and [h.id for h in read.sparse] == [h.id for h in truth.sparse]
        assert MV_FIELD in bodies[0]["docvalue_fields"] and MV_FIELD not in bodies[-1]["docvalue_fields"]
        assert not cached.code_cache.reads_inline(spec.name)

        victim = truth.sparse[0].id
        other = next(r for r in records if r.id != victim and r.multivector != truth.multivectors[victim]).multivector
        rewritten = replace(next(r for r in records if r.id == victim), multivector=other)
        assert not uncached.write(spec.name, [rewritten]).failed
        uncached.flush(spec.name)
        stale = cached.retrieve(spec.name, request)
        assert victim not in stale.multivectors  # the digest changed: the cached copy is not used
        assert cached.fetch_multivectors(spec.name, [victim]) == {victim: other}
        assert cached.retrieve(spec.name, request).multivectors[victim] == other
    finally:
        cached.client.search = real_search
        uncached.drop_index(spec.name)
        cached.close()
        uncached.close()


def test_an_index_built_before_its_codes_had_digests_is_refused_not_half_served(opensearch_url, sparse_encoder):
    from lsrkit.plugin.opensearch import MV_DIGEST_FIELD

    backend = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    spec = IndexSpec(f"old-{uuid.uuid4().hex[:8]}", multivector_dim=384)
    mapping = OpenSearchBackend.mapping(spec)
    del mapping["properties"][MV_DIGEST_FIELD]
    try:
        backend.client.indices.create(index=spec.name, body={"mappings": mapping})
        with pytest.raises(IndexExistsError, match="digests"):
            backend.ensure_index(spec)
        assert backend.ensure_index(spec, recreate=True)
    finally:
        backend.drop_index(spec.name)
        backend.close()


def test_an_adapter_opened_without_a_vocabulary_reads_it_from_the_manifest(ingested, opensearch_url, sparse_encoder):
    """rank_features are keyed by token string: an adapter given no vocabulary finds the sparse
    model's through the index's manifest, and writes and searches as the one given it."""
    from lsrkit.factory import BackendOptions, open_backend
    from lsrkit.plugin import EncodedRecord

    backend, spec, _, docs = ingested
    plain = open_backend(BackendOptions("opensearch", url=opensearch_url))
    try:
        query = sparse_encoder.encode_documents([docs[3]["title"]])[0]
        assert [h.id for h in search_sparse(plain, spec.name, query, 10)] == [h.id for h in search_sparse(backend, spec.name, query, 10)]
        vector = sparse_encoder.encode_documents(["zebrafish telomerase"])[0]
        plain.write(spec.name, [EncodedRecord("extra#0", "extra", "zebrafish telomerase", vector)])
        plain.flush(spec.name)
        assert search_sparse(backend, spec.name, vector, 1)[0].id == "extra#0"
    finally:
        plain.delete(spec.name, ["extra#0"])
        plain.flush(spec.name)
        plain.close()


def test_a_search_of_an_index_that_does_not_exist_says_so(opensearch_url, sparse_encoder):
    """An adapter with no vocabulary of its own looks for the index's manifest: a missing index is
    IndexMissingError (the service answers it as a client's mistake), not a configuration hint."""
    from lsrkit.core import IndexMissingError
    from lsrkit.factory import BackendOptions, open_backend

    plain = open_backend(BackendOptions("opensearch", url=opensearch_url))
    try:
        with pytest.raises(IndexMissingError):
            search_sparse(plain, f"missing-{uuid.uuid4().hex[:8]}", sparse_encoder.encode_documents(["cells"])[0], 5)
    finally:
        plain.close()
