"""The one map from environment to Definitions: which datasets, which warehouse, which account, which time zone.

Read when Dagster loads the code location (never at import), so tests can build Definitions from a plain dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from esputnik_assets.assets.raw import GROUP, IO_MANAGER_KEY, build_raw_assets
from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.metrics.assets import GROUP as METRICS_GROUP
from esputnik_assets.metrics.wiring import build_metrics
from esputnik_assets.schedules import DAILY_JOB, build_daily_schedule
from esputnik_assets.source.resource import DEFAULT_API_URL, EsputnikResource
from esputnik_assets.warehouse.bigquery_resource import EsputnikBigQueryResource
from esputnik_assets.warehouse.io_manager import BigQueryIOManager, DuckDBIOManager, WarehouseIOManager

DEFAULT_START_DATE = "2026-01-01"
WAREHOUSES = ("duckdb", "bigquery")
CREDENTIALS_VARIABLE = "BIGQUERY_CREDENTIALS_BASE64"  # a service-account key, base64-encoded, as dagster-gcp takes it


class SettingsError(ValueError):
    """An environment variable with a value this project cannot use."""


@dataclass(frozen=True)
class Settings:
    """The environment, parsed and checked once."""

    timezone: str = "UTC"
    start_date: date = date.fromisoformat(DEFAULT_START_DATE)
    datasets: tuple[str, ...] = DATASET_NAMES
    warehouse: str = "duckdb"
    lookback_days: int = 3
    max_partitions_per_run: int = 31
    max_requests_per_second: float = 1.0
    max_concurrent_requests: int = 1

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Settings:
        timezone = _get(env, "ESPUTNIK_TIMEZONE", "UTC")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"ESPUTNIK_TIMEZONE={timezone!r} is not an IANA time zone name") from exc
        listed = _get(env, "ESPUTNIK_DATASETS", ",".join(DATASET_NAMES))
        datasets = tuple(d.strip() for d in listed.split(",") if d.strip())
        unknown = sorted(set(datasets) - set(DATASET_NAMES))
        if unknown or not datasets:
            raise SettingsError(f"ESPUTNIK_DATASETS names {unknown or 'nothing'}; choose from {', '.join(DATASET_NAMES)}")
        warehouse = _get(env, "ESPUTNIK_WAREHOUSE", "duckdb").lower()
        if warehouse not in WAREHOUSES:
            raise SettingsError(f"ESPUTNIK_WAREHOUSE={warehouse!r}: use one of {', '.join(WAREHOUSES)}")
        try:
            start = date.fromisoformat(_get(env, "ESPUTNIK_START_DATE", DEFAULT_START_DATE))
            rate = float(_get(env, "ESPUTNIK_MAX_REQUESTS_PER_SECOND", "1"))
            lookback = int(_get(env, "ESPUTNIK_LOOKBACK_DAYS", "3"))
            concurrent = int(_get(env, "ESPUTNIK_MAX_CONCURRENT_REQUESTS", "1"))
        except ValueError as exc:
            raise SettingsError(f"bad setting: {exc}") from exc
        if rate < 0 or lookback < 0 or concurrent < 1:
            raise SettingsError(
                "ESPUTNIK_MAX_REQUESTS_PER_SECOND and ESPUTNIK_LOOKBACK_DAYS must be >= 0, "
                "ESPUTNIK_MAX_CONCURRENT_REQUESTS >= 1"
            )
        return cls(
            timezone=timezone,
            start_date=start,
            datasets=tuple(d for d in DATASET_NAMES if d in datasets),
            warehouse=warehouse,
            lookback_days=lookback,
            max_requests_per_second=rate,
            max_concurrent_requests=concurrent,
        )


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    return (env.get(name) or default).strip()


def build_resources(env: Mapping[str, str], settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Resources for this environment; the API key stays an EnvVar so its value never lands in config or the UI."""
    esputnik = EsputnikResource(
        api_key=dg.EnvVar("ESPUTNIK_API_KEY") if env.get("ESPUTNIK_API_KEY") else None,
        api_url=_get(env, "ESPUTNIK_API_URL", DEFAULT_API_URL),
        timezone=settings.timezone,
        max_requests_per_second=settings.max_requests_per_second,
        max_concurrent_requests=settings.max_concurrent_requests,
    )
    dataset = _get(env, "ESPUTNIK_DATASET", "esputnik")
    io_manager: WarehouseIOManager
    if settings.warehouse == "bigquery":
        if not env.get("BIGQUERY_PROJECT"):
            raise SettingsError("ESPUTNIK_WAREHOUSE=bigquery needs BIGQUERY_PROJECT (the Google Cloud project id)")
        bigquery = EsputnikBigQueryResource(
            project=_get(env, "BIGQUERY_PROJECT", ""),
            location=env.get("BIGQUERY_LOCATION") or None,
            gcp_credentials=dg.EnvVar(CREDENTIALS_VARIABLE) if env.get(CREDENTIALS_VARIABLE) else None,
            emulator_host=env.get("BIGQUERY_EMULATOR_HOST") or None,
        )
        io_manager = BigQueryIOManager(bigquery=bigquery, dataset=dataset, timezone=settings.timezone)
    else:
        io_manager = DuckDBIOManager(
            path=_get(env, "ESPUTNIK_DUCKDB_PATH", "data/warehouse.duckdb"), dataset=dataset, timezone=settings.timezone
        )
    return {"esputnik": esputnik, IO_MANAGER_KEY: io_manager}


def build_definitions(env: Mapping[str, str]) -> dg.Definitions:
    settings = Settings.from_environ(env)
    partitions = dg.DailyPartitionsDefinition(
        start_date=settings.start_date.isoformat(), timezone=settings.timezone, end_offset=0
    )
    backfill = dg.BackfillPolicy.multi_run(max_partitions_per_run=settings.max_partitions_per_run)
    raw_assets = build_raw_assets(settings.datasets, partitions, backfill)
    resources = build_resources(env, settings)
    metric_assets, metric_resources = build_metrics(
        env, settings.datasets, partitions, backfill, resources[IO_MANAGER_KEY]
    )
    daily_job = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.groups(GROUP, METRICS_GROUP),
        description="All eSputnik tables and their metrics for a range of days",
    )
    return dg.Definitions(
        assets=[*raw_assets, *metric_assets],
        jobs=[daily_job],
        schedules=[build_daily_schedule(daily_job, settings.timezone, settings.lookback_days, settings.start_date)],
        resources=resources | metric_resources,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(os.environ)
