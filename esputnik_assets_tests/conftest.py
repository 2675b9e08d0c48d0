"""Shared fixtures: a demo account served over real HTTP, and a pipeline that writes into a temporary DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from esputnik_assets.assets.raw import IO_MANAGER_KEY, build_raw_assets
from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.demo import DemoAccount, DemoServer
from esputnik_assets.schedules import RANGE_END_TAG, RANGE_START_TAG
from esputnik_assets.source.resource import EsputnikResource
from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
from esputnik_assets.warehouse.io_manager import DuckDBIOManager

TIMEZONE = "Europe/Kyiv"  # not UTC, so that local days and UTC instants differ in every test


@pytest.fixture
def account() -> DemoAccount:
    return DemoAccount(contacts=300, activities_per_day=1_500, orders_per_day=40, events_per_day=200, devices=80)


@pytest.fixture
def demo_server(account: DemoAccount) -> Iterator[DemoServer]:
    with DemoServer(account) as server:
        yield server


@dataclass
class Pipeline:
    """The nine raw assets wired to one API URL and one DuckDB file, run like Dagster runs them."""

    url: str
    api_key: str | None
    duckdb_path: Path
    datasets: tuple[str, ...] = DATASET_NAMES

    @property
    def warehouse(self) -> DuckDBWarehouse:
        return DuckDBWarehouse(str(self.duckdb_path), "esputnik")

    def definitions(self, **resource_overrides: object) -> dg.Definitions:
        partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone=TIMEZONE)
        assets = build_raw_assets(self.datasets, partitions, dg.BackfillPolicy.multi_run(31))
        esputnik = EsputnikResource(
            api_key=self.api_key, api_url=self.url, timezone=TIMEZONE, max_requests_per_second=0, **resource_overrides
        )
        io_manager = DuckDBIOManager(path=str(self.duckdb_path), dataset="esputnik", timezone=TIMEZONE)
        return dg.Definitions(assets=assets, resources={"esputnik": esputnik, IO_MANAGER_KEY: io_manager})

    def run(
        self, first: str, last: str | None = None, *, run_config: dict | None = None, raise_on_error: bool = True,
        selection: list[str] | None = None, **resource_overrides: object,
    ) -> dg.ExecuteInProcessResult:
        job = self.definitions(**resource_overrides).resolve_implicit_global_asset_job_def()
        if selection:
            job = job.get_subset(asset_selection={dg.AssetKey(["esputnik", d]) for d in selection})
        return job.execute_in_process(
            tags={RANGE_START_TAG: first, RANGE_END_TAG: last or first},
            run_config=run_config,
            raise_on_error=raise_on_error,
            instance=dg.DagsterInstance.ephemeral(),
        )

    def table(self, dataset: str) -> pl.DataFrame:
        with self.warehouse.connect() as con:
            return pl.from_arrow(con.sql(f"FROM {self.warehouse.table(dataset)}").to_arrow_table())


@pytest.fixture
def pipeline(demo_server: DemoServer, tmp_path: Path) -> Pipeline:
    return Pipeline(demo_server.url, demo_server.api_key, tmp_path / "warehouse.duckdb")


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every message of the first step failure and its causes (handle_output errors wrap the real one)."""
    texts, error = [], result.get_step_failure_events()[0].event_specific_data.error
    while error is not None:
        texts.append(error.message)
        error = error.cause
    return "\n".join(texts)
