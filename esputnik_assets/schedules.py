"""The daily schedule: yesterday plus a look-back of recent days, because opens, clicks, orders and revenue arrive late."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from esputnik_assets.keys import SINGLE_ACCOUNT, AccountNames
from esputnik_assets.run_policy import SCHEDULE_RUN_TAGS

DAILY_JOB = "esputnik_daily"
DAILY_SCHEDULE = "esputnik_daily_schedule"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def daily_range(now: datetime, timezone: str, lookback_days: int, first_partition: date) -> tuple[date, date] | None:
    """First and last day to (re)read on a tick at `now`: the last complete local day and the days before it."""
    yesterday = now.astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)
    if yesterday < first_partition:
        return None
    return max(first_partition, yesterday - timedelta(days=lookback_days)), yesterday


def build_daily_schedule(
    job: dg.UnresolvedAssetJobDefinition,
    timezone: str,
    lookback_days: int,
    first_partition: date,
    hour: int = 3,
    names: AccountNames = SINGLE_ACCOUNT,
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=names.named(DAILY_SCHEDULE),
        job=job,
        cron_schedule=f"0 {hour} * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Every day at {hour:02d}:00 ({timezone}): yesterday and the {lookback_days} day(s) before it, "
        "in one run (entity tables are scanned once for the whole range).",
    )
    def esputnik_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        days = daily_range(context.scheduled_execution_time, timezone, lookback_days, first_partition)
        if days is None:
            return dg.SkipReason(f"no complete day since the first partition {first_partition}")
        first, last = days
        return dg.RunRequest(
            run_key=f"{first}..{last}",
            tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat(), **SCHEDULE_RUN_TAGS,
                  **names.run_tags},  # fmt: skip
        )

    return esputnik_daily_schedule
