"""Running the app with uvicorn: bound to 127.0.0.1 unless told otherwise; SIGTERM lets the
requests in flight finish (uvicorn's graceful shutdown), then the lifespan closes the served index."""

from __future__ import annotations

import os
import signal
from types import FrameType

from lsrkit.service.settings import ENV_SETTINGS, ServiceSettings

CONNECTION_BACKSTOP = 1024  # uvicorn's own limit (it answers 503 past it); the service's bound is far lower


def serve(settings: ServiceSettings, *, access_log: bool = True) -> None:
    os.environ[ENV_SETTINGS] = settings.to_json()  # workers are separate processes: they read it there
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler it
    # found: with this one, a clean shutdown ends the process with status 0
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        _run(settings, access_log)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _run(settings: ServiceSettings, access_log: bool) -> None:
    import uvicorn

    uvicorn.run(
        "lsrkit.service.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
        limit_concurrency=max(CONNECTION_BACKSTOP, 4 * (settings.max_in_flight + settings.max_queue)),
        access_log=access_log,
        server_header=False,
        proxy_headers=False,
    )
