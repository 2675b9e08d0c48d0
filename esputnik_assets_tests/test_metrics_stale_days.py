"""Late data: a rerun raw day makes the metric days whose window reads it stale, and Dagster recomputes them.

Through Dagster on the demo account (DuckDB): the quick start materializes D, a backfill then writes D-3 .. D-1, and
the metric assets' automation condition asks for exactly D of every metric whose window reaches back; once run, every
metric table equals a clean run over D-3 .. D. The daily run stales only the send days before its range whose L-day
window reaches into it; a rerun of raw D asks for the send days D-6 .. D of broadcast_performance that exist.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import polars as pl
from polars.testing import assert_frame_equal

from esputnik_assets.definitions import build_definitions
from esputnik_assets.metrics.assets import ALL_EARLIER_DAYS_OFFSET, KEY_PREFIX, STALE_DAYS_SENSOR, metric_key
from esputnik_assets.metrics.wiring import ALL_METRICS, metrics_warehouse
from esputnik_assets.schedules import RANGE_END_TAG, RANGE_START_TAG
from esputnik_assets.settings import Settings
from esputnik_assets_tests.conftest import Pipeline, metric_definitions, metric_settings
from esputnik_assets_tests.test_metrics_end_to_end import metric_tables

D = date(2026, 11, 20)
EARLIER = [D - timedelta(days=n) for n in (3, 2, 1)]
# the metrics whose row of D reads days before D (their window starts before 0), so a backfill of D-3 .. D-1 stales D
LOOKING_BACK = {"channel_engagement", "contact_segments", "contact_profiles", "product_affinity", "customer_journeys",
                "churn_risk", "contact_lifetime", "order_cohorts"}  # fmt: skip


def run(defs: dg.Definitions, instance: dg.DagsterInstance, first: date, last: date, keys=None) -> None:
    """One run of `keys` (default: every asset) for the days first .. last, with its selection recorded on the run
    as a backfill's or the sensor's runs have it."""
    job = defs.resolve_implicit_global_asset_job_def()
    job = job.get_subset(asset_selection=set(keys or defs.resolve_asset_graph().get_all_asset_keys()))
    tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}
    assert job.execute_in_process(tags=tags, instance=instance).success


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor) -> tuple[dict[str, list[date]], object]:
    """One evaluation of the metric assets' automation condition: the days it asks for, by metric, and its cursor."""
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    days = {
        key.path[-1]: sorted(date.fromisoformat(p) for p in result.get_requested_partitions(key))
        for key in {metric_key(m.name) for m in ALL_METRICS}
        if result.get_requested_partitions(key)
    }
    return days, result.cursor


def test_metric_windows_become_partition_mappings_from_the_settings(tmp_path):
    """L and the churn horizon decide their windows; each dependency carries its metric's window as a mapping, and
    the sensor that recomputes stale days is on by default."""
    env = {"ESPUTNIK_DUCKDB_PATH": str(tmp_path / "w.duckdb"), "ESPUTNIK_BROADCAST_WINDOW_DAYS": "10",
           "ESPUTNIK_CHURN_HORIZON_DAYS": "20"}  # fmt: skip
    defs = build_definitions(Settings.from_environ(env))
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}

    def offsets(metric: str) -> dict[str, tuple[int, int]]:
        deps = specs[metric_key(metric)].deps
        return {d.asset_key.path[-1]: (d.partition_mapping.start_offset, d.partition_mapping.end_offset) for d in deps}

    assert offsets("broadcast_performance") == dict.fromkeys(("contactActivities", "broadcasts", "revenue"), (0, 9))
    assert offsets("churn_risk") == {"contact_daily": (-40, 0), "contact_segments": (-40, 0)}
    assert offsets("customer_journeys") == dict.fromkeys(("contactActivities", "orders", "revenue"), (-3, 0))  # 72 h
    # a lifetime table reads every earlier day: a century back, which holds any account's first partition
    assert offsets("contact_lifetime") == dict.fromkeys(("orders", "revenue"), (ALL_EARLIER_DAYS_OFFSET, 0))
    assert offsets("contact_segments") == {"contacts": (-89, 0), "contact_daily": (-89, 0)}
    assert offsets("contact_profiles") == {**dict.fromkeys(("contacts", "contactActivities", "devices", "events"), (-29, 0)),
                                           "contact_segments": (0, 0)}  # fmt: skip
    assert set(offsets("campaign_performance").values()) == {(0, 0)}
    sensor = defs.resolve_sensor_def(STALE_DAYS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_backfill_before_d_recomputes_d_of_the_window_metrics(demo_server, make_io_manager):
    io_manager = make_io_manager("duckdb")
    pipeline = Pipeline(demo_server.url, demo_server.api_key, io_manager)
    warehouse = metrics_warehouse(metric_settings(), io_manager)
    defs = metric_definitions(pipeline, warehouse)
    instance = dg.DagsterInstance.ephemeral()
    raw_keys = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] != KEY_PREFIX]

    run(defs, instance, D, D)  # the quick start: yesterday, D
    asked, cursor = tick(defs, instance, None)
    assert asked == {}  # nothing is stale after a run that wrote every asset of D
    quick_start = metric_tables(warehouse)

    run(defs, instance, EARLIER[0], EARLIER[-1])  # the backfill of D-3 .. D-1: raw and metric days alike
    asked, cursor = tick(defs, instance, cursor)
    # D of every metric whose window reaches before D; the days the backfill wrote itself are not stale
    assert asked == dict.fromkeys(LOOKING_BACK, [D])

    run(defs, instance, D, D, [metric_key(name) for name in asked])  # what the sensor's run does
    asked, cursor = tick(defs, instance, cursor)
    assert asked == {}  # the recomputed days stale nothing else: their dependents were in the same run
    recomputed = metric_tables(warehouse)

    clean_io = make_io_manager("duckdb")  # from scratch: every asset of D-3 .. D in one run, days in order
    clean_warehouse = metrics_warehouse(metric_settings(), clean_io)
    clean = metric_definitions(Pipeline(demo_server.url, demo_server.api_key, clean_io), clean_warehouse)
    run(clean, dg.DagsterInstance.ephemeral(), EARLIER[0], D)
    expected = metric_tables(clean_warehouse)
    # the quick start's D lacked the history: D of some window metric differed from the clean run's
    differed = {n for n in LOOKING_BACK if not quick_start[n].equals(expected[n].filter(pl.col("date") == D))}
    assert {"product_affinity", "contact_segments", "channel_engagement"} <= differed
    for name, frame in expected.items():
        assert_frame_equal(recomputed[name], frame, check_exact=False, rel_tol=1e-12)

    # the daily run (every asset of D-1 .. D): of the days it did not write, only the send days whose L-day window
    # reaches D-1 or D are stale, D-3 and D-2 (D-7 .. D-4 do not exist)
    run(defs, instance, EARLIER[-1], D)
    asked, cursor = tick(defs, instance, cursor)
    assert asked == {"broadcast_performance": EARLIER[:2]}
    run(defs, instance, EARLIER[0], EARLIER[1], [metric_key("broadcast_performance")])
    asked, cursor = tick(defs, instance, cursor)
    assert asked == {}

    # raw D rerun alone: every existing send day whose window holds D, and D of every other metric
    run(defs, instance, D, D, raw_keys)
    asked, cursor = tick(defs, instance, cursor)
    assert asked["broadcast_performance"] == [*EARLIER, D]  # D-6 .. D, of which D-3 .. D exist
    assert {name for name, days in asked.items() if days == [D]} == {m.name for m in ALL_METRICS} - {
        "broadcast_performance"
    }
