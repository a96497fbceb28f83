"""ASGI middleware around the app: the API key and the body size are checked before any route
runs, and whatever escapes the routes is answered (503, logged) and counted, never a 500."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

from lsrkit.service.metrics import ServiceMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("lsrkit.serve")
OPEN_PATHS = frozenset({"/healthz"})
DRAIN_FACTOR = 16  # a body declared too large is read and dropped up to this many times the limit, so the client sees the 413


def error_response(status: int, error: str, detail: object, *, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def authorized(scope: Scope, api_key: str) -> bool:
    """`Authorization: Bearer <key>` or `x-api-key: <key>`, compared in constant time."""
    expected = api_key.encode()
    bearer = _header(scope, b"authorization") or b""
    offered = bearer[7:].strip() if bearer[:7].lower() == b"bearer " else _header(scope, b"x-api-key")
    return offered is not None and hmac.compare_digest(offered, expected)


class RequestGuard:
    """401 without the API key (when one is set; /healthz stays open); 413 for a body over the
    limit, before anything parses it. A body within the limit is read here and handed on whole."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.api_key and scope["path"] not in OPEN_PATHS and not authorized(scope, self.api_key):
            response = error_response(401, "unauthorized", "send the API key as 'Authorization: Bearer <key>' or 'x-api-key: <key>'")
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        too_large = error_response(413, "body_too_large", f"request bodies are limited to {self.max_body_bytes} bytes")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._drain(receive, self.max_body_bytes * DRAIN_FACTOR)
            await too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                if message.get("more_body", False):  # the rest is on its way: drop it (up to the budget) so the client, still sending, sees the 413
                    await self._drain(receive, self.max_body_bytes * DRAIN_FACTOR - size)
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive: Receive, budget: int) -> None:
        """Reads and drops the rest of a body. Only while more of it is to come: past the last part
        receive() waits for the client's disconnect, and the client waits for the answer."""
        while budget > 0:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            budget -= len(message.get("body", b""))


class Outcome:
    """Counts every answer by route and status, and answers what escaped the routes with a 503
    and a reason (logged with its traceback): a request never ends in a 500 or a dead worker."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics, paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths  # a request turned away before routing is counted under its path when it is one of these

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not status:
                status = 503
                # what went wrong is in the server's log; the body names no internals
                await error_response(503, "internal", "unexpected server error (logged); try again", retry_after=1)(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", None) or (scope["path"] if scope["path"] in self.paths else "unmatched")
            self.metrics.observe_request(route, status or 499, time.perf_counter() - started)
