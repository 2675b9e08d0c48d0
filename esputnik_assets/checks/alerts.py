"""Alerts that reach a person: failed checks, late tables and failed runs posted to a Slack-compatible webhook.

One message per incident: a check's incident opens when it fails and closes when it passes again (a late table is
its `partition_on_time` check failing), and every failed run is its own incident. The webhook URL is a secret: it is
held as an EnvVar and never logged; a post that fails is retried on the next ticks and never fails a run.

Dagster abandons a sensor tick after 60 s and keeps nothing of it, cursor included, so a slow webhook would make every
tick post the same alerts again. A tick therefore stops starting posts that could end past its budget, and records
each delivered post in its cursor as it goes: what did not fit waits for the next tick.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg
import requests
from dagster._core.events import DagsterEventType
from pydantic import Field

from esputnik_assets.keys import ACCOUNT_TAG, SINGLE_ACCOUNT, AccountNames
from esputnik_assets.redaction import redact, register_secret

ALERT_SENSOR = "esputnik_alerts"
BATCH = 500  # run failures read per tick
PENDING_LIMIT = 50  # unsent messages kept for the next ticks
WEBHOOK_VARIABLE = "ESPUTNIK_ALERT_WEBHOOK_URL"  # a secret: held as an EnvVar, never logged


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go; no URL, no posts."""

    url: str | None = Field(default=None, description="Slack-compatible webhook URL (ESPUTNIK_ALERT_WEBHOOK_URL)")
    ui_url: str = Field(default="http://127.0.0.1:3000", description="Base URL of the Dagster UI, for links")
    account_key: str | None = Field(
        default=None,
        description="The account's API key (an EnvVar), held only so that the daemon, where no client ever sent it, "
        "redacts alerts of it too",
    )
    attempts: int = 3
    connect_timeout_seconds: float = 5.0
    timeout_seconds: float = Field(default=10.0, description="Longest wait for the webhook's answer to one post")
    tick_budget_seconds: float = Field(
        default=40.0, description="Time one sensor tick may spend, posts included (Dagster abandons a tick at 60 s)"
    )

    def post(self, text: str, deadline: float, log: dg.DagsterLogManager | None = None) -> bool:
        """POST {"text": ...}; True once delivered. No attempt starts that could end after `deadline` (monotonic).

        An attempt that got no answer in time is not repeated: the webhook may have taken it, and a second post
        would alert twice. Errors are logged by kind only, never with the URL.
        """
        if not self.url:
            return False
        worst = self.connect_timeout_seconds + self.timeout_seconds
        for attempt in range(1, self.attempts + 1):
            if time.monotonic() + worst > deadline:
                return False
            try:
                response = requests.post(
                    self.url, json={"text": text}, timeout=(self.connect_timeout_seconds, self.timeout_seconds)
                )
            except requests.ReadTimeout:
                if log:
                    log.warning(f"Alert webhook gave no answer within {self.timeout_seconds:g}s; not posted again, "
                                "as it may have arrived")  # fmt: skip
                return True
            except requests.RequestException as exc:
                problem = type(exc).__name__
            else:
                if response.status_code < 300:
                    return True
                problem = f"HTTP {response.status_code}"
            if log:
                log.warning(f"Alert webhook post failed ({problem}), attempt {attempt} of {self.attempts}")
            if attempt < self.attempts:
                pause = min(4.0, 0.5 * 2 ** (attempt - 1))
                if time.monotonic() + pause + worst > deadline:
                    return False
                time.sleep(pause)
        return False


@dataclass
class AlertState:
    """The sensor's cursor: where it read run failures up to, which incidents are open, messages still to deliver."""

    runs: str | None = None
    open: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, cursor: str | None) -> AlertState:
        return cls(**json.loads(cursor)) if cursor else cls()

    def dump(self) -> str:
        return json.dumps({"runs": self.runs, "open": sorted(self.open), "pending": self.pending})


def _check_message(evaluation: dg.AssetCheckEvaluation, ui_url: str, account: str) -> str:
    asset = evaluation.asset_key.to_user_string()
    figures = {k: v.value for k, v in evaluation.metadata.items() if isinstance(v.value, (int, float, str)) and k != "examples"}
    days = evaluation.metadata.get("days") or evaluation.metadata.get("due_partition")
    partition = evaluation.partition or (
        ", ".join(d["day"] for d in days.value) if days and isinstance(days.value, list) else (days.value if days else "")
    )
    return (
        f":red_circle: {account}{evaluation.severity.value} check `{evaluation.check_name}` failed on `{asset}`"
        + (f" for {partition}" if partition else "")
        + f"\n{evaluation.description or ''}"
        + (f"\n{json.dumps(figures, default=str, sort_keys=True)}" if figures else "")
        + f"\n{ui_url}/assets/{'/'.join(evaluation.asset_key.path)}?view=checks"
    )


def _run_message(record: dg.EventLogRecord, ui_url: str, account: str) -> str:
    entry = record.event_log_entry
    message = (entry.dagster_event.message if entry.dagster_event else None) or entry.user_message
    return f":x: {account}Run `{entry.run_id}` ({entry.job_name}) failed\n{message}\n{ui_url}/runs/{entry.run_id}"


def _account_runs(instance: dg.DagsterInstance, run_ids: Sequence[str], names: AccountNames) -> set[str]:
    """The runs (of `run_ids`) that are this account's: tagged with it, or selecting its assets or checks."""
    if names.account is None:
        return set(run_ids)
    prefixes = {names.raw_prefix, names.metrics_prefix}
    mine = set()
    for run in instance.get_runs(dg.RunsFilter(run_ids=list(run_ids))) if run_ids else []:
        keys = [*(run.asset_selection or ()), *(c.asset_key for c in run.asset_check_selection or ())]
        if run.tags.get(ACCOUNT_TAG) == names.account or any(key.path[0] in prefixes for key in keys):
            mine.add(run.run_id)
    return mine


def _failed_checks(instance: dg.DagsterInstance, check_keys: Sequence[dg.AssetCheckKey]) -> dict[str, dg.AssetCheckEvaluation]:
    """The checks whose latest evaluation failed, by incident name (works on every event log storage)."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(check_keys))
    failed = {}
    for key, record in latest.items():
        evaluation = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
        if isinstance(evaluation, dg.AssetCheckEvaluation) and not evaluation.passed:
            failed[f"{key.asset_key.to_user_string()}:{key.name}"] = evaluation
    return failed


def build_alert_sensor(
    check_keys: Sequence[dg.AssetCheckKey], names: AccountNames = SINGLE_ACCOUNT
) -> dg.SensorDefinition:
    """One account's alerts: its checks and its failed runs, each message naming the account of an accounts file."""
    webhook_key = names.resource("alert_webhook")
    account = "" if names.account is None else f"[{names.account}] "

    @dg.sensor(
        name=names.named(ALERT_SENSOR),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts failed checks, late tables and failed runs to ESPUTNIK_ALERT_WEBHOOK_URL, once per incident"
        + ("." if names.account is None else f", of {names.label}."),
        required_resource_keys={webhook_key},
    )
    def alerts(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        alert_webhook: AlertWebhook = getattr(context.resources, webhook_key)
        deadline = time.monotonic() + alert_webhook.tick_budget_seconds
        register_secret(alert_webhook.account_key)
        state = AlertState.load(context.cursor)
        failed = _failed_checks(context.instance, check_keys)
        new = [
            _check_message(failed[name], alert_webhook.ui_url, account)
            for name in sorted(failed)
            if name not in state.open
        ]
        runs = context.instance.fetch_run_status_changes(
            DagsterEventType.RUN_FAILURE, limit=BATCH, cursor=state.runs, ascending=True
        )
        mine = _account_runs(context.instance, [r.event_log_entry.run_id for r in runs.records], names)
        new += [
            _run_message(record, alert_webhook.ui_url, account)
            for record in runs.records
            if record.event_log_entry.run_id in mine
        ]
        new = [redact(text) for text in new]  # the cursor holds them too, and the UI shows the cursor
        state.runs, state.open = runs.cursor or state.runs, sorted(failed)
        if not alert_webhook.url:
            context.update_cursor(state.dump())
            return dg.SkipReason(
                f"No webhook is set ({WEBHOOK_VARIABLE}), so nothing was posted: {len(new)} new incident(s) would "
                f"have been, {len(failed)} open incident(s)"
            )
        queue = state.pending + new
        if len(queue) > PENDING_LIMIT:
            dropped = len(queue) - PENDING_LIMIT
            context.log.warning(f"{dropped} oldest unsent alert(s) dropped (at most {PENDING_LIMIT} wait)")
        state.pending = queue[-PENDING_LIMIT:]
        context.update_cursor(state.dump())
        sent = 0
        for text in list(state.pending):
            if alert_webhook.post(text, deadline, context.log):
                state.pending.remove(text)
                sent += 1
                context.update_cursor(state.dump())  # each delivered post is recorded at once
        return dg.SkipReason(f"{sent} alert(s) posted, {len(state.pending)} waiting, {len(failed)} open incident(s)")

    return alerts
