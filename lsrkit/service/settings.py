"""What `lsrkit serve` is told: where the index is and how much work it accepts."""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lsrkit.core.errors import ConfigError
from lsrkit.factory import BackendOptions
from lsrkit.plugin.pipeline import MAX_QUERY_CHARS

ENV_SETTINGS = "LSRKIT_SERVE_SETTINGS"  # how the settings reach uvicorn's worker processes
ENV_API_KEY = "LSRKIT_API_KEY"


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@dataclass(frozen=True)
class ServiceSettings:
    """One index served. The API key is read from the environment when the app is built, never
    passed on a command line."""

    index: str
    backend: BackendOptions = BackendOptions()
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_in_flight: int = field(default_factory=_cores)  # blocking calls at once (the thread pool)
    max_queue: int = 32  # requests waiting for a slot; one more is answered 429 at once
    queue_timeout_ms: int = 1000  # a request waiting longer is answered 429
    max_body_bytes: int = 1_000_000
    max_k: int = 100
    max_text_chars: int = MAX_QUERY_CHARS  # a query (the pipeline's own limit)
    max_document_chars: int = 100_000  # one text of /encode/sparse (the encoder truncates to its window)
    max_batch: int = 64  # texts per /encode request, candidates per /rerank are max_candidates
    max_candidates: int = 1000
    graceful_shutdown_s: int = 30

    def __post_init__(self) -> None:
        if not self.index:
            raise ConfigError("serve needs an index name")
        positive = {k: v for k, v in asdict(self).items() if isinstance(v, int) and k != "port"}
        bad = [k for k, v in positive.items() if v < 1]
        if bad:
            raise ConfigError(f"serve settings must be >= 1: {', '.join(bad)}")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port {self.port} is not a TCP port")
        if self.workers > 1 and self.backend.kind == "edge":
            raise ConfigError("Qdrant Edge is opened by one process: serve it with --workers 1 (or use a Qdrant or OpenSearch server)")

    def to_json(self) -> str:
        data = asdict(self)
        data["backend"]["data_dir"] = str(self.backend.data_dir)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ServiceSettings:
        data = json.loads(text)
        backend = data.pop("backend")
        backend["data_dir"] = Path(backend["data_dir"])
        return cls(backend=BackendOptions(**backend), **data)


def api_key_from_env() -> str | None:
    """The key clients must send (LSRKIT_API_KEY); None or empty: no key set."""
    return os.environ.get(ENV_API_KEY) or None


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(settings: ServiceSettings, api_key: str | None, *, insecure: bool = False) -> None:
    """A service other machines can reach is closed: it asks for an API key, unless the operator
    said `insecure` (logged loudly by the caller)."""
    if not api_key and not insecure and not is_loopback(settings.host):
        raise ConfigError(
            f"refusing to serve on {settings.host} without an API key: anyone who reaches the port could query the index. "
            f"Set {ENV_API_KEY} (clients send it as 'Authorization: Bearer <key>' or 'X-API-Key'), bind 127.0.0.1, "
            "or pass --insecure to serve it open on purpose"
        )
