"""One retry layer for engine calls: transient engine states (UnavailableError: unreachable,
overloaded, 5xx, a write block) are tried again with capped exponential backoff (tenacity) for
at most `seconds`; anything else, or a state that outlasts the policy, is raised to stop the job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter
from tenacity.stop import stop_base

from lsrkit.core.errors import UnavailableError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How long an engine may stay unavailable before the job stops (non-zero, resumable)."""

    seconds: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 8.0


def retrying(call: Callable[[], T], policy: RetryPolicy, stop: threading.Event | None = None) -> T:
    """`call`, tried again while the engine is unavailable, until `policy.seconds` have passed or
    `stop` is set (a stopping job does not wait out its backoff)."""
    event = stop or threading.Event()
    failed: list[UnavailableError] = []

    def attempt() -> T:
        if event.is_set() and failed:  # the backoff was cut short by a stop: no further call
            raise failed[-1]
        try:
            return call()
        except UnavailableError as exc:
            failed.append(exc)
            raise

    retryer = Retrying(
        retry=retry_if_exception_type(UnavailableError),
        # jittered: the workers of one job do not retry in step against a recovering engine
        wait=wait_exponential_jitter(multiplier=policy.first_delay, max=policy.max_delay, jitter=policy.first_delay),
        stop=stop_after_delay(policy.seconds) | _StopWhenSet(event),
        sleep=lambda seconds: None if event.wait(seconds) else None,  # a stop cuts the backoff short
        reraise=True,
    )
    return retryer(attempt)


class _StopWhenSet(stop_base):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.event.is_set()


__all__ = ["RetryPolicy", "retrying"]
