"""Prometheus metrics of one app (its own registry): requests by route and status, latency per
route, per pipeline and per pipeline stage, the queue."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("lsrkit_requests", "HTTP requests answered", ["route", "status"], registry=self.registry)
        self.latency = Histogram("lsrkit_request_seconds", "HTTP request latency", ["route"], buckets=_BUCKETS, registry=self.registry)
        self.pipeline = Histogram(
            "lsrkit_search_seconds", "search latency per pipeline (the pipeline's own total)", ["pipeline"], buckets=_BUCKETS, registry=self.registry
        )
        self.stage = Histogram("lsrkit_stage_seconds", "search latency per pipeline stage", ["pipeline", "stage"], buckets=_BUCKETS, registry=self.registry)
        self.queue_wait = Histogram("lsrkit_queue_wait_seconds", "time a request waited for a slot", buckets=_BUCKETS, registry=self.registry)
        self.rejected = Counter("lsrkit_rejected", "requests turned away at the bound", ["reason"], registry=self.registry)
        self.waiting = Gauge("lsrkit_queue_waiting", "requests waiting for a slot", registry=self.registry)
        self.in_flight = Gauge("lsrkit_in_flight", "blocking calls running", registry=self.registry)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_search(self, pipeline: str, timings_ms: Mapping[str, float]) -> None:
        for stage, ms in timings_ms.items():
            if stage == "total":
                self.pipeline.labels(pipeline).observe(ms / 1000.0)
            else:
                self.stage.labels(pipeline, stage).observe(ms / 1000.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
