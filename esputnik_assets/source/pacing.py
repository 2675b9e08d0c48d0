"""One request pacer shared by every thread of a run: live accounts answer 429 to back-to-back calls."""

from __future__ import annotations

import threading
import time


class RatePacer:
    """Spaces request starts at least 1/rate seconds apart across threads; rate 0 disables pacing."""

    def __init__(self, requests_per_second: float) -> None:
        if requests_per_second < 0:
            raise ValueError("requests_per_second must be >= 0")
        self._interval = 1.0 / requests_per_second if requests_per_second > 0 else 0.0
        self._lock = threading.Lock()
        self._next_start = 0.0

    def wait(self) -> None:
        if self._interval == 0.0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        delay = start - now
        if delay > 0:
            time.sleep(delay)

    def hold_off(self, seconds: float) -> None:
        """After a 429 every thread waits, not only the one that got it."""
        with self._lock:
            self._next_start = max(self._next_start, time.monotonic() + seconds)
