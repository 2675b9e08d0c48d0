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

from esputnik_assets import redaction
from esputnik_assets.source.errors import (
    ActivityNotEnabledError,
    AttemptError,
    AuthenticationError,
    BadRequestError,
    EndpointNotFoundError,
    EsputnikError,
    ForbiddenError,
    TransientError,
)
from esputnik_assets.source.pacing import RatePacer

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
ACTIVITY_NOT_ENABLED = "Contact support to enable ContactActivity."
# Failures of one attempt that a new attempt may not see: no connection, no answer in time, a cut or garbled body.
TRANSIENT_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
BODY_CHUNK_BYTES = 1 << 16
SHOWN_TEXT_CHARS = 300


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
        request_deadline: float = 300.0,
        retry: RetryPolicy | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        redaction.register_secret(api_key)  # any text leaving the process is redacted of it from now on
        self._timeout = (connect_timeout, read_timeout)
        self._deadline = request_deadline
        self._retry = retry or RetryPolicy()
        self._pacer = RatePacer(requests_per_second, account=self.base_url)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self.stats = ClientStats()
        self.log = log or logging.getLogger("esputnik_assets.source")

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
        """Remove every form of the key from text that may leave this object (servers echo headers and URLs)."""
        return redaction.redact(text, self._api_key)

    def _shown(self, text: str) -> str:
        """A server's or an exception's text as errors and logs may repeat it: redacted whole, then shortened."""
        return self.redact(text).strip()[:SHOWN_TEXT_CHARS]

    def get(self, path: str, params: Mapping[str, object], *, dataset: str | None = None) -> bytes:
        """One GET with pacing and retries; returns the body, or raises an error a person can act on.

        `dataset` names the read in errors and log lines, so that they say once which dataset failed.
        """
        where = f"{dataset}: GET {path}" if dataset else f"GET {path}"
        url = f"{self.base_url}{path}"
        started: float | None = None
        waited = 0.0
        for attempt in range(1, self._retry.max_attempts + 1):
            self._pacer.wait()
            started = time.monotonic() if started is None else started
            try:
                status, body, headers = self._attempt(url, params)
            except TRANSIENT_EXCEPTIONS as exc:
                cause = AttemptError(self._shown(f"{type(exc).__name__}: {exc}"))
                delay = self._retry.backoff(attempt)
            except _DeadlinePassed:
                cause = AttemptError(
                    f"the answer was not complete after {self._deadline:g}s (request_deadline_seconds)"
                )
                delay = self._retry.backoff(attempt)
            except requests.RequestException as exc:
                cause = AttemptError(self._shown(f"{type(exc).__name__}: {exc}"))
                break  # e.g. a redirect loop or an invalid URL: another attempt would fail the same way
            else:
                self.stats.record(status, len(body))
                if status == 200:
                    return body
                text = self._shown(body.decode("utf-8", errors="replace"))
                if status not in RETRYABLE_STATUSES:
                    raise self._fatal(status, where, text)
                cause = AttemptError(f"HTTP {status}" + (f": {text}" if text else ""))
                hinted = retry_after_seconds(headers.get("Retry-After"))
                delay = hinted if hinted is not None else self._retry.backoff(attempt)
                if status == 429:
                    self._pacer.hold_off(delay)
            if attempt == self._retry.max_attempts or waited + delay > self._retry.max_total_wait:
                spent = time.monotonic() - started
                raise TransientError(
                    f"{where} still failing after {attempt} attempt(s) over {spent:.1f}s "
                    f"({waited:.1f}s of it waiting between attempts): {cause}"
                ) from cause
            self.stats.record_retry()
            self.log.warning("%s: %s; retry %d in %.2fs", where, cause, attempt, delay)
            time.sleep(delay)
            waited += delay
        raise EsputnikError(f"{where} failed and cannot succeed on a retry: {cause}") from cause

    def _attempt(self, url: str, params: Mapping[str, object]) -> tuple[int, bytes, Mapping[str, str]]:
        """One request whose whole answer must arrive within the deadline: a trickling body is cut off.

        The read timeout bounds each socket read only; a watchdog shuts the socket when the deadline passes, which
        ends the read that is waiting.
        """
        begun = time.monotonic()
        passed = threading.Event()

        def cut(response: requests.Response) -> None:
            passed.set()
            try:
                response.raw.shutdown()
            except (ValueError, RuntimeError, OSError):
                pass  # the answer was complete and its connection already handed back

        with self._session().get(url, params=dict(params), timeout=self._timeout, stream=True) as response:
            watchdog = threading.Timer(self._deadline - (time.monotonic() - begun), cut, (response,))
            watchdog.daemon = True
            watchdog.start()
            try:
                body = b"".join(response.iter_content(BODY_CHUNK_BYTES))
            except requests.RequestException:
                if passed.is_set():
                    raise _DeadlinePassed from None
                raise
            finally:
                watchdog.cancel()
            if passed.is_set():  # a cut answer without Content-Length ends like a whole one: trust neither
                raise _DeadlinePassed
            return response.status_code, body, response.headers

    def _fatal(self, status: int, where: str, text: str) -> Exception:
        if status == 401:
            return AuthenticationError(
                f"{where}: eSputnik rejected the API key (401). Check ESPUTNIK_API_KEY: it must be an API key "
                "of this account with read access (Settings -> API in eSputnik)."
            )
        if status == 403:
            return ForbiddenError(
                f"{where}: eSputnik refused this API key access to the endpoint (403): the key lacks permission "
                "for it. Use an API key with read access to this endpoint (Settings -> API in eSputnik), or "
                f"switch the dataset off via ESPUTNIK_DATASETS. The server said: {text or '(no text)'}"
            )
        if status == 400 and ACTIVITY_NOT_ENABLED in text:
            return ActivityNotEnabledError(
                f"{where}: {ACTIVITY_NOT_ENABLED} eSputnik must enable the contact activity export for this "
                "account before contactActivities can be read; until then leave it out of ESPUTNIK_DATASETS."
            )
        if status == 400:
            return BadRequestError(f"{where}: eSputnik answered 400 Bad Request: {text or '(no text)'}")
        if status == 404:
            return EndpointNotFoundError(
                f"{where}: this account has no such endpoint (404). If the path is one this project assumes, "
                "set the account's path in the resource's endpoint_paths, or switch the dataset off via ESPUTNIK_DATASETS."
            )
        return BadRequestError(f"{where}: eSputnik answered HTTP {status}: {text or '(no text)'}")


class _DeadlinePassed(Exception):
    """The watchdog cut an answer that did not arrive within the request deadline (handled as transient)."""
