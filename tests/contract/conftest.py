"""One scenario, every backend: the same encoded passages written to each engine."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ..conftest import CLUSTER_SIZES


@pytest.fixture(params=["edge", "qdrant", "opensearch", pytest.param("opensearch-cluster", marks=pytest.mark.cluster)])
def backend(request):
    """Every engine a contract holds on, the OpenSearch cluster among them (its indexes spread)."""
    names = {"edge": "edge_backend", "qdrant": "qdrant_local_backend", "opensearch": "opensearch_backend", "opensearch-cluster": "opensearch_cluster_backend"}
    return request.getfixturevalue(names[request.param])


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


@pytest.fixture()
def opensearch_cluster_backend(opensearch_cluster_url, sparse_encoder):
    from lsrkit.plugin.opensearch import OpenSearchBackend, client_from_env

    class Spread(OpenSearchBackend):
        """Every index a test creates in shards with replicas over the cluster's nodes."""

        def ensure_index(self, spec, *, recreate=False):
            return super().ensure_index(replace(spec, **CLUSTER_SIZES), recreate=recreate)

    backend = Spread(client_from_env(opensearch_cluster_url), vocab=sparse_encoder.vocab)
    yield backend
    backend.close()
