"""`lsrkit serve`: the query path and the encoders of one index as an HTTP service.

settings (limits, where the index is) → served (ServedIndex: backend, encoders and pipelines, loaded once;
blocking calls) → admission (a bounded queue in front of a thread pool) → app (FastAPI routes,
error mapping, metrics) → run (uvicorn). Import it only with the `serve` extra installed.
"""

from lsrkit.service.settings import ServiceSettings

__all__ = ["ServiceSettings"]
