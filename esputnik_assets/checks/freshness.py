"""Freshness: the latest due daily partition must be materialized by a deadline after its day ends (account zone).

Dagster's own `FreshnessPolicy` (a cron deadline, evaluated by the daemon) marks an asset that has not materialized
recently; it does not know about partitions. The partition check here asks the sharper question, "is yesterday's
partition there by 06:00?", and is evaluated both by the step that writes the table and, between runs, by a sensor
that records its result, so a late table turns red without anyone clicking.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from esputnik_assets.checks.raw import ERROR, Outcome
from esputnik_assets.keys import SINGLE_ACCOUNT, AccountNames

PARTITION_ON_TIME = "partition_on_time"
FRESHNESS_SENSOR = "esputnik_freshness"


@dataclass(frozen=True)
class Freshness:
    """When a daily partition is due: `deadline_hours` after its day ends in the account's time zone."""

    timezone: str
    deadline_hours: int = 6
    first_day: date = date(2026, 1, 1)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(ZoneInfo("UTC")), compare=False)

    @property
    def description(self) -> str:
        return (
            f"The latest due daily partition is materialized: a day is due {self.deadline_hours} h after it ends in "
            "the account's time zone (ESPUTNIK_FRESHNESS_DEADLINE_HOURS)."
        )

    def policy(self) -> dg.FreshnessPolicy:
        """Dagster's asset-level freshness: a materialization in the 24 hours before each day's deadline."""
        return dg.FreshnessPolicy.cron(
            deadline_cron=f"0 {self.deadline_hours} * * *", lower_bound_delta=timedelta(hours=24), timezone=self.timezone
        )

    def latest_due_day(self, now: datetime) -> date:
        """The last local day whose deadline (its end plus `deadline_hours`) has passed at `now`."""
        local = now.astimezone(ZoneInfo(self.timezone))
        return (local - timedelta(hours=self.deadline_hours)).date() - timedelta(days=1)

    def evaluate(
        self, instance: dg.DagsterInstance, key: dg.AssetKey, now: datetime, covered: Collection[str] = ()
    ) -> Outcome:
        """`covered`: the partitions the evaluating run is materializing (not yet in the event log)."""
        due = self.latest_due_day(now)
        metadata: dict[str, object] = {"due_partition": due.isoformat(), "deadline_hours": self.deadline_hours}
        if due < self.first_day:
            return Outcome(True, f"no partition due yet (the first is {self.first_day})", metadata)
        if due.isoformat() in covered:
            return Outcome(True, f"partition {due} is materialized by this run", metadata)
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[due.isoformat()]), limit=1
        ).records
        if records:
            metadata["materialized_at"] = datetime.fromtimestamp(records[0].timestamp, ZoneInfo(self.timezone)).isoformat()
            return Outcome(True, f"partition {due} is materialized", metadata)
        late = f"partition {due} is late: not materialized {self.deadline_hours} h after its day ended"
        return Outcome(False, late, metadata, ERROR)


def build_freshness_sensor(
    keys: Sequence[dg.AssetKey], freshness: Freshness, names: AccountNames = SINGLE_ACCOUNT
) -> dg.SensorDefinition:
    """Records `partition_on_time` for every asset of one account between runs, once per change of its state."""

    @dg.sensor(
        name=names.named(FRESHNESS_SENSOR),
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Evaluates each table's partition_on_time check between runs, so a late table turns red.",
    )
    def evaluate_freshness(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = freshness.clock()
        last = json.loads(context.cursor) if context.cursor else {}
        state, events = {}, []
        for key in keys:
            outcome = freshness.evaluate(context.instance, key, now)
            name = key.to_user_string()
            state[name] = f"{outcome.metadata['due_partition']}:{outcome.passed}"
            if last.get(name) != state[name]:
                events.append(outcome.evaluation(key, PARTITION_ON_TIME))
        return dg.SensorResult(asset_events=events, cursor=json.dumps(state, sort_keys=True))

    return evaluate_freshness
