"""The Qdrant server and the docker/ compose setup, through testcontainers.

They need a Docker engine; where there is none (this project's CI machine has only the client),
they skip and say so. The same contract scenario as tests/contract runs against them.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from lsrkit.plugin import search_sparse

from ..conftest import docker_available

pytestmark = [
    pytest.mark.docker,
    pytest.mark.models,
    pytest.mark.skipif(not docker_available(), reason="no Docker engine reachable (docker ping failed): Qdrant server / compose tests need one"),
]

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"


def _wait(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(1)
    raise TimeoutError(url)


@pytest.fixture(scope="module")
def qdrant_server_url():
    from testcontainers.core.container import DockerContainer

    with DockerContainer("qdrant/qdrant:v1.16.3").with_exposed_ports(6333) as container:
        url = f"http://{container.get_container_host_ip()}:{container.get_exposed_port(6333)}"
        _wait(f"{url}/readyz")
        yield url


def test_qdrant_server_matches_edge(qdrant_server_url, scenario, tmp_path):
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend
    from lsrkit.plugin.qdrant_server import QdrantBackend, client_from_env

    from ..conftest import unique_index

    server = QdrantBackend(client_from_env(url=qdrant_server_url))
    edge = QdrantEdgeBackend(tmp_path / "edge")
    spec = unique_index("docker")
    for backend in (server, edge):
        backend.ensure_index(spec)
        backend.write(spec.name, scenario["records"])
    for text in scenario["queries"]:
        query = scenario["query_encoder"].encode_queries([text])[0]
        a, b = search_sparse(server, spec.name, query, 10), search_sparse(edge, spec.name, query, 10)
        assert [h.id for h in a][:5] == [h.id for h in b][:5]
    server.drop_index(spec.name)


def test_compose_services_come_up_healthy(monkeypatch):
    from testcontainers.compose import DockerCompose

    monkeypatch.setenv("LSRKIT_API_KEY", "compose-test-key")  # compose refuses to start the service without one

    with DockerCompose(str(COMPOSE.parent), compose_file_name=COMPOSE.name, wait=True) as compose:
        _wait("http://127.0.0.1:9200/_cluster/health")
        _wait("http://127.0.0.1:6333/readyz")
        assert compose.get_service_host("qdrant", 6333)
