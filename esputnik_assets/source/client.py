"""HTTP client for eSputnik's API: Basic auth, explicit timeouts, shared pacing, and retries that honour Retry-After."""

from __future__ import annotations

import email.utils
import logging
import random
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from esputnik_assets import redaction
from esputnik_assets.source.errors import (
    ActivityNotEnabledError,
    AnswerTooLargeError,
    AttemptError,
    AuthenticationError,
    BadRequestError,
    EndpointNotFoundError,
    EsputnikError,
    ForbiddenError,
    RedirectRefusedError,
    TransientError,
)
from esputnik_assets.source.pacing import LONG_WAIT_SECONDS, HoldOff, RatePacer

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
DEFAULT_MAX_ANSWER_BYTES = 64 << 20
DEFAULT_PORTS = {"http": 80, "https": 443}


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
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        retry: RetryPolicy | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(self.base_url)
        self._api_key = api_key
        redaction.register_secret(api_key)  # any text leaving the process is redacted of it from now on
        # the key's forms that answers are searched for (a server copying request credentials into its rows)
        self.echoable_key_forms = redaction.distinctive_forms(api_key)
        self._timeout = (connect_timeout, read_timeout)
        self._deadline = request_deadline
        self._max_answer_bytes = max_answer_bytes
        self._retry = retry or RetryPolicy()
        self.log = log or logging.getLogger("esputnik_assets.source")
        self._pacer = RatePacer(requests_per_second, account=self.base_url, log=self.log)
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
            for scheme in DEFAULT_PORTS:
                session.mount(f"{scheme}://", _WatchedAdapter())
            session.hooks["response"].append(self._refuse_redirect_off_host)
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

    def pending_hold_off(self) -> HoldOff | None:
        """The wait eSputnik asked of this account (a 429's Retry-After, shared by every process), without waiting."""
        return self._pacer.pending_hold_off()

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
            rate_limited = False
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
            except _AnswerTooLarge as exc:
                raise AnswerTooLargeError(
                    f"{where}: the answer {exc.measure} is over the limit of {self._max_answer_bytes:,} bytes "
                    "(max_answer_bytes); it was not read whole, and not retried. If a page of this endpoint really "
                    "is that large, raise max_answer_bytes"
                ) from None
            except _RedirectRefused as exc:
                raise RedirectRefusedError(
                    f"{where}: the server redirected to {exc.target}, off the configured {_origin_text(self._origin)}; "
                    "a redirect to another scheme, host or port is refused (its rows would not come from the "
                    "configured account) and not retried. Set api_url to the "
                    "account's real address if it moved"
                ) from None
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
                rate_limited = status == 429
            if attempt == self._retry.max_attempts or waited + delay > self._retry.max_total_wait:
                spent = time.monotonic() - started
                beyond = (
                    f"; the next wait ({delay:g}s) would pass the retry budget of {self._retry.max_total_wait:g}s "
                    "(max_total_retry_wait_seconds), so none was taken"
                    if attempt < self._retry.max_attempts
                    else ""
                )
                raise TransientError(
                    f"{where} still failing after {attempt} attempt(s) over {spent:.1f}s "
                    f"({waited:.1f}s of it waiting between attempts): {cause}{beyond}"
                ) from cause
            if rate_limited:  # decided after the budget: a wait the run refuses is not imposed on every process
                self._pacer.hold_off(delay, f"{where} answered 429 asking for {delay:g}s")
            self.stats.record_retry()
            until = (
                f", until {(datetime.now(timezone.utc) + timedelta(seconds=delay)).isoformat(timespec='seconds')}"
                if delay > LONG_WAIT_SECONDS
                else ""
            )
            self.log.warning("%s: %s; retry %d in %.2fs%s", where, cause, attempt, delay, until)
            time.sleep(delay)
            waited += delay
        raise EsputnikError(f"{where} failed and cannot succeed on a retry: {cause}") from cause

    def _attempt(self, url: str, params: Mapping[str, object]) -> tuple[int, bytes, Mapping[str, str]]:
        """One request whose whole exchange (connect, status line and headers, body) must end within the deadline.

        The read timeout bounds each socket read only; a watchdog started before sending shuts the socket when the
        deadline passes, which ends the read that is waiting, be it for a header byte or a body byte.
        """
        with _Watchdog(self._deadline) as watchdog:
            try:
                with self._session().get(url, params=dict(params), timeout=self._timeout, stream=True) as response:
                    body = self._bounded_body(response)
                    status, headers = response.status_code, response.headers
            except requests.RequestException:
                if watchdog.passed.is_set():
                    raise _DeadlinePassed from None
                raise
        if watchdog.passed.is_set():  # a cut answer without Content-Length ends like a whole one: trust neither
            raise _DeadlinePassed
        return status, body, headers

    def _bounded_body(self, response: requests.Response) -> bytes:
        """The body, refused above max_answer_bytes: by its Content-Length before reading, else as it streams in."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_answer_bytes:
            raise _AnswerTooLarge(f"of {int(declared):,} bytes (its Content-Length)")
        chunks, size = [], 0
        for chunk in response.iter_content(BODY_CHUNK_BYTES):  # decoded: a compressed answer counts as it unpacks
            size += len(chunk)
            if size > self._max_answer_bytes:
                raise _AnswerTooLarge(f"passed {self._max_answer_bytes:,} bytes while it was read")
            chunks.append(chunk)
        return b"".join(chunks)

    def _refuse_redirect_off_host(self, response: requests.Response, **_: object) -> requests.Response:
        """Before requests follows a redirect: only to the configured scheme, host and port."""
        if response.is_redirect:
            target = urljoin(response.url, self._session().get_redirect_target(response) or "")
            if _origin(target) != self._origin:
                response.close()
                raise _RedirectRefused(_origin_text(_origin(target)))
        return response

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


class _AnswerTooLarge(Exception):
    """An answer over max_answer_bytes; `measure` says how it was found out."""

    def __init__(self, measure: str) -> None:
        super().__init__(measure)
        self.measure = measure


class _RedirectRefused(Exception):
    """A redirect off the configured origin; `target` is its scheme, host and port only (a query may hold secrets)."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


Origin = tuple[str, str, int | None]


def _origin(url: str) -> Origin:
    """Scheme, host and port of a URL, the port filled in from the scheme; an invalid port matches no origin."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def _origin_text(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


class _Watchdog:
    """Shuts the sockets of one attempt when its deadline passes, in whatever phase the exchange is.

    The attempt runs on this thread (each thread has its own session), so connections report their socket to the
    watchdog of their thread when they send a request and when they connect: a connection reused from the pool is
    cut as well as a new one, and a deadline that passed while connecting cuts the socket as soon as it exists. The
    socket itself is kept, not the connection: http.client hands it over to the response of an answer that closes
    the connection, and the connection forgets it.
    """

    _current = threading.local()

    def __init__(self, seconds: float) -> None:
        self.passed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._current.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._current.watchdog = None

    @classmethod
    def report(cls, connection: HTTPConnection) -> None:
        watchdog = getattr(cls._current, "watchdog", None)
        if watchdog is None or connection.sock is None:
            return
        with watchdog._lock:
            if connection.sock not in watchdog._sockets:
                watchdog._sockets.append(connection.sock)
            if watchdog.passed.is_set():
                _shut(connection.sock)

    def _cut(self) -> None:
        with self._lock:
            self.passed.set()
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Shut a socket for both directions: a read waiting on it returns at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _ReportsToWatchdog:
    """A urllib3 connection that tells the attempt's watchdog about itself."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _Watchdog.report(self)  # type: ignore[arg-type]

    def request(self, *args: object, **kwargs: object) -> None:
        _Watchdog.report(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_ReportsToWatchdog, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_ReportsToWatchdog, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter with connections the request deadline can cut (directly and through an HTTP proxy)."""

    POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        self.poolmanager.pool_classes_by_scheme = self.POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: object) -> object:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS managers bring their own pools
            manager.pool_classes_by_scheme = self.POOLS
        return manager
