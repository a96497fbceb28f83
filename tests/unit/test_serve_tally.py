"""The node-loss serve scenario's tally: which answers count as acceptable 503s and which as 5xx."""

from __future__ import annotations

from pathlib import Path

import httpx

from lsrkit.bench.node_loss import _error_code, _logged_503s, _Tally


def _response(status: int, body: object | None = None, text: str | None = None) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text)
    return httpx.Response(status, json=body)


def test_a_503_counts_as_the_engines_only_when_the_body_says_so() -> None:
    tally = _Tally()
    for status, body, retry_after in [
        (200, {"hits": []}, False),
        (503, {"error": "engine_unavailable", "detail": "…"}, True),
        (503, {"error": "engine_unavailable", "detail": "…"}, False),
        (503, {"error": "internal", "detail": "…"}, True),  # the service's own failure
        (503, {"error": "unavailable", "detail": "…"}, True),
        (500, {"detail": "boom"}, False),
        (429, {"error": "overloaded"}, True),
        (400, {"error": "invalid_input"}, False),
    ]:
        response = _response(status, body)
        tally.count(response.status_code, retry_after, _error_code(response))
    assert tally.as_dict() == {
        "status_200": 1,
        "status_503": 2,
        "status_503_without_retry_after": 1,
        "status_5xx": 3,
        "status_429": 1,
        "status_other": 1,
        "unanswered": 0,
    }


def test_error_code_of_bodies_that_are_not_the_services() -> None:
    assert _error_code(_response(503, text="<html>bad gateway</html>")) is None
    assert _error_code(_response(503, ["not", "a", "dict"])) is None
    assert _error_code(_response(200, {"error": "ignored on success"})) is None


def test_logged_503s_keep_handled_and_unexpected_errors(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    log.write_text(
        "INFO started\nWARNING /search answered 503: UnavailableError: opensearch: search on 'x' failed\nERROR unexpected error on POST /search\nINFO 200 OK\n"
    )
    assert [line.split()[0] for line in _logged_503s(log)] == ["WARNING", "ERROR"]
    assert _logged_503s(tmp_path / "missing.log") == []
