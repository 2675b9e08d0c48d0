"""Shared fixtures: a demo account served over real HTTP, an emulated BigQuery, a pipeline writing to either, and the
golden materialization: the demo account's whole graph materialized once per session, read by the read-only tests.

Tiers: `pytest -m "not slow"` is the fast one; tests marked `slow` (BigQuery variants beyond one smoke path per
feature, the UI, large days, multi-process runs) run in the full suite only."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from xdist.scheduler import LoadScopeScheduling

from esputnik_assets.assets.raw import build_raw_assets
from esputnik_assets.checks.freshness import Freshness
from esputnik_assets.checks.raw import CheckThresholds
from esputnik_assets.contracts import DATASET_NAMES, load_contracts
from esputnik_assets.demo import DemoAccount, DemoServer
from esputnik_assets.demo.resource import DemoEsputnikResource
from esputnik_assets.keys import IO_MANAGER_KEY
from esputnik_assets.metrics.assets import build_metric_assets
from esputnik_assets.metrics.resource import MetricsWarehouse
from esputnik_assets.metrics.wiring import ALL_METRICS, metrics_warehouse
from esputnik_assets.schedules import RANGE_END_TAG, RANGE_START_TAG
from esputnik_assets.settings import Settings
from esputnik_assets.warehouse.base import TableRead
from esputnik_assets.warehouse.bigquery_resource import EsputnikBigQueryResource
from esputnik_assets.warehouse.io_manager import BigQueryIOManager, DuckDBIOManager, WarehouseIOManager
from esputnik_assets_tests.bigquery_emulator import BigQueryEmulator, emulator_available

TIMEZONE = "Europe/Kyiv"  # not UTC, so that local days and UTC instants differ in every test
TEST_NOW = datetime(2026, 11, 21, 7, 0, tzinfo=ZoneInfo(TIMEZONE))  # the suite's "now": 2026-11-20 is due
WAREHOUSES = ("duckdb", pytest.param("bigquery", marks=pytest.mark.slow))  # BigQuery smoke paths ask for it by name
GOLDEN_HISTORY = date(2026, 11, 19)  # a first run, raw assets only: the checks' trailing means, journeys' D-1
GOLDEN_RUN = (date(2026, 11, 20), date(2026, 11, 22))  # then every asset: the run the read-only tests look at
_dataset_names = itertools.count()


# Modules whose tests share a module-scoped fixture (a dev server, a deployment, a browser): under pytest-xdist each
# stays on one worker, so the fixture is built once; every other test is scheduled on its own (`-n auto`).
KEPT_TOGETHER = frozenset(
    {"test_bigquery_emulator.py", "test_definitions.py", "test_demo_account.py", "test_deployment.py", "test_ui.py"}
)


class ModuleFixtureScheduling(LoadScopeScheduling):
    """xdist's scope scheduler with a scope per test, except one per module of KEPT_TOGETHER (those go out first,
    being the largest scopes, so the longest modules never run last on one worker)."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return module if module.rsplit("/", 1)[-1] in KEPT_TOGETHER else nodeid


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> LoadScopeScheduling:
    return ModuleFixtureScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A module-scoped fixture outside KEPT_TOGETHER would be built on every worker: refuse it at collection."""
    for item in items:
        scopes = {definitions[-1].scope for definitions in item._fixtureinfo.name2fixturedefs.values()}
        if "module" in scopes and item.path.name not in KEPT_TOGETHER:
            raise pytest.UsageError(f"{item.path.name} has a module-scoped fixture: add it to KEPT_TOGETHER")


def demo_account() -> DemoAccount:
    """The suite's small demo account (deterministic: tests compute expected values from its generator)."""
    return DemoAccount(contacts=300, activities_per_day=1_500, orders_per_day=40, events_per_day=200, devices=80)


def built_in_demo_account() -> DemoAccount:
    """The demo account the pipeline reads when none is configured (the resource's defaults), for exact expectations."""
    return DemoEsputnikResource(api_url="https://unused.invalid/api", demo_account=True).demo()


@pytest.fixture
def account() -> DemoAccount:
    return demo_account()


@pytest.fixture
def demo_server(account: DemoAccount) -> Iterator[DemoServer]:
    with DemoServer(account) as server:
        yield server


@pytest.fixture(scope="session")
def bq_emulator() -> Iterator[BigQueryEmulator]:
    """One emulator for the session; skipped where it is not installed, unless CI requires it."""
    reason = emulator_available()
    if reason:
        if os.environ.get("ESPUTNIK_REQUIRE_BQ_EMULATOR") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with BigQueryEmulator(project="esputnik-test") as emulator:
        yield emulator


def bigquery_io_manager(emulator: BigQueryEmulator) -> BigQueryIOManager:
    """A fresh dataset per use, so tests never see each other's tables."""
    resource = EsputnikBigQueryResource(project=emulator.project, emulator_host=emulator.host)
    return BigQueryIOManager(bigquery=resource, dataset=f"esputnik_{next(_dataset_names)}")


@pytest.fixture
def make_io_manager(request, tmp_path: Path) -> Callable[[str], WarehouseIOManager]:
    def make(warehouse: str) -> WarehouseIOManager:
        if warehouse == "bigquery":
            return bigquery_io_manager(request.getfixturevalue("bq_emulator"))
        return DuckDBIOManager(path=str(tmp_path / f"warehouse{next(_dataset_names)}.duckdb"))

    return make


@pytest.fixture(params=WAREHOUSES)
def io_manager(request, make_io_manager) -> WarehouseIOManager:
    """Each test that takes it runs once per warehouse: one suite, the same expectations."""
    return make_io_manager(request.param)


@dataclass
class Pipeline:
    """The nine raw assets wired to one API URL and one warehouse, run like Dagster runs them."""

    url: str
    api_key: str | None
    io_manager: WarehouseIOManager
    datasets: tuple[str, ...] = DATASET_NAMES
    thresholds: CheckThresholds = field(default_factory=CheckThresholds)
    freshness: Freshness = field(default_factory=lambda: Freshness(TIMEZONE, clock=lambda: TEST_NOW))

    def definitions(self, **resource_overrides: object) -> dg.Definitions:
        partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone=TIMEZONE)
        assets = build_raw_assets(self.datasets, partitions, dg.BackfillPolicy.multi_run(31), self.freshness)
        esputnik = DemoEsputnikResource(  # a live account's resource that also serves the demo when a test chooses it
            api_key=self.api_key, api_url=self.url, max_requests_per_second=0, **resource_overrides
        )
        resources = {"esputnik": esputnik, IO_MANAGER_KEY: self.io_manager, "check_thresholds": self.thresholds}
        return dg.Definitions(assets=assets, resources=resources)

    def run(
        self, first: str, last: str | None = None, *, run_config: dict | None = None, raise_on_error: bool = True,
        selection: list[str] | None = None, instance: dg.DagsterInstance | None = None, **resource_overrides: object,
    ) -> dg.ExecuteInProcessResult:
        job = self.definitions(**resource_overrides).resolve_implicit_global_asset_job_def()
        if selection:
            job = job.get_subset(asset_selection={dg.AssetKey(["esputnik", d]) for d in selection})
        return job.execute_in_process(
            tags={RANGE_START_TAG: first, RANGE_END_TAG: last or first},
            run_config=run_config,
            raise_on_error=raise_on_error,
            instance=instance or dg.DagsterInstance.ephemeral(),
        )

    def table(self, dataset: str) -> pl.DataFrame:
        """A whole table, typed by the contract, sorted so that two warehouses' copies compare equal."""
        with self.io_manager.open_warehouse() as warehouse:
            frame = warehouse.read(TableRead(dataset, contract=load_contracts()[dataset]))
        frame = frame.cast(dict(load_contracts()[dataset].polars_schema))
        return frame.sort(frame.columns, nulls_last=True)


@pytest.fixture
def pipeline(demo_server: DemoServer, io_manager: WarehouseIOManager) -> Pipeline:
    return Pipeline(demo_server.url, demo_server.api_key, io_manager)


def metric_settings(**env: str) -> Settings:
    """Settings of the pipeline's account (a live one, in the suite's time zone), plus `env`."""
    return Settings.from_environ({"ESPUTNIK_API_KEY": "k", "ESPUTNIK_TIMEZONE": TIMEZONE, **env})


def metric_definitions(pipeline: Pipeline, warehouse: MetricsWarehouse) -> dg.Definitions:
    """The pipeline's raw graph plus every metric asset, partitioned alike, on the same warehouse."""
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone=TIMEZONE)
    metrics = build_metric_assets(ALL_METRICS, pipeline.datasets, partitions, dg.BackfillPolicy.multi_run(31))
    extra = dg.Definitions(assets=metrics, resources={"metrics_warehouse": warehouse})
    return dg.Definitions.merge(pipeline.definitions(), extra)


def run_range(defs: dg.Definitions, first: date, last: date) -> dg.ExecuteInProcessResult:
    """Every asset of `defs` for the days first .. last, as one run (the schedule's and the backfill's range tags)."""
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
        instance=dg.DagsterInstance.ephemeral(),
    )


@dataclass
class Golden:
    """The demo account materialized once: the raw assets for GOLDEN_HISTORY, then the whole graph (raw and metric
    assets) for GOLDEN_RUN. Read it, never write to it: tests that change tables or the account build their own."""

    account: DemoAccount
    server: DemoServer
    pipeline: Pipeline
    metrics: MetricsWarehouse
    history: dg.ExecuteInProcessResult
    result: dg.ExecuteInProcessResult  # the run of GOLDEN_RUN, after the history
    run_seconds: float  # that run's wall time

    @property
    def days(self) -> list[date]:
        """Every day the warehouse holds, in order."""
        return [GOLDEN_HISTORY, *self.run_days]

    @property
    def run_days(self) -> list[date]:
        first, last = GOLDEN_RUN
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.fixture(scope="session", params=WAREHOUSES)
def golden(request, tmp_path_factory) -> Iterator[Golden]:
    """One golden materialization per warehouse for the session (the BigQuery one in the full suite only)."""
    if request.param == "bigquery":
        io_manager: WarehouseIOManager = bigquery_io_manager(request.getfixturevalue("bq_emulator"))
    else:
        folder = tmp_path_factory.mktemp("golden")
        io_manager = DuckDBIOManager(path=str(folder / "warehouse.duckdb"))
    account = demo_account()
    with DemoServer(account) as server:
        pipeline = Pipeline(server.url, server.api_key, io_manager)
        metrics = metrics_warehouse(metric_settings(ESPUTNIK_ATTRIBUTION_WINDOW_HOURS="24"), io_manager)
        defs = metric_definitions(pipeline, metrics)
        history = pipeline.run(GOLDEN_HISTORY.isoformat())
        started = time.monotonic()
        result = run_range(defs, *GOLDEN_RUN)
        assert history.success and result.success
        yield Golden(account, server, pipeline, metrics, history, result, time.monotonic() - started)


def run_log(pipeline: Pipeline, first: str, **run_options: object) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    """A run and every message of its run log (what the Dagster UI shows), including plain log lines."""
    instance = dg.DagsterInstance.ephemeral()
    result = pipeline.run(first, instance=instance, **run_options)
    return result, [entry.user_message for entry in instance.all_logs(result.run_id)]


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every message of the first step failure and its causes (handle_output errors wrap the real one)."""
    texts, error = [], result.get_step_failure_events()[0].event_specific_data.error
    while error is not None:
        texts.append(error.message)
        error = error.cause
    return "\n".join(texts)
