"""The one map from environment to Definitions: which datasets, which warehouse, which account, which time zone.

Read when Dagster loads the code location (never at import), so tests can build Definitions from a plain dict.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from esputnik_assets.assets.raw import GROUP, IO_MANAGER_KEY, build_raw_assets
from esputnik_assets.checks.alerts import WEBHOOK_VARIABLE, AlertWebhook, build_alert_sensor
from esputnik_assets.checks.freshness import Freshness, build_freshness_sensor
from esputnik_assets.checks.raw import CheckThresholds
from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.doctor import build_doctor_job
from esputnik_assets.executor import run_executor
from esputnik_assets.metrics.assets import GROUP as METRICS_GROUP
from esputnik_assets.metrics.wiring import build_metrics
from esputnik_assets.run_policy import DAILY_JOB_TAGS, STEP_RETRY_POLICY
from esputnik_assets.schedules import DAILY_JOB, build_daily_schedule
from esputnik_assets.source.resource import DEFAULT_API_URL, EsputnikResource
from esputnik_assets.warehouse.bigquery_resource import EsputnikBigQueryResource
from esputnik_assets.warehouse.io_manager import BigQueryIOManager, DuckDBIOManager, WarehouseIOManager

DEFAULT_START_DATE = "2026-01-01"
WAREHOUSES = ("duckdb", "bigquery")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
CREDENTIALS_VARIABLE = "BIGQUERY_CREDENTIALS_BASE64"  # a service-account key, base64-encoded, as dagster-gcp takes it
# Beta notices a user cannot act on, printed by every process that loads the code: `backfill_policy` on each asset
# (the policy is how a backfill becomes range runs) and `include_sources` from Dagster's own parsing of `--select`.
# Exactly these are silenced; every other warning still shows.
SILENCED_BETA_WARNINGS = (
    r"Parameter `backfill_policy` of function `(multi_)?asset` is currently in beta",
    r"Parameter `include_sources` of function `AssetSelection\.\w+` is currently in beta",
)


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
    demo_account: bool = False
    freshness_deadline_hours: int = 6

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
            deadline = int(_get(env, "ESPUTNIK_FRESHNESS_DEADLINE_HOURS", "6"))
        except ValueError as exc:
            raise SettingsError(f"bad setting: {exc}") from exc
        if not 0 <= deadline <= 23:
            raise SettingsError(f"ESPUTNIK_FRESHNESS_DEADLINE_HOURS={deadline}: hours after midnight, 0 to 23")
        if rate < 0 or lookback < 0 or concurrent < 1:
            raise SettingsError(
                "ESPUTNIK_MAX_REQUESTS_PER_SECOND and ESPUTNIK_LOOKBACK_DAYS must be >= 0, "
                "ESPUTNIK_MAX_CONCURRENT_REQUESTS >= 1"
            )
        today = datetime.now(ZoneInfo(timezone)).date()
        if start > today:
            raise SettingsError(
                f"ESPUTNIK_START_DATE={start} is after today ({today} in {timezone}): no daily partition exists yet, "
                "so there is nothing to materialize. Use the first day whose data you want (default "
                f"{DEFAULT_START_DATE})."
            )
        return cls(
            timezone=timezone,
            start_date=start,
            datasets=tuple(d for d in DATASET_NAMES if d in datasets),
            warehouse=warehouse,
            lookback_days=lookback,
            max_requests_per_second=rate,
            max_concurrent_requests=concurrent,
            demo_account=_demo_account(env, warehouse),
            freshness_deadline_hours=deadline,
        )


def _demo_account(env: Mapping[str, str], warehouse: str) -> bool:
    """The demo account is an explicit choice, implied only for an embedded DuckDB with no account configured at all."""
    has_key, has_url = bool(env.get("ESPUTNIK_API_KEY")), bool(env.get("ESPUTNIK_API_URL"))
    flag = _get(env, "ESPUTNIK_DEMO", "").lower()
    if flag not in ("", *TRUE, *FALSE):
        raise SettingsError(f"ESPUTNIK_DEMO={flag!r}: use true or false")
    if flag in TRUE:
        if has_key or has_url:
            raise SettingsError(
                "ESPUTNIK_DEMO=true reads the built-in demo account, but ESPUTNIK_API_KEY or ESPUTNIK_API_URL is set "
                "too: unset one side so it is clear which account the tables come from"
            )
        return True
    if has_key:
        return False
    if has_url:
        raise SettingsError(
            "ESPUTNIK_API_URL is set but ESPUTNIK_API_KEY is not: set the account's API key (the demo account is "
            "never used in place of a configured account)"
        )
    if flag in FALSE or warehouse != "duckdb":
        raise SettingsError(
            "No eSputnik account is configured: set ESPUTNIK_API_KEY (and ESPUTNIK_API_URL if not esputnik.com), "
            "or ESPUTNIK_DEMO=true to load the built-in synthetic demo account"
            + (" into BigQuery" if warehouse != "duckdb" else "")
        )
    return True


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    return (env.get(name) or default).strip()


def build_resources(env: Mapping[str, str], settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Resources for this environment; the API key stays an EnvVar so its value never lands in config or the UI."""
    esputnik = EsputnikResource(
        api_key=dg.EnvVar("ESPUTNIK_API_KEY") if env.get("ESPUTNIK_API_KEY") else None,
        demo_account=settings.demo_account,
        demo_broken_days=[d.strip() for d in _get(env, "ESPUTNIK_DEMO_BROKEN_DAYS", "").split(",") if d.strip()],
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
    return {
        "esputnik": esputnik,
        IO_MANAGER_KEY: io_manager,
        "check_thresholds": CheckThresholds(
            volume_min_ratio=_float(env, "ESPUTNIK_CHECK_VOLUME_MIN_RATIO", 0.5),
            max_day_drop=_float(env, "ESPUTNIK_CHECK_MAX_DAY_DROP", 0.5),
            kpi_max_drop=_float(env, "ESPUTNIK_CHECK_KPI_MAX_DROP", 0.3),
            duplicate_warn_share=_float(env, "ESPUTNIK_CHECK_DUPLICATE_WARN_SHARE", 0.1),
        ),
        "alert_webhook": AlertWebhook(
            url=dg.EnvVar(WEBHOOK_VARIABLE) if env.get(WEBHOOK_VARIABLE) else None,
            ui_url=_get(env, "ESPUTNIK_UI_URL", "http://127.0.0.1:3000").rstrip("/"),
            account_key=dg.EnvVar("ESPUTNIK_API_KEY") if env.get("ESPUTNIK_API_KEY") else None,
        ),
    }


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(_get(env, name, str(default)))
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from exc
    if not 0 <= value <= 1:
        raise SettingsError(f"{name}={value}: a share between 0 and 1")
    return value


def build_definitions(env: Mapping[str, str]) -> dg.Definitions:
    for message in SILENCED_BETA_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=dg.BetaWarning)
    settings = Settings.from_environ(env)
    partitions = dg.DailyPartitionsDefinition(
        start_date=settings.start_date.isoformat(), timezone=settings.timezone, end_offset=0
    )
    backfill = dg.BackfillPolicy.multi_run(max_partitions_per_run=settings.max_partitions_per_run)
    freshness = Freshness(settings.timezone, settings.freshness_deadline_hours, settings.start_date)
    owners = [o.strip() for o in _get(env, "ESPUTNIK_OWNERS", "").split(",") if o.strip()]
    raw_assets = build_raw_assets(settings.datasets, partitions, backfill, freshness, settings.warehouse, owners)
    resources = build_resources(env, settings)
    metric_assets, metric_resources = build_metrics(
        env, settings.datasets, partitions, backfill, resources[IO_MANAGER_KEY], freshness, settings.demo_account
    )
    all_assets = [*raw_assets, *metric_assets]
    daily_job = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.groups(GROUP, METRICS_GROUP),
        description="All eSputnik tables and their metrics for a range of days",
        op_retry_policy=STEP_RETRY_POLICY,
        tags=DAILY_JOB_TAGS,
    )
    return dg.Definitions(
        assets=all_assets,
        jobs=[daily_job, build_doctor_job(settings.datasets)],
        schedules=[build_daily_schedule(daily_job, settings.timezone, settings.lookback_days, settings.start_date)],
        sensors=[
            build_freshness_sensor([key for assets in all_assets for key in assets.keys], freshness),
            build_alert_sensor([key for assets in all_assets for key in assets.check_keys]),
        ],
        resources=resources | metric_resources,
        executor=run_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(os.environ)
