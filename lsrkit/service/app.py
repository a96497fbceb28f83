"""The FastAPI app: routes, the mapping of lsrkit's errors to HTTP statuses, the lifespan that
opens the served index once and closes it after the last request."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse

from lsrkit.core.errors import BackendError, ConfigError, EncoderError, InputError, LsrError
from lsrkit.service.admission import Admission, Overloaded
from lsrkit.service.guards import Outcome, RequestGuard, error_response
from lsrkit.service.metrics import ServiceMetrics
from lsrkit.service.schemas import (
    EncodeRequest,
    ErrorBody,
    RerankHit,
    RerankRequest,
    RerankResponse,
    SearchHit,
    SearchRequest,
    SearchResponse,
    TokenWeights,
)
from lsrkit.service.served import ServedIndex
from lsrkit.service.settings import ENV_SETTINGS, ServiceSettings, api_key_from_env

ENCODE_BODY = 'what ml-commons sends for `"request_body": "${parameters.input}"` (a JSON list of strings); also {"texts": [...]}'
ROUTES = frozenset({"/healthz", "/metrics", "/pipelines", "/search", "/rerank", "/encode/sparse", "/encode/query"})
QUEUE_HEADER = "x-lsrkit-queue-ms"  # how long the request waited for a slot
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": what}
    for code, what in {
        400: "malformed JSON or unusable input",
        401: "API key missing or wrong",
        413: "body too large",
        422: "a field out of range or of the wrong type",
        429: "at the bound: retry after Retry-After seconds",
        503: "the engine failed or was unreachable",
    }.items()
}


log = logging.getLogger("lsrkit.service")


def create_app(settings: ServiceSettings, open_index: Callable[[ServiceSettings], ServedIndex] = ServedIndex.open) -> FastAPI:
    metrics = ServiceMetrics()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["served"] = await asyncio.to_thread(open_index, settings)
        state["admission"] = Admission(settings.max_in_flight, settings.max_queue, settings.queue_timeout_ms)
        try:
            yield
        finally:  # uvicorn gets here after the in-flight requests finished (graceful shutdown)
            state["admission"].close()
            state["served"].close()

    app = FastAPI(title="lsrkit", summary="Learned sparse retrieval + MaxSim rerank of one index", lifespan=lifespan, responses=ERRORS)
    app.add_middleware(RequestGuard, api_key=api_key_from_env(), max_body_bytes=settings.max_body_bytes)
    app.add_middleware(Outcome, metrics=metrics, paths=ROUTES)  # added last: outermost

    def served() -> ServedIndex:
        return state["served"]  # type: ignore[no-any-return]

    async def admitted(call: Callable[[], Any], response: Response) -> Any:
        waited: list[float] = []
        result = await state["admission"].run(call, waited.append)
        response.headers[QUEUE_HEADER] = f"{waited[0]:.1f}"
        metrics.queue_wait.observe(waited[0] / 1000.0)
        return result

    def limit(what: str, value: int, bound: int) -> None:
        if value > bound:
            raise ConfigError(f"{what}={value} exceeds the service's limit {bound}")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(400, "invalid_json", errors)
        if any(e["type"] == "string_unicode" for e in errors):  # a lone surrogate: no tokenizer takes it
            return error_response(400, "invalid_input", [{**e, "msg": "a string UTF-8 cannot carry (a lone surrogate)"} for e in errors])
        return error_response(422, "invalid_request", errors)

    @app.exception_handler(Overloaded)
    async def overloaded(_: Request, exc: Overloaded) -> JSONResponse:
        metrics.rejected.labels("queue_full" if exc.waited_ms == 0.0 else "queue_timeout").inc()
        response = error_response(429, "overloaded", str(exc), retry_after=1)
        response.headers[QUEUE_HEADER] = f"{exc.waited_ms:.1f}"
        return response

    @app.exception_handler(LsrError)
    async def lsr_error(request: Request, exc: LsrError) -> JSONResponse:
        if isinstance(exc, (InputError, EncoderError)):
            return error_response(400, "invalid_input", str(exc))
        if isinstance(exc, ConfigError):
            return error_response(422, "invalid_request", str(exc))
        # the engine's and the server's own failures are logged whole; the client learns what it can
        # do about them (try again), not the server's paths or internals
        log.warning("%s answered 503: %s: %s", request.url.path, type(exc).__name__, exc)
        if isinstance(exc, BackendError):
            return error_response(503, "engine_unavailable", "the search engine did not answer; try again", retry_after=2)
        return error_response(503, "unavailable", "the service cannot answer now; try again", retry_after=2)

    @app.get("/healthz", summary="liveness and what is served (no API key needed)")
    async def healthz() -> dict[str, Any]:
        index = served()
        return {"status": "ok", "index": index.index, "backend": index.backend.name, "pipelines": list(index.pipelines)}

    @app.get("/pipelines", summary="the pipelines served and the settings each runs with")
    async def pipelines() -> dict[str, Any]:
        return {name: pipeline.describe() for name, pipeline in served().pipelines.items()}

    @app.get("/metrics", summary="Prometheus metrics of this worker")
    async def prometheus() -> Response:
        admission: Admission = state["admission"]
        metrics.waiting.set(admission.waiting)
        metrics.in_flight.set(admission.in_flight)
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.post("/search", summary="first stage (+ MaxSim rerank) over the index", response_model=SearchResponse)
    async def search(request: SearchRequest, response: Response) -> SearchResponse:
        limit("k", request.k, settings.max_k)
        limit("text length", len(request.text), settings.max_text_chars)
        filters = dict(request.filters) if request.filters else None
        result = await admitted(lambda: served().search(request.pipeline, request.text, request.k, filters), response)
        metrics.observe_search(request.pipeline, result.timings_ms)
        hits = [
            SearchHit(id=h.id, score=h.score, title=h.title, text=h.text, passage_id=str(h.metadata.get("passage_id", h.id)), stage_scores=dict(h.stage_scores))
            for h in result.hits
        ]
        return SearchResponse(pipeline=request.pipeline, hits=hits, timings_ms=result.timings_ms)

    @app.post("/rerank", summary="MaxSim rerank of candidate passage ids", response_model=RerankResponse)
    async def rerank(request: RerankRequest, response: Response) -> RerankResponse:
        limit("candidates", len(request.candidates), settings.max_candidates)
        limit("query length", len(request.query), settings.max_text_chars)
        k = request.k or len(request.candidates)
        candidates = [(c.id, c.score) for c in request.candidates]
        started = time.perf_counter()
        result = await admitted(lambda: served().rerank(request.query, candidates, k), response)
        hits = [RerankHit(id=h.id, score=h.score, stage_scores=dict(h.stage_scores)) for h in result.hits]
        return RerankResponse(hits=hits, unknown_ids=result.unknown_ids, timings_ms={"total": (time.perf_counter() - started) * 1000.0})

    def texts_of(body: EncodeRequest, max_chars: int) -> list[str]:
        texts = body.texts()
        if not texts:
            raise InputError("no texts given")
        limit("texts", len(texts), settings.max_batch)
        longest = max(len(t) for t in texts)
        limit("text length", longest, max_chars)
        return texts

    @app.post("/encode/sparse", summary="documents → token → weight maps (SPLADE)", response_model=TokenWeights)
    async def encode_sparse(body: Annotated[EncodeRequest, Body(description=ENCODE_BODY)], response: Response) -> TokenWeights:
        texts = texts_of(body, settings.max_document_chars)
        return await admitted(lambda: served().encode_documents(texts), response)  # type: ignore[no-any-return]

    @app.post("/encode/query", summary="queries → token → weight maps (inference-free: tokenizer + IDF)", response_model=TokenWeights)
    async def encode_query(body: Annotated[EncodeRequest, Body(description=ENCODE_BODY)], response: Response) -> TokenWeights:
        texts = texts_of(body, settings.max_text_chars)
        return await admitted(lambda: served().encode_queries(texts), response)  # type: ignore[no-any-return]

    return app


def app_from_env() -> FastAPI:
    """The app of the settings `lsrkit serve` put in the environment (each uvicorn worker builds its own)."""
    text = os.environ.get(ENV_SETTINGS)
    if not text:
        raise ConfigError(f"{ENV_SETTINGS} is not set: start the service with `lsrkit serve`")
    return create_app(ServiceSettings.from_json(text))
