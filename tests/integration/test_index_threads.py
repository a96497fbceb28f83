"""`Index` (and the service over it) keeps one pipeline per name: k is an argument of each search, so callers asking many
different k do not grow a rerank thread (or a pipeline) per k."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.models


def test_a_thousand_distinct_k_add_no_thread_in_process_or_through_the_service(tmp_path, sparse_encoder, mv_encoder, mini_docs, monkeypatch):
    from starlette.testclient import TestClient

    from lsrkit.factory import BackendOptions
    from lsrkit.index import Index
    from lsrkit.service.app import create_app
    from lsrkit.service.settings import ServiceSettings

    options = BackendOptions("edge", data_dir=tmp_path)
    with Index("t", backend=options, encoders=(sparse_encoder, mv_encoder)) as index:
        index.ingest(mini_docs[:30], progress=False)
        matching = len(index.search("cells", pipeline="sparse-idf+rerank", k=1000))
        threads = threading.active_count()
        for k in range(1, 1001):  # in-process: one pipeline (one rerank thread) per name, whatever k is asked
            assert len(index.search("cells", pipeline="sparse-idf+rerank", k=k)) == min(k, matching)
        assert threading.active_count() == threads and list(index._pipelines) == ["sparse-idf+rerank"]
    monkeypatch.delenv("LSRKIT_API_KEY", raising=False)
    settings = ServiceSettings(index="t", backend=options, max_k=1000)
    with TestClient(create_app(settings)) as client:
        ask = {"text": "cells", "pipeline": "sparse-idf+rerank"}
        matching = len(client.post("/search", json={**ask, "k": 1000}).json()["hits"])
        started = threading.active_count()
        counts = []
        for k in range(1, 1001):
            answer = client.post("/search", json={**ask, "k": k})
            assert answer.status_code == 200 and len(answer.json()["hits"]) == min(k, matching)
            counts.append(threading.active_count())
        # the blocking-call pool may start its few threads (at most max_in_flight) at any time;
        # beyond them, whatever k is asked, no thread is added
        assert max(counts) <= started + settings.max_in_flight
