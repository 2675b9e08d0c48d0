"""HTTP client for eSputnik's API: Basic auth, explicit timeouts, shared pacing, and retries that honour Retry-After."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

import requests

from esputnik_assets.source.errors import (
    ActivityNotEnabledError,
    AuthenticationError,
    BadRequestError,
    EndpointNotFoundError,
    TransientError,
)
from esputnik_assets.source.pacing import RatePacer

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
ACTIVITY_NOT_ENABLED = "Contact support to enable ContactActivity."


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by attempts and by total time spent waiting."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_total_wait: float = 600.0

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass
class ClientStats:
    """Request accounting for run metadata and the benchmark."""

    requests: int = 0
    retries: int = 0
    bytes_received: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, status: int, size: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_received += size
            self.by_status[status] = self.by_status.get(status, 0) + 1

    def record_retry(self) -> None:
        with self._lock:
            self.retries += 1


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class EsputnikClient:
    """GETs against one account; thread-safe (a session per thread, one pacer for all)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        requests_per_second: float = 1.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = (connect_timeout, read_timeout)
        self._retry = retry or RetryPolicy()
        self._pacer = RatePacer(requests_per_second)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self.stats = ClientStats()

    def __repr__(self) -> str:  # the key stays out of reprs, logs and tracebacks' locals
        return f"EsputnikClient(base_url={self.base_url!r})"

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = ("", self._api_key)
            session.headers.update({"Accept": "application/json", "User-Agent": "esputnik-assets"})
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def redact(self, text: str) -> str:
        """Remove the key from any text that may leave this object (server bodies can echo headers)."""
        return text.replace(self._api_key, "***") if self._api_key else text

    def get(self, path: str, params: Mapping[str, object]) -> bytes:
        """One GET with pacing and retries; returns the body, or raises an error a person can act on."""
        url = f"{self.base_url}{path}"
        waited = 0.0
        for attempt in range(1, self._retry.max_attempts + 1):
            self._pacer.wait()
            try:
                response = self._session().get(url, params=dict(params), timeout=self._timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure, delay = f"{type(exc).__name__}", self._retry.backoff(attempt)
            else:
                body = response.content
                self.stats.record(response.status_code, len(body))
                if response.status_code == 200:
                    return body
                text = self.redact(body[:300].decode("utf-8", errors="replace").strip())
                if response.status_code not in RETRYABLE_STATUSES:
                    raise self._fatal(response.status_code, path, text)
                failure = f"HTTP {response.status_code}"
                hinted = retry_after_seconds(response.headers.get("Retry-After"))
                delay = hinted if hinted is not None else self._retry.backoff(attempt)
                if response.status_code == 429:
                    self._pacer.hold_off(delay)
            if attempt == self._retry.max_attempts or waited + delay > self._retry.max_total_wait:
                raise TransientError(
                    f"GET {path} still failing after {attempt} attempt(s) and {waited:.1f}s of waiting: {failure}"
                )
            self.stats.record_retry()
            log.warning("GET %s: %s; retry %d in %.2fs", path, failure, attempt, delay)
            time.sleep(delay)
            waited += delay
        raise AssertionError("unreachable")

    def _fatal(self, status: int, path: str, text: str) -> Exception:
        if status == 401:
            return AuthenticationError(
                f"GET {path}: eSputnik rejected the API key (401). Check ESPUTNIK_API_KEY: it must be an API key "
                "of this account with read access (Settings -> API in eSputnik)."
            )
        if status == 400 and ACTIVITY_NOT_ENABLED in text:
            return ActivityNotEnabledError(
                f"GET {path}: {ACTIVITY_NOT_ENABLED} eSputnik must enable the contact activity export for this "
                "account before contactActivities can be read; until then leave it out of ESPUTNIK_DATASETS."
            )
        if status == 400:
            return BadRequestError(f"GET {path}: eSputnik answered 400 Bad Request: {text or '(no text)'}")
        if status == 404:
            return EndpointNotFoundError(
                f"GET {path}: this account has no such endpoint (404). If the path is one this project assumes, "
                "set the account's path in the resource's endpoint_paths, or switch the dataset off via ESPUTNIK_DATASETS."
            )
        return BadRequestError(f"GET {path}: eSputnik answered HTTP {status}: {text or '(no text)'}")
