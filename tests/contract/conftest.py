"""One scenario, every backend: the same encoded passages written to each engine."""

from __future__ import annotations

import pytest


@pytest.fixture()
def edge_backend(tmp_path):
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    backend = QdrantEdgeBackend(tmp_path / "edge")
    yield backend
    backend.close()


@pytest.fixture()
def qdrant_local_backend(tmp_path):
    from lsrkit.plugin.qdrant_server import QdrantBackend, client_from_env

    backend = QdrantBackend(client_from_env(path=":memory:"))
    yield backend
    backend.close()


@pytest.fixture()
def opensearch_backend(opensearch_url, sparse_encoder):
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    backend = OpenSearchBackend(client_from_env(opensearch_url), vocab=sparse_encoder.vocab)
    yield backend
    backend.close()
