"""The service's ASGI guards on a bare Starlette app (no engine): what escapes a route is a 503
with a reason, the API key and the body limit hold, and the queue turns away past its bound."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("fastapi")

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from lsrkit.service.admission import Admission, Overloaded  # noqa: E402
from lsrkit.service.guards import Outcome, RequestGuard  # noqa: E402
from lsrkit.service.metrics import ServiceMetrics  # noqa: E402


async def _boom(request: Request) -> JSONResponse:
    raise RuntimeError("the index vanished")


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


def _client(api_key: str | None = None) -> tuple[TestClient, ServiceMetrics]:
    metrics = ServiceMetrics()
    app = Starlette(routes=[Route("/boom", _boom, methods=["POST"]), Route("/echo", _echo, methods=["POST"]), Route("/healthz", _echo, methods=["GET"])])
    app.add_middleware(RequestGuard, api_key=api_key, max_body_bytes=100)
    app.add_middleware(Outcome, metrics=metrics, paths=frozenset({"/echo"}))
    return TestClient(app, raise_server_exceptions=False), metrics


def test_unexpected_errors_are_503_with_a_reason_and_counted():
    client, metrics = _client()
    response = client.post("/boom", json={})
    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.json() == {"error": "internal", "detail": "unexpected server error (logged); try again"}  # no internals
    assert client.post("/echo", content=b"x" * 10).json() == {"bytes": 10}  # still serving
    assert b'lsrkit_requests_total{route="/boom",status="503"} 1.0' in metrics.render()


def test_body_limit_and_api_key():
    client, metrics = _client(api_key="k")
    assert client.get("/healthz").status_code == 200
    assert client.post("/echo", content=b"x").status_code == 401
    assert client.post("/echo", content=b"x", headers={"authorization": "Bearer k"}).json() == {"bytes": 1}
    too_big = client.post("/echo", content=b"x" * 101, headers={"x-api-key": "k"})
    assert too_big.status_code == 413 and too_big.json()["error"] == "body_too_large"
    assert b'lsrkit_requests_total{route="/echo",status="413"} 1.0' in metrics.render()


def test_admission_turns_away_past_the_queue_and_the_timeout():
    async def scenario() -> list[str]:
        admission = Admission(max_in_flight=1, max_queue=1, queue_timeout_ms=100)
        outcomes: list[str] = []

        async def one() -> None:
            try:
                await admission.run(lambda: time.sleep(0.3))
                outcomes.append("ran")
            except Overloaded as exc:
                outcomes.append("timeout" if exc.waited_ms else "full")

        await asyncio.gather(one(), one(), one())
        admission.close()
        return sorted(outcomes)

    # one runs, one waits and times out at 100 ms, the third finds the queue full
    assert asyncio.run(scenario()) == ["full", "ran", "timeout"]
