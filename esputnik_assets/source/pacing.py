"""One request pacer per account, shared by every thread and process on the machine: live accounts answer 429 to
back-to-back calls, and a backfill and the daily schedule may read one account at the same time."""

from __future__ import annotations

import fcntl
import hashlib
import struct
import tempfile
import time
from pathlib import Path


STALE_AHEAD_SECONDS = 3600.0  # a next start further ahead than this cannot be a real queue: the clock was reset


class RatePacer:
    """One request budget per account for every thread and process on this machine: runs of a backfill and the daily
    schedule reading the same account at once share its rate instead of each pacing itself at the full rate.

    The next free start time lives in a small file per account (keyed by its base URL), updated under an exclusive
    `flock`; times are CLOCK_MONOTONIC, which every process on a Linux machine shares. Rate 0 disables pacing.
    """

    def __init__(self, requests_per_second: float, account: str, folder: str | None = None) -> None:
        if requests_per_second < 0:
            raise ValueError("requests_per_second must be >= 0")
        self._interval = 1.0 / requests_per_second if requests_per_second > 0 else 0.0
        root = Path(folder or tempfile.gettempdir()) / "esputnik-assets-pacing"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / f"{hashlib.sha256(account.encode()).hexdigest()[:16]}.next"

    def _reserve(self, earliest: float, spacing: float) -> float:
        """Under the file lock: the start this caller gets, and the next one moved past it."""
        with open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                raw = handle.read(8)
                stored = struct.unpack("d", raw)[0] if len(raw) == 8 else 0.0
                if stored > earliest + STALE_AHEAD_SECONDS:  # written before a reboot reset the clock
                    stored = 0.0
                start = max(earliest, stored)
                handle.seek(0)
                handle.truncate()
                handle.write(struct.pack("d", start + spacing))
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return start

    def wait(self) -> None:
        if self._interval == 0.0:
            return
        now = time.monotonic()
        delay = self._reserve(now, self._interval) - now
        if delay > 0:
            time.sleep(delay)

    def hold_off(self, seconds: float) -> None:
        """After a 429 every process waits, not only the one that got it."""
        if self._interval:
            self._reserve(time.monotonic() + seconds, 0.0)
