"""A model run's start, signalled to a thread waiting to make an engine call.

onnxruntime releases the GIL while a model runs; Qdrant Edge's queries hold it. A query's token
vectors are encoded on a thread beside the first stage: unless the engine call waits until the
model runs, the encoding waits behind the engine call for the GIL and nothing overlaps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_waiting = threading.local()


@contextmanager
def model_run_signal(event: threading.Event) -> Iterator[None]:
    """Within the block, this thread sets `event` when a model run starts, and at the latest
    when the block ends (an encoder that never signals costs the waiter the whole encoding)."""
    outer = getattr(_waiting, "event", None)
    _waiting.event = event
    try:
        yield
    finally:
        _waiting.event = outer
        event.set()


def signal_model_run() -> None:
    """Called by an encoder just before its model runs."""
    event: threading.Event | None = getattr(_waiting, "event", None)
    if event is not None:
        event.set()
