"""The eSputnik resource: a live account when an API key is configured, the built-in demo account only when chosen.

The demo account is never a fallback: Dagster replaces a resource's whole configuration when a run sets any of it
(the launchpad), which drops a key given as an EnvVar. A run without a key and without `demo_account: true` fails
and says so, instead of quietly writing synthetic rows into a real warehouse.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg
from pydantic import Field

from esputnik_assets.source.client import DEFAULT_MAX_ANSWER_BYTES, EsputnikClient, RetryPolicy
from esputnik_assets.source.errors import AccountNotConfiguredError
from esputnik_assets.source.extract import SPOOL_BATCH_ROWS
from esputnik_assets.source.paging import ActivityWindowing, ReadLimits
from esputnik_assets.specs import SourceSpec

DEFAULT_API_URL = "https://esputnik.com/api"
DEMO_NOTICE = "demo account (synthetic data served in-process; set ESPUTNIK_API_KEY to read your account)"
NO_ACCOUNT = (
    "No eSputnik API key is configured for this run and the demo account was not chosen, so nothing was read. "
    "Set ESPUTNIK_API_KEY for your account. If this run sets config for the `esputnik` resource (the launchpad), "
    "Dagster replaces the resource's whole configuration: include `api_key: {env: ESPUTNIK_API_KEY}` in it (or "
    "`demo_account: true` for the built-in demo account)."
)
DEMO_NOT_WIRED = (
    "demo_account: true was set for a code location loaded for a live account, which does not serve the demo "
    "account; load the code location with ESPUTNIK_DEMO=true (and no ESPUTNIK_API_KEY) to read it."
)


@dataclass
class ApiSession:
    """An open client plus what the run should say about where its data came from."""

    client: EsputnikClient
    is_demo: bool

    @property
    def source_label(self) -> str:
        return DEMO_NOTICE if self.is_demo else f"eSputnik account at {self.client.base_url}"


class EsputnikResource(dg.ConfigurableResource):
    """Connection settings for eSputnik's API: an API key for a live account, or an explicit choice of the demo."""

    api_key: str | None = Field(default=None, description="API key (ESPUTNIK_API_KEY)")
    demo_account: bool = Field(
        default=False, description="Read the built-in synthetic demo account instead of a live one (no key allowed)"
    )
    api_url: str = Field(default=DEFAULT_API_URL, description="Base URL; paths /v1/..., /v2/... below it")
    max_requests_per_second: float = Field(default=1.0, description="Pacing of API calls; 0 = no pacing")
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 120.0
    max_attempts: int = Field(default=6, description="Attempts per request on 429/5xx/connection errors")
    retry_base_delay_seconds: float = Field(default=1.0, description="First back-off; it doubles per attempt (with jitter)")
    max_total_retry_wait_seconds: float = 900.0
    endpoint_paths: dict[str, str] = Field(
        default_factory=dict,
        description="Path per source for this account, e.g. {'orders': '/v1/orders'}; assumed endpoints may differ",
    )
    activity_max_window_hours: float = Field(default=24.0, description="Longest activity window (the API misbehaves past a day)")
    activity_window_row_limit: int = Field(
        default=50_000, description="Rows after which an activity window counts as full (at most the cursor's depth)"
    )
    max_concurrent_requests: int = Field(
        default=1, description="Activity windows read at once; raise it when the account allows several requests a second"
    )
    spool_batch_rows: int = Field(
        default=SPOOL_BATCH_ROWS, description="Rows shaped and spooled at once (bounds memory)"
    )
    spool_folder: str | None = Field(
        default=None, description="Where reads spool Parquet parts before the write (default: the system temp folder)"
    )
    request_deadline_seconds: float = Field(
        default=300.0,
        description="Longest time one HTTP exchange may take: connect, headers and answer (a trickling one is cut and retried)",
    )
    max_answer_bytes: int = Field(
        default=DEFAULT_MAX_ANSWER_BYTES,
        description="Largest answer one request may bring (64 MiB); a larger one fails the read, unread and not retried",
    )
    max_pages_per_read: int = Field(
        default=200_000, description="Pages one read may take before it fails as paging that never ends"
    )
    max_rows_per_read: int = Field(
        default=50_000_000, description="Rows one read may answer before it fails as paging that never ends"
    )

    def demo_endpoint(self, run_id: str | None, stack: contextlib.ExitStack) -> tuple[str, str, bool]:
        """(url, api key, started now) of the demo account's server; the wiring plugs the demo in by a subclass
        (`esputnik_assets.demo.resource`), so this package never loads or knows it."""
        raise AccountNotConfiguredError(DEMO_NOT_WIRED)

    def path_for(self, source: SourceSpec) -> str:
        return self.endpoint_paths.get(source.name, source.path)

    def windowing(self) -> ActivityWindowing:
        hours = min(24.0, self.activity_max_window_hours)
        return ActivityWindowing(
            max_window=timedelta(hours=hours),
            window_row_limit=self.activity_window_row_limit,
            concurrency=max(1, self.max_concurrent_requests),
            limits=ReadLimits(max_pages=self.max_pages_per_read, max_rows=self.max_rows_per_read),
        )

    def _client(self, base_url: str, api_key: str, requests_per_second: float, log: logging.Logger) -> EsputnikClient:
        return EsputnikClient(
            base_url,
            api_key,
            log=log,
            requests_per_second=requests_per_second,
            connect_timeout=self.connect_timeout_seconds,
            read_timeout=self.read_timeout_seconds,
            request_deadline=self.request_deadline_seconds,
            max_answer_bytes=self.max_answer_bytes,
            retry=RetryPolicy(
                max_attempts=self.max_attempts,
                base_delay=self.retry_base_delay_seconds,
                max_total_wait=self.max_total_retry_wait_seconds,
            ),
        )

    @contextlib.contextmanager
    def open(self, log: logging.Logger | None = None, run_id: str | None = None) -> Iterator[ApiSession]:
        """A client for the configured account, or for the demo account: the run's shared demo server when `run_id`
        is given (started by its first step), else one for the duration of the block."""
        log = log or logging.getLogger(__name__)
        if self.api_key and self.demo_account:
            raise AccountNotConfiguredError(
                "Both an API key and demo_account: true are configured; choose one (unset ESPUTNIK_DEMO or the key)."
            )
        if not self.api_key and not self.demo_account:
            raise AccountNotConfiguredError(NO_ACCOUNT)
        if self.api_key:
            client = self._client(self.api_url, self.api_key, self.max_requests_per_second, log)
            try:
                yield ApiSession(client, False)
            finally:
                client.close()
            return
        with contextlib.ExitStack() as stack:
            url, api_key, started = self.demo_endpoint(run_id, stack)
            if started:
                log.warning("Reading the built-in %s at %s, as configured (demo_account)", DEMO_NOTICE, url)
            client = self._client(url, api_key, 0.0, log)
            try:
                yield ApiSession(client, True)
            finally:
                client.close()
