"""`lsrkit serve` as a client sees it: the real server in a subprocess on a free port, over a
small Qdrant Edge index (and an OpenSearch one where a node runs), talked to over HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ..conftest import MINI

pytestmark = [pytest.mark.models, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BLUEPRINT = REPO / "docker" / "opensearch-connector.json"
DOCS = 40  # documents of scifact-mini in the test index
QUERY = "ATP is the energy currency of cells"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def post(
        self, path: str, body: object = None, *, content: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 60
    ) -> httpx.Response:
        if content is not None:
            return httpx.post(self.url + path, content=content, headers={"content-type": "application/json", **(headers or {})}, timeout=timeout)
        return httpx.post(self.url + path, json=body, headers=headers, timeout=timeout)


@contextmanager
def serve(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    port = _free_port()
    log = tmp / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "lsrkit.cli", "serve", "--port", str(port), "--no-access-log", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"lsrkit serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail(f"lsrkit serve did not come up:\n{log.read_text()}")
            time.sleep(0.3)
        yield Server(url, process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


def _mini_subset(path: Path) -> Path:
    with (MINI / "corpus.jsonl").open() as source:
        path.write_text("".join(line for _, line in zip(range(DOCS), source)))
    return path


def _ingest(backend_args: list[str], index: str, tmp: Path) -> None:
    """The index the service serves, built by `lsrkit ingest` as a user would."""
    corpus = _mini_subset(tmp / "corpus.jsonl")
    cmd = [sys.executable, "-m", "lsrkit.cli", "ingest", str(corpus), "--index", index, "--data-dir", str(tmp / "data"), "--json", *backend_args]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["documents"] == DOCS


@pytest.fixture(scope="module")
def edge_data(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("serve-edge")
    _ingest(["--backend", "edge"], "mini", tmp)
    return tmp


@pytest.fixture(scope="module")
def edge_server(edge_data) -> Iterator[Server]:
    # one slot and a short queue, so the overload test reaches the bound with few requests
    limits = ["--max-in-flight", "1", "--max-queue", "2", "--queue-timeout-ms", "300", "--max-k", "50", "--max-body-bytes", "300000"]
    with serve(edge_data, "--backend", "edge", "--index", "mini", "--data-dir", str(edge_data / "data"), *limits) as server:
        yield server


def _corpus() -> dict[str, dict]:
    with (MINI / "corpus.jsonl").open() as source:
        docs = [json.loads(line) for _, line in zip(range(DOCS), source)]
    return {d["_id"]: d for d in docs}


def _check_search(server: Server, pipeline: str = "hybrid+rerank") -> list[dict]:
    response = server.post("/search", {"text": QUERY, "pipeline": pipeline, "k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    hits = body["hits"]
    corpus = _corpus()
    assert body["pipeline"] == pipeline and len(hits) == 5
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert all(h["id"] in corpus and h["title"] == corpus[h["id"]]["title"] and h["text"] for h in hits)
    if "rerank" in pipeline:
        assert all({"first_stage", "maxsim"} <= set(h["stage_scores"]) for h in hits)
        assert {"encode", "first_stage", "rerank", "total"} <= set(body["timings_ms"])
    return hits


def test_search_returns_reranked_hits_with_stage_scores(edge_server):
    _check_search(edge_server)
    corpus = _corpus()
    # a document's own title finds it first
    doc = next(d for d in corpus.values() if len(d["title"].split()) > 5)
    top = edge_server.post("/search", {"text": doc["title"], "pipeline": "hybrid+rerank", "k": 3}).json()["hits"]
    assert top[0]["id"] == doc["_id"]
    metrics = httpx.get(edge_server.url + "/metrics").text
    assert 'lsrkit_stage_seconds_count{pipeline="hybrid+rerank",stage="rerank"} 2.0' in metrics
    assert 'lsrkit_requests_total{route="/search",status="200"} 2.0' in metrics
    served = httpx.get(edge_server.url + "/healthz").json()["pipelines"]
    for pipeline in served:
        assert edge_server.post("/search", {"text": QUERY, "pipeline": pipeline, "k": 3}).json()["hits"], pipeline


def test_rerank_orders_candidates_by_maxsim(edge_server):
    hits = edge_server.post("/search", {"text": QUERY, "pipeline": "sparse-idf+rerank", "k": 8}).json()["hits"]
    expected = {h["passage_id"]: h["stage_scores"]["maxsim"] for h in hits}
    candidates = [{"id": h["passage_id"]} for h in reversed(hits)] + [{"id": "no-such-passage"}]
    response = edge_server.post("/rerank", {"query": QUERY, "candidates": candidates})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["unknown_ids"] == ["no-such-passage"]
    ranked = body["hits"]
    assert {h["id"] for h in ranked} == set(expected)
    assert [h["score"] for h in ranked] == sorted((h["score"] for h in ranked), reverse=True)
    # the same MaxSim as the search pipeline's rerank stage, for the same query and passages
    for hit in ranked:
        assert hit["stage_scores"]["maxsim"] == pytest.approx(expected[hit["id"]], abs=1e-4)
    # with first-stage scores the ranking interpolates them; k cuts it
    scored = [{"id": h["passage_id"], "score": h["stage_scores"]["first_stage"]} for h in hits]
    top = edge_server.post("/rerank", {"query": QUERY, "candidates": scored, "k": 3}).json()["hits"]
    assert len(top) == 3 and all(h["stage_scores"]["first_stage"] != 0.0 for h in top)
    only_unknown = edge_server.post("/rerank", {"query": QUERY, "candidates": [{"id": "x"}]}).json()
    assert only_unknown == {"hits": [], "unknown_ids": ["x"], "timings_ms": only_unknown["timings_ms"]}


def _substitute(template: str, values: dict[str, str]) -> str:
    """ml-commons' ${parameters.x} / ${credential.x} substitution."""
    return re.sub(r"\$\{((?:parameters|credential)\.[^}]+)\}", lambda m: values[m.group(1)], template)


def _blueprint_step(name: str) -> dict:
    return next(s for s in json.loads(BLUEPRINT.read_text())["steps"] if s["name"] == name)


def _ml_commons_call(server: Server, connector: str, texts: list[str], api_key: str = "unused") -> httpx.Response:
    """The HTTP request ml-commons makes for the blueprint's connector: the default embedding
    pre-process puts the texts into parameters.input as a JSON list, the action renders url,
    headers and request_body from it."""
    body = _blueprint_step(connector)["body"]
    action = body["actions"][0]
    values = {"parameters.endpoint": server.url, "parameters.input": json.dumps(texts), "credential.api_key": api_key}
    assert action["pre_process_function"] == "connector.pre_process.default.embedding" and "post_process_function" not in action
    url = _substitute(action["url"], values)
    headers = {k: _substitute(v, values) for k, v in action["headers"].items()}
    return httpx.post(url, content=_substitute(action["request_body"], values).encode(), headers=headers, timeout=60)


def _token_weight_maps(response: httpx.Response, n: int) -> list[dict[str, float]]:
    assert response.status_code == 200, response.text
    maps = response.json()
    # what neural-search reads after ml-commons wraps a JSON list answer: {"response": [one map per text]}
    wrapped = {"response": maps}
    assert isinstance(wrapped["response"], list) and len(maps) == n
    for weights in maps:
        assert isinstance(weights, dict) and weights
        assert all(isinstance(t, str) and isinstance(w, float) and w > 0 for t, w in weights.items())
    return maps


def test_encode_endpoints_answer_the_blueprint_requests(edge_server):
    texts = ["ATP is the energy currency of cells", "Vitamin D deficiency and cancer risk"]
    documents = _token_weight_maps(_ml_commons_call(edge_server, "document connector", texts), 2)
    assert "atp" in documents[0] and "vitamin" in documents[1]
    assert len(documents[0]) > len("ATP is the energy currency of cells".split())  # SPLADE expands
    queries = _token_weight_maps(_ml_commons_call(edge_server, "query connector", texts), 2)
    # inference-free: only the query's own tokens, weighted by IDF
    assert set(queries[0]) <= {"atp", "is", "the", "energy", "currency", "of", "cells"} and "atp" in queries[0]
    # the other accepted shapes give the same answer
    for body in ({"texts": texts}, {"parameters": {"input": texts}}, {"parameters": {"texts": texts}}):
        assert edge_server.post("/encode/query", body).json() == queries
    ingest = _blueprint_step("ingest pipeline")["body"]["processors"][0]["sparse_encoding"]
    assert ingest["field_map"] == {"text": "text_sparse"}
    index = _blueprint_step("index")["body"]
    assert index["mappings"]["properties"]["text_sparse"]["type"] == "rank_features"
    assert index["settings"]["index.default_pipeline"] == _blueprint_step("ingest pipeline")["path"].rsplit("/", 1)[1]
    assert "text_sparse" in _blueprint_step("neural_sparse query")["body"]["query"]["neural_sparse"]


def test_bad_input_is_answered_4xx_with_a_reason(edge_server):
    cases = [
        (edge_server.post("/search", content=b'{"text": "unterminated'), 400, "invalid_json"),
        (edge_server.post("/search", {"text": QUERY, "pipeline": "dense"}), 422, "invalid_request"),
        (edge_server.post("/search", {"text": "   "}), 422, "invalid_request"),
        (edge_server.post("/search", {"text": ""}), 422, "invalid_request"),
        (edge_server.post("/search", {"text": QUERY, "k": 51}), 422, "invalid_request"),
        (edge_server.post("/search", {"text": QUERY, "k": 0}), 422, "invalid_request"),
        (edge_server.post("/search", {"text": "x" * 5000}), 422, "invalid_request"),
        (edge_server.post("/search", {"text": QUERY, "filters": {"a": [1, 2]}}), 422, "invalid_request"),
        (edge_server.post("/search", {"text": QUERY, "typo": 1}), 422, "invalid_request"),
        (edge_server.post("/search", [1, 2]), 422, "invalid_request"),
        (edge_server.post("/rerank", {"query": QUERY, "candidates": []}), 422, "invalid_request"),
        (edge_server.post("/encode/sparse", ["x"] * 65), 422, "invalid_request"),
        (edge_server.post("/encode/sparse", []), 400, "invalid_input"),
        # a lone surrogate: valid JSON, a string no tokenizer or engine takes
        (edge_server.post("/search", content=b'{"text": "lone \\ud800 surrogate"}'), 400, "invalid_input"),
        (edge_server.post("/rerank", content=b'{"query": "\\udfff", "candidates": [{"id": "x"}]}'), 400, "invalid_input"),
        (edge_server.post("/encode/sparse", content=b'["fine", "\\ud800"]'), 400, "invalid_input"),
        (edge_server.post("/encode/query", content=b'{"texts": ["\\ud800"]}'), 400, "invalid_input"),
        (edge_server.post("/encode/query", {"texts": "not a list"}), 422, "invalid_request"),
        (edge_server.post("/encode/sparse", content=json.dumps(["a" * 400_000]).encode()), 413, "body_too_large"),
        # a chunked body (no content-length) over the limit too
        (httpx.post(edge_server.url + "/encode/sparse", content=iter([b'["', b"a" * 200_000, b"a" * 200_000, b'"]']), timeout=60), 413, "body_too_large"),
    ]
    for response, status, error in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.json()["error"] == error and response.json()["detail"]
        # what the client did wrong, never the server's paths or internals
        assert str(edge_server.log.parent) not in response.text and "/tmp" not in response.text and "Traceback" not in response.text
    assert httpx.get(edge_server.url + "/nowhere").status_code == 404
    assert httpx.get(edge_server.url + "/search").status_code == 405
    # the service still answers
    _check_search(edge_server, "sparse-idf")


def test_overload_is_answered_429_at_once_not_5xx(edge_server):
    long_texts = [" ".join(d["text"] for d in list(_corpus().values())[i : i + 3]) for i in range(32)]
    statuses: list[httpx.Response] = []

    def call() -> None:
        statuses.append(edge_server.post("/encode/sparse", long_texts, timeout=120))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(r.status_code for r in statuses)
    assert set(codes) <= {200, 429}, codes
    assert 200 in codes and 429 in codes, codes
    for response in statuses:
        waited = float(response.headers["x-lsrkit-queue-ms"])
        if response.status_code == 429:
            assert response.headers["retry-after"] and response.json()["error"] == "overloaded"
            assert waited < 300 + 150  # answered at once (queue full) or at the queue timeout, not later
    metrics = httpx.get(edge_server.url + "/metrics").text
    assert re.search(r'lsrkit_requests_total\{route="/encode/sparse",status="429"\} [1-9]', metrics)
    assert "lsrkit_rejected_total" in metrics


@pytest.fixture(scope="module")
def keyed_server(edge_data) -> Iterator[Server]:
    # its own data dir copy: a Qdrant Edge folder is opened by one process
    data = edge_data / "keyed"
    shutil.copytree(edge_data / "data", data)
    with serve(edge_data, "--backend", "edge", "--index", "mini", "--data-dir", str(data), env={"LSRKIT_API_KEY": "s3cret"}) as server:
        yield server


def test_api_key_from_the_environment(keyed_server):
    assert httpx.get(keyed_server.url + "/healthz").status_code == 200
    body = {"text": QUERY, "pipeline": "sparse-idf", "k": 2}
    for headers in ({}, {"authorization": "Bearer wrong"}, {"x-api-key": "wrong"}, {"authorization": "s3cret"}):
        response = keyed_server.post("/search", body, headers=headers)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized", headers
    assert keyed_server.post("/search", body, headers={"authorization": "Bearer s3cret"}).status_code == 200
    assert keyed_server.post("/search", body, headers={"x-api-key": "s3cret"}).status_code == 200
    assert httpx.get(keyed_server.url + "/metrics").status_code == 401
    # the blueprint's connector sends the key it was given as its credential
    assert _ml_commons_call(keyed_server, "document connector", ["a text"], api_key="s3cret").status_code == 200
    assert _ml_commons_call(keyed_server, "document connector", ["a text"], api_key="nope").status_code == 401


def test_sigterm_lets_the_request_in_flight_finish(keyed_server):
    texts = [" ".join(d["text"] for d in list(_corpus().values())[i : i + 3]) for i in range(64)]
    result: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: result.append(keyed_server.post("/encode/sparse", texts, headers={"x-api-key": "s3cret"}, timeout=300)))
    thread.start()
    deadline = time.time() + 30
    while "lsrkit_in_flight 1.0" not in httpx.get(keyed_server.url + "/metrics", headers={"x-api-key": "s3cret"}).text:
        assert time.time() < deadline, "the request never started"
        time.sleep(0.02)
    keyed_server.process.send_signal(signal.SIGTERM)
    thread.join(timeout=300)
    assert result and result[0].status_code == 200 and len(result[0].json()) == 64
    assert keyed_server.process.wait(timeout=60) == 0
    log = keyed_server.log.read_text()
    assert "Shutting down" in log and "Application shutdown complete" in log


def test_serve_refuses_bad_settings(edge_data):
    done = subprocess.run(
        [sys.executable, "-m", "lsrkit.cli", "serve", "--backend", "edge", "--index", "mini", "--workers", "2", "--data-dir", str(edge_data / "data")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Qdrant Edge is opened by one process" in done.stderr


def test_serve_refuses_to_start_open_where_other_machines_reach_it(edge_data, tmp_path):
    base = [sys.executable, "-m", "lsrkit.cli", "serve", "--backend", "edge", "--index", "mini", "--data-dir", str(edge_data / "data")]
    env = {k: v for k, v in os.environ.items() if k != "LSRKIT_API_KEY"}
    for host in ("0.0.0.0", "::", "10.1.2.3", "search.internal"):
        done = subprocess.run([*base, "--host", host], capture_output=True, text=True, timeout=60, env={**env, "LSRKIT_API_KEY": ""})
        assert done.returncode == 2 and f"refusing to serve on {host} without an API key" in " ".join(done.stderr.split()), done.stderr
    # --insecure serves open on purpose, and says so (bound here to loopback: tests reach no other
    # address), on a copy of the index: the module's server holds the Edge folder
    shutil.copytree(edge_data / "data", tmp_path / "data")
    with serve(tmp_path, "--backend", "edge", "--index", "mini", "--data-dir", str(tmp_path / "data"), "--insecure", env={"LSRKIT_API_KEY": ""}) as server:
        _check_search(server, "sparse-idf")
    assert "WARNING: serving 127.0.0.1" in " ".join(server.log.read_text().split())


@pytest.mark.opensearch
def test_opensearch_service(opensearch_url, tmp_path):
    import uuid

    from lsrkit.factory import BackendOptions, open_backend

    index = f"serve-{uuid.uuid4().hex[:10]}"
    _ingest(["--backend", "opensearch", "--url", opensearch_url], index, tmp_path)
    try:
        with serve(tmp_path, "--backend", "opensearch", "--url", opensearch_url, "--index", index, "--data-dir", str(tmp_path / "data")) as server:
            hits = _check_search(server)
            _check_search(server, "sparse-idf+rerank")
            candidates = [{"id": h["passage_id"]} for h in hits] + [{"id": "missing"}]
            body = server.post("/rerank", {"query": QUERY, "candidates": candidates}).json()
            assert body["unknown_ids"] == ["missing"] and len(body["hits"]) == len(hits)
            _token_weight_maps(_ml_commons_call(server, "document connector", ["ATP is the energy currency of cells"]), 1)
            _token_weight_maps(_ml_commons_call(server, "query connector", ["ATP energy"]), 1)
    finally:
        backend = open_backend(BackendOptions(kind="opensearch", url=opensearch_url))
        backend.drop_index(index)
        backend.close()


def test_compose_config_is_valid():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine: `docker compose config` cannot check docker/compose.yaml")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker CLI has no compose plugin: `docker compose config` cannot run")
    done = subprocess.run(
        [docker, "compose", "-f", str(REPO / "docker" / "compose.yaml"), "--profile", "serve", "config", "--format", "json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert {"opensearch", "qdrant", "lsrkit"} <= set(services)
    assert services["lsrkit"]["build"]["dockerfile"] == "docker/Dockerfile.serve"
    assert services["lsrkit"]["ports"][0]["host_ip"] == "127.0.0.1"
