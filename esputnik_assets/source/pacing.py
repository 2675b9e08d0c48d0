"""One request pacer per account, shared by every thread and process on the machine: live accounts answer 429 to
back-to-back calls, and a backfill and the daily schedule may read one account at the same time."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import struct
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

STALE_AHEAD_SECONDS = 3600.0  # a next start further ahead than this cannot be a real queue: the clock was reset
LONG_WAIT_SECONDS = 5.0  # a wait longer than this is logged with its reason and end time
_TIMES = struct.Struct("dd")  # next free start, end of the hold-off a 429 asked for (CLOCK_MONOTONIC)
_REASON_BYTES = 300


@dataclass(frozen=True)
class HoldOff:
    """A wait that eSputnik asked of an account (a 429's Retry-After): how long is left of it, and why."""

    seconds: float
    reason: str

    @property
    def ends_at(self) -> str:
        """Its end as a UTC ISO time, for people (the monotonic clock means nothing outside this machine)."""
        return (datetime.now(timezone.utc) + timedelta(seconds=self.seconds)).isoformat(timespec="seconds")


@dataclass
class _State:
    next_start: float = 0.0
    hold_until: float = 0.0
    reason: str = ""


class RatePacer:
    """One request budget per account for every thread and process on this machine: runs of a backfill and the daily
    schedule reading the same account at once share its rate instead of each pacing itself at the full rate.

    The next free start time lives in a small file per account (keyed by its base URL), updated under an exclusive
    `flock`, with the end and reason of the last hold-off a 429 asked for; times are CLOCK_MONOTONIC, which every
    process on a Linux machine shares. Rate 0 disables pacing.
    """

    def __init__(
        self, requests_per_second: float, account: str, folder: str | None = None, log: logging.Logger | None = None
    ) -> None:
        if requests_per_second < 0:
            raise ValueError("requests_per_second must be >= 0")
        self._interval = 1.0 / requests_per_second if requests_per_second > 0 else 0.0
        self._account = account
        self._log = log or logging.getLogger("esputnik_assets.source")
        root = Path(folder or tempfile.gettempdir()) / "esputnik-assets-pacing"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / f"{hashlib.sha256(account.encode()).hexdigest()[:16]}.next"

    @staticmethod
    def _read(raw: bytes, now: float) -> _State:
        if len(raw) < 8:
            return _State()
        if len(raw) < _TIMES.size:  # the one-number file of earlier versions
            state = _State(next_start=struct.unpack("d", raw[:8])[0])
        else:
            next_start, hold_until = _TIMES.unpack(raw[: _TIMES.size])
            state = _State(next_start, hold_until, raw[_TIMES.size :].decode("utf-8", errors="replace"))
        if state.next_start > now + STALE_AHEAD_SECONDS:  # written before a reboot reset the clock
            return _State()
        return state

    def _update(self, earliest: float, spacing: float, hold: HoldOff | None = None) -> tuple[float, _State]:
        """Under the file lock: the start this caller gets, the next one moved past it, a hold-off recorded."""
        with open(self.path, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                state = self._read(handle.read(), time.monotonic())
                start = max(earliest, state.next_start)
                state.next_start = start + spacing
                if hold is not None and earliest > state.hold_until:
                    state.hold_until, state.reason = earliest, hold.reason
                handle.seek(0)
                handle.truncate()
                reason = state.reason.encode()[:_REASON_BYTES]
                handle.write(_TIMES.pack(state.next_start, state.hold_until) + reason)
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return start, state

    def wait(self) -> None:
        if self._interval == 0.0:
            return
        now = time.monotonic()
        start, state = self._update(now, self._interval)
        delay = start - now
        if delay > LONG_WAIT_SECONDS:
            why = state.reason if state.hold_until > now else f"pacing to {1 / self._interval:g} request(s)/s"
            wait = HoldOff(delay, why)
            self._log.warning(
                "Waiting %.0fs, until %s, before the next request to %s: %s", delay, wait.ends_at, self._account, why
            )
        if delay > 0:
            time.sleep(delay)

    def hold_off(self, seconds: float, reason: str) -> None:
        """After a 429 every process waits, not only the one that got it; `reason` says why to whoever waits."""
        if self._interval:
            self._update(time.monotonic() + seconds, 0.0, HoldOff(seconds, reason))

    def pending_hold_off(self) -> HoldOff | None:
        """The hold-off still ahead for this account, read without waiting for it (None when there is none)."""
        if not self._interval or not self.path.exists():
            return None
        with open(self.path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                now = time.monotonic()
                state = self._read(handle.read(), now)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return HoldOff(state.hold_until - now, state.reason) if state.hold_until > now else None
