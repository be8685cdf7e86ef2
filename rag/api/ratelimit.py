"""A per-key rate limit: a token bucket per caller, refilled evenly, bursts up to one minute's worth."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """``per_minute`` requests per caller; ``check`` says how long to wait (0: go ahead)."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 10_000,
    ) -> None:
        if per_minute < 0:
            raise ValueError(f"per_minute must be >= 0, not {per_minute}")
        self.per_minute = per_minute
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, when)
        self._lock = threading.Lock()

    def check(self, caller: str) -> float:
        """Take one request from ``caller``'s bucket: 0.0 if allowed, else the seconds until the
        next one would be (the request is not counted)."""
        if self.per_minute == 0:
            return 0.0
        rate = self.per_minute / 60.0  # tokens per second
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(caller, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - then) * rate)
            if tokens >= 1.0:
                self._remember(caller, (tokens - 1.0, now))
                return 0.0
            self._remember(caller, (tokens, now))
            return (1.0 - tokens) / rate

    def _remember(self, caller: str, state: tuple[float, float]) -> None:
        if caller not in self._buckets and len(self._buckets) >= self.max_callers:
            self._buckets.clear()  # callers are keys, few by nature; never grow without bound
        self._buckets[caller] = state
