"""`Index` keeps one pipeline per name: k is an argument of each search, so callers asking many
different k do not grow a rerank thread (or a pipeline) per k."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.models


def test_a_thousand_distinct_k_keep_the_thread_count_constant(tmp_path, sparse_encoder, mv_encoder, mini_docs):
    from lsrkit.index import Index
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    with Index("t", backend=QdrantEdgeBackend(tmp_path / "edge"), data_dir=tmp_path, encoders=(sparse_encoder, mv_encoder)) as index:
        index.ingest(mini_docs[:30], progress=False)
        matching = len(index.search("cells", pipeline="sparse-idf+rerank", k=1000))
        threads = threading.active_count()
        for k in range(1, 1001):
            assert len(index.search("cells", pipeline="sparse-idf+rerank", k=k)) == min(k, matching)
        assert threading.active_count() == threads
        assert list(index._pipelines) == ["sparse-idf+rerank"]
