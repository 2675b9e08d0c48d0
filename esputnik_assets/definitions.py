"""The one map from Settings to Definitions: which datasets, which warehouse, which accounts, which time zones.

The environment is read when Dagster loads the code location (never at import), by `Settings.from_environ`, so tests
build Definitions from Settings of a plain dict.
"""

from __future__ import annotations

import os
import warnings

import dagster as dg

from esputnik_assets.assets.raw import build_raw_assets
from esputnik_assets.checks.alerts import WEBHOOK_VARIABLE, AlertWebhook, build_alert_sensor
from esputnik_assets.checks.freshness import Freshness, build_freshness_sensor
from esputnik_assets.checks.raw import CheckThresholds
from esputnik_assets.doctor import build_doctor_job
from esputnik_assets.executor import run_executor
from esputnik_assets.keys import IO_MANAGER_KEY, SINGLE_ACCOUNT, AccountNames
from esputnik_assets.metrics.assets import build_stale_days_sensor
from esputnik_assets.metrics.wiring import build_metrics
from esputnik_assets.run_policy import DAILY_JOB_TAGS, STEP_RETRY_POLICY
from esputnik_assets.schedules import DAILY_JOB, build_daily_schedule
from esputnik_assets.settings import API_KEY_VARIABLE, CREDENTIALS_VARIABLE, Settings
from esputnik_assets.source.resource import EsputnikResource
from esputnik_assets.warehouse.bigquery_resource import EsputnikBigQueryResource
from esputnik_assets.warehouse.io_manager import BigQueryIOManager, DuckDBIOManager, WarehouseIOManager

MAX_PARTITIONS_PER_RUN = 31  # a backfill becomes range runs of at most this many days
# Beta notices a user cannot act on, printed by every process that loads the code: `backfill_policy` on each asset
# (the policy is how a backfill becomes range runs) and `include_sources` from Dagster's own parsing of `--select`.
# Exactly these are silenced; every other warning still shows.
SILENCED_BETA_WARNINGS = (
    r"Parameter `backfill_policy` of function `(multi_)?asset` is currently in beta",
    r"Parameter `include_sources` of function `AssetSelection\.\w+` is currently in beta",
)


def build_resources(settings: Settings, names: AccountNames = SINGLE_ACCOUNT) -> dict[str, dg.ConfigurableResource]:
    """One account's resources, keyed by its names; secrets stay EnvVars so their values never land in config or
    the UI."""
    api_key = dg.EnvVar(settings.api_key_variable) if settings.api_key_set else None
    account = {
        "api_key": api_key, "api_url": settings.api_url, "max_requests_per_second": settings.max_requests_per_second,
        "max_concurrent_requests": settings.max_concurrent_requests,
    }  # fmt: skip
    esputnik: EsputnikResource
    if settings.demo_account:  # the demo plugs in here, so a live account's runs never load it
        from esputnik_assets.demo.resource import DemoEsputnikResource

        esputnik = DemoEsputnikResource(**account, demo_account=True, demo_broken_days=list(settings.demo_broken_days))
    else:
        esputnik = EsputnikResource(**account)
    io_manager: WarehouseIOManager
    schemas = {"dataset": settings.dataset, "metrics_dataset": settings.metrics_dataset}
    if settings.warehouse == "bigquery":
        bigquery = EsputnikBigQueryResource(
            project=settings.bigquery_project,
            location=settings.bigquery_location,
            gcp_credentials=dg.EnvVar(CREDENTIALS_VARIABLE) if settings.bigquery_credentials_set else None,
            emulator_host=settings.bigquery_emulator_host,
        )
        io_manager = BigQueryIOManager(bigquery=bigquery, **schemas)
    else:
        io_manager = DuckDBIOManager(path=settings.duckdb_path, **schemas)
    return {
        names.resource("esputnik"): esputnik,
        names.resource(IO_MANAGER_KEY): io_manager,
        names.resource("alert_webhook"): AlertWebhook(
            url=dg.EnvVar(WEBHOOK_VARIABLE) if settings.alert_webhook_set else None,
            ui_url=settings.ui_url,
            account_key=api_key,
        ),
    }


def build_account(settings: Settings, names: AccountNames) -> dg.Definitions:
    """One account: its raw and metric assets, checks, daily job and schedule, sensors, doctor and resources, in its
    own time zone and from its own first day."""
    partitions = dg.DailyPartitionsDefinition(
        start_date=settings.start_date.isoformat(), timezone=settings.timezone, end_offset=0
    )
    backfill = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN)
    freshness = Freshness(settings.timezone, settings.freshness_deadline_hours, settings.start_date)
    raw_assets = build_raw_assets(
        settings.datasets, partitions, backfill, freshness, settings.warehouse, settings.owners, names
    )
    resources = build_resources(settings, names)
    io_manager = resources[names.resource(IO_MANAGER_KEY)]
    metric_assets, metric_resources = build_metrics(settings, partitions, backfill, io_manager, freshness, names)
    all_assets = [*raw_assets, *metric_assets]
    daily_job = dg.define_asset_job(
        names.named(DAILY_JOB),
        selection=dg.AssetSelection.groups(names.raw_group, names.metrics_prefix),
        description="All eSputnik tables and their metrics for a range of days"
        + ("" if names.account is None else f", of {names.label}"),
        op_retry_policy=STEP_RETRY_POLICY,
        tags={**DAILY_JOB_TAGS, **names.run_tags},
    )
    schedule = build_daily_schedule(
        daily_job, settings.timezone, settings.lookback_days, settings.start_date, names=names
    )
    return dg.Definitions(
        assets=all_assets,
        jobs=[daily_job, build_doctor_job(settings, names)],
        schedules=[schedule],
        sensors=[
            build_freshness_sensor([key for assets in all_assets for key in assets.keys], freshness, names),
            build_alert_sensor([key for assets in all_assets for key in assets.check_keys], names),
            build_stale_days_sensor([key for assets in metric_assets for key in assets.keys], names),
        ],
        resources=resources | metric_resources,
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every account's assets, checks, jobs, schedules, sensors and resources: the single account of the plain
    environment, or each account of ESPUTNIK_ACCOUNTS_FILE side by side under its own names."""
    for message in SILENCED_BETA_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=dg.BetaWarning)
    thresholds = CheckThresholds(  # the same for every account
        volume_min_ratio=settings.volume_min_ratio,
        max_day_drop=settings.max_day_drop,
        kpi_max_drop=settings.kpi_max_drop,
        duplicate_warn_share=settings.duplicate_warn_share,
    )
    accounts = [build_account(s, AccountNames(s.account)) for s in settings.per_account()]
    return dg.Definitions.merge(
        *accounts, dg.Definitions(resources={"check_thresholds": thresholds}, executor=run_executor)
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_environ(os.environ))
