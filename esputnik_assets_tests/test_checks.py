"""The checks, as Dagster records them: green on the demo account, red on data built to break each one, on both
warehouses."""

from collections import Counter

import dagster as dg
import pytest

from esputnik_assets.checks.raw import checks_for
from esputnik_assets.checks.freshness import PARTITION_ON_TIME
from esputnik_assets.checks.read import READ_REPORT
from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.demo import DemoAccount, DemoServer
from esputnik_assets.keys import raw_asset_key
from esputnik_assets.metrics.checks import checks_for as metric_checks_for
from esputnik_assets.metrics.wiring import ALL_METRICS
from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
from esputnik_assets.schedules import RANGE_END_TAG, RANGE_START_TAG
from esputnik_assets_tests.conftest import Pipeline
from esputnik_assets_tests.test_end_to_end import shrinking_orders_server

HISTORY = ("2026-11-10", "2026-11-17")


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def test_every_table_has_its_checks_and_all_pass_on_the_demo_account(golden):
    found = evaluations(golden.result)
    expected = {(name, c.name) for name in DATASET_NAMES for c in checks_for(name)} | {
        (name, extra) for name in DATASET_NAMES for extra in (READ_REPORT, PARTITION_ON_TIME)
    }
    metric_checks = {(m.name, c.name) for m in ALL_METRICS for c in metric_checks_for(m)}
    assert set(found) == expected | metric_checks
    assert {("contact_daily", "grain_unique"), ("campaign_roi", "credited_within_sales")} <= metric_checks
    per_partition = Counter(
        (e.asset_key.path[-1], e.check_name, e.partition) for e in golden.result.get_asset_check_evaluations()
    )
    days = {day.isoformat() for day in golden.run_days}  # each metric check once per partition of the range run
    assert {key: n for key, n in per_partition.items() if key[:2] in metric_checks} == {
        (*key, day): 1 for key in metric_checks for day in days
    }
    assert {("contactActivities", "kpi_delivery_rate"), ("orders", "volume"), ("contacts", "keys")} <= set(found)
    failed = {key: e.description for key, e in found.items() if not e.passed}
    assert failed == {}
    volume = found[("events", "volume")].metadata["days"].value
    events = golden.account.expected_count("events", golden.run_days[0])  # the same each day: its trailing mean too
    assert volume[0] == {"day": golden.run_days[0].isoformat(), "rows": events, "trailing_mean": events}


def broken_pipeline(server: DemoServer, io_manager) -> Pipeline:
    return Pipeline(server.url, server.api_key, io_manager, datasets=("contactActivities", "orders", "orderItems"))


@pytest.fixture
def broken_account() -> DemoAccount:
    return DemoAccount(
        contacts=300, activities_per_day=1_500, orders_per_day=40, events_per_day=200, devices=80,
        broken_days=(("2026-11-18", "empty"), ("2026-11-19", "unknown_status"), ("2026-11-20", "collapsed_delivery")),
    )  # fmt: skip


def test_broken_demo_days_fail_volume_accepted_values_and_delivery_rate(broken_account, io_manager):
    with DemoServer(broken_account) as server:
        pipe = broken_pipeline(server, io_manager)
        assert pipe.run(*HISTORY).success

        empty = pipe.run("2026-11-18", raise_on_error=False)
        found = evaluations(empty)
        assert not empty.success  # volume blocks: nothing downstream may read an empty day as a quiet one
        for name in ("contactActivities", "orders", "orderItems"):
            check = found[(name, "volume")]
            assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
            assert "2026-11-18: 0 rows" in check.description

        unknown = pipe.run("2026-11-19")
        found = evaluations(unknown)
        values = found[("contactActivities", "accepted_values")]
        assert not values.passed and values.severity == dg.AssetCheckSeverity.WARN
        assert "activityStatus=BOUNCED" in values.metadata["unknown_values"].value
        failing = {k: e.description for k, e in found.items() if not e.passed}
        assert set(failing) - {k for k in failing if k[1] == PARTITION_ON_TIME} == {("contactActivities", "accepted_values")}

        collapsed = pipe.run("2026-11-20", raise_on_error=False)
        found = evaluations(collapsed)
        delivery = found[("contactActivities", "kpi_delivery_rate")]
        assert not delivery.passed and delivery.severity == dg.AssetCheckSeverity.ERROR
        [day] = delivery.metadata["days"].value
        assert day["value"] < 0.3 * day["trailing_mean"]
        assert found[("contactActivities", "volume")].passed


def run_checks_only(pipeline: Pipeline, dataset: str, *names: str) -> dict[str, dg.AssetCheckEvaluation]:
    job = pipeline.definitions().resolve_implicit_global_asset_job_def()
    keys = {dg.AssetCheckKey(raw_asset_key(dataset), name) for name in names}
    result = job.get_subset(asset_check_selection=keys, asset_selection=set()).execute_in_process(
        partition_key="2026-11-20", instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_dropped_column_and_a_duplicate_key_fail_schema_and_key_checks(pipeline, io_manager):
    assert pipeline.run("2026-11-20", selection=["contacts"]).success
    assert all(e.passed for e in run_checks_only(pipeline, "contacts", "schema_contract", "keys").values())
    first = pipeline.table("contacts")["contactId"].min()
    with io_manager.open_warehouse() as warehouse:
        table = warehouse.table("contacts")
        for statement in (f"INSERT INTO {table} SELECT * FROM {table} WHERE contactId = {first}",
                          f"ALTER TABLE {table} DROP COLUMN emailDomain"):  # fmt: skip
            if isinstance(warehouse, DuckDBWarehouse):
                with warehouse.connect() as con:
                    con.execute(statement)
            else:
                warehouse.client.query(statement).result()
    found = run_checks_only(pipeline, "contacts", "schema_contract", "keys")
    assert not found["schema_contract"].passed and "missing column emailDomain" in found["schema_contract"].description
    assert not found["keys"].passed and "1 repeated" in found["keys"].description
    assert f"contactId={first} x2" in found["keys"].metadata["examples"].value



def check_records(instance: dg.DagsterInstance, run_id: str, dataset: str) -> dict[str, list]:
    """The asset's check executions of one run as Dagster stores them (what the asset page lists), by check."""
    found: dict[str, list] = {}
    for name in [c.name for c in checks_for(dataset)] + [READ_REPORT, PARTITION_ON_TIME]:
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(raw_asset_key(dataset), name), limit=50
        )
        found[name] = [r for r in history if r.run_id == run_id]
    return found


def test_a_refused_write_fails_volume_with_its_finding_and_no_check_is_an_execution_failure(io_manager, tmp_path):
    """A re-read answering 2 of 20 orders: volume FAILED with the figures, the other checks evaluated on the intact
    table, nothing materialized, no "Skipped" or "Execution failed" rows, and no retry of the step or the run."""
    answered = {"orders": 20}
    with shrinking_orders_server(answered) as server, dg.instance_for_test(
        overrides={"run_retries": {"enabled": True, "max_retries": 2}}
    ) as instance:
        pipe = Pipeline(server.url, "live-key-123", io_manager, datasets=("orders", "orderItems"))
        stored = pipe.run("2026-11-20", instance=instance)
        assert stored.success
        for records in check_records(instance, stored.run_id, "orders").values():
            assert [r.status.value for r in records] == ["SUCCEEDED"]  # one row per check, none left "Skipped"

        answered["orders"] = 2
        defs = pipe.definitions()
        retrying = dg.define_asset_job("retrying", op_retry_policy=dg.RetryPolicy(max_retries=2))
        job = dg.Definitions(assets=defs.assets, resources=defs.resources, jobs=[retrying]).resolve_job_def("retrying")
        refused = job.execute_in_process(
            tags={RANGE_START_TAG: "2026-11-20", RANGE_END_TAG: "2026-11-20"}, instance=instance, raise_on_error=False
        )
        assert not refused.success
        assert refused.get_asset_materialization_events() == []
        assert not [e for e in refused.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        tags = instance.get_run_by_id(refused.run_id).tags
        assert tags["dagster/retry_on_asset_or_op_failure"] == "false" and tags["dagster/will_retry"] == "false"

        records = check_records(instance, refused.run_id, "orders")
        assert {name: [r.status.value for r in rs] for name, rs in records.items()} == {
            name: ["FAILED" if name == "volume" else "SUCCEEDED"] for name in records
        }
        volume = records["volume"][0].evaluation
        assert "2026-11-20: 2 rows read, 20 stored (refused below 10)" in volume.description
        assert "allow_smaller_days: true" in volume.description
        assert volume.metadata["days"].value == [
            {"day": "2026-11-20", "stored": 20, "read": 2, "trailing_mean": None, "refused_below": 10.0}
        ]
        assert records["keys"][0].evaluation.description.endswith("over 20 rows")  # the intact table
