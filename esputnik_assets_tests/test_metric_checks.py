"""The metric tables' checks on hand-built tables: each fails on a bad day, naming table, day and an example key, and
passes on a good one, evaluated in the warehouse (the grain checks on both engines)."""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl
from esputnik_assets.metrics.assets import RESOURCE_KEY, build_metric_asset
from esputnik_assets.metrics.catalog import CAMPAIGN_ROI, CONTACT_DAILY, DATE, PRODUCT_AFFINITY, Metric, col
from esputnik_assets.metrics.checks import (
    CREDITED_WITHIN_SALES,
    GRAIN_NOT_NULL,
    GRAIN_UNIQUE,
    METRIC_CHECKS,
    RATES_IN_RANGE,
    checks_for,
    evaluate_metric_checks,
)
from esputnik_assets.metrics.engine import MetricTable
from esputnik_assets.metrics.resource import DuckDBMetricsWarehouse
from esputnik_assets.metrics.wiring import ALL_METRICS
from esputnik_assets.schedules import RANGE_END_TAG, RANGE_START_TAG
from esputnik_assets_tests.metric_fixtures import TZ, MetricBench, at, engine_name, make_bench  # noqa: F401

GOOD, BAD = date(2026, 1, 10), date(2026, 1, 11)


def write(bench: MetricBench, metric: Metric, day: date, rows: list[dict]) -> None:
    """Rows straight into the metric table (every column not given null), as a broken definition would write them."""
    names = metric.table.column_names
    frame = pl.DataFrame([{n: row.get(n) for n in names} | {"date": day} for row in rows],
                         schema=metric.table.polars_schema)  # fmt: skip
    with bench.warehouse.open() as engine:
        engine.replace_day_from_frame(metric.table, frame, day)


def outcomes(bench: MetricBench, metric: Metric, *names: str) -> dict:
    checks = [c for c in METRIC_CHECKS if c.name in names]
    with bench.warehouse.open() as engine:
        return evaluate_metric_checks(metric, engine, bench.warehouse, (GOOD, BAD), checks)


def test_every_metric_table_declares_a_grain_of_its_columns_and_gets_the_grain_checks():
    for metric in ALL_METRICS:
        table = metric.table
        assert table.grain[0] == "date" and set(table.grain) <= set(table.column_names), metric.name
        assert set(table.nullable_grain) <= set(table.grain), metric.name
        assert {GRAIN_UNIQUE} <= {c.name for c in checks_for(metric)}, metric.name
    assert [c.name for c in checks_for(CAMPAIGN_ROI)] == [GRAIN_UNIQUE, GRAIN_NOT_NULL, CREDITED_WITHIN_SALES]
    assert [c.name for c in checks_for(PRODUCT_AFFINITY)] == [GRAIN_UNIQUE, GRAIN_NOT_NULL, RATES_IN_RANGE]


def test_grain_checks_fail_on_a_repeated_or_null_key_and_pass_on_a_good_day(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    # GOOD: contact 1 in Email and on its orders row (null mediaType: a declared nullable key), contact 2 in Email
    write(bench, CONTACT_DAILY, GOOD, [
        {"contactId": 1, "mediaType": "Email"}, {"contactId": 1, "mediaType": None}, {"contactId": 2, "mediaType": "Email"},
    ])  # fmt: skip
    # BAD: (1, Email) twice, (2, null) twice: 2 repeated keys, the first by contactId is 1/Email; one null contactId
    write(bench, CONTACT_DAILY, BAD, [
        {"contactId": 1, "mediaType": "Email"}, {"contactId": 1, "mediaType": "Email"},
        {"contactId": 2, "mediaType": None}, {"contactId": 2, "mediaType": None},
        {"contactId": None, "mediaType": "Sms"},
    ])  # fmt: skip
    found = outcomes(bench, CONTACT_DAILY, GRAIN_UNIQUE, GRAIN_NOT_NULL)
    unique, not_null = found[GRAIN_UNIQUE], found[GRAIN_NOT_NULL]
    assert unique[GOOD].passed and not_null[GOOD].passed
    assert not unique[BAD].passed
    assert unique[BAD].description == (
        "contact_daily on 2026-01-11: 2 values of (date, contactId, mediaType) repeated, "
        "e.g. contactId=1, mediaType=Email in 2 rows"
    )
    assert not not_null[BAD].passed
    assert not_null[BAD].description == (
        "contact_daily on 2026-01-11: 1 rows with a null key column (contactId), e.g. contactId=None, mediaType=Sms"
    )


def test_rates_in_range_fails_outside_0_1_and_accepts_the_bounds_and_null(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    pair = {"product": "A", "other_product": "B", "pair_orders": 2, "product_orders": 2, "other_orders": 4, "baskets": 4}
    write(bench, PRODUCT_AFFINITY, GOOD, [
        pair | {"support": 0.5, "confidence": 1.0, "lift": 2.0},  # lift is not a rate: 2.0 is fine
        pair | {"other_product": "C", "support": 0.0, "confidence": None},
    ])  # fmt: skip
    write(bench, PRODUCT_AFFINITY, BAD, [
        pair | {"support": 0.5, "confidence": 1.0},
        pair | {"product": "B", "other_product": "A", "support": 0.5, "confidence": 1.5},
    ])  # fmt: skip
    rates = outcomes(bench, PRODUCT_AFFINITY, RATES_IN_RANGE)[RATES_IN_RANGE]
    assert rates[GOOD].passed
    assert not rates[BAD].passed
    assert rates[BAD].description == (
        "product_affinity on 2026-01-11: 1 rows with a rate outside [0, 1], e.g. product=B, other_product=A: "
        "confidence=1.5"
    )


def test_credited_within_sales_fails_when_an_order_is_credited_twice(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    # order 1 (100.0) claimed by 7001 (the later touch) and 7002 on GOOD; order 2 (40.0) by 7003 on BAD
    claim = lambda order, cost, broadcast, day, hour: {  # noqa: E731
        "orderId": order, "totalCost": cost, "broadcastId": broadcast, "orderDate": at(day, 12),
        "activityDateTime": at(day, hour),
    }  # fmt: skip
    bench.load("revenue", [claim(1, 100.0, 7001, GOOD, 9), claim(1, 100.0, 7002, GOOD, 8), claim(2, 40.0, 7003, BAD, 8)])
    bench.run(CAMPAIGN_ROI, GOOD)  # the definition: order 1 credited once, to 7001
    # BAD as the old definition wrote it and worse: order 2 credited to 7003 and, a second time, to 7004
    write(bench, CAMPAIGN_ROI, BAD, [
        {"broadcastId": 7003, "attributed_orders": 1, "attributed_revenue": 40.0},
        {"broadcastId": 7004, "attributed_orders": 1, "attributed_revenue": 40.0},
    ])  # fmt: skip
    credit = outcomes(bench, CAMPAIGN_ROI, CREDITED_WITHIN_SALES)[CREDITED_WITHIN_SALES]
    assert credit[GOOD].passed
    assert credit[GOOD].description == (
        "campaign_roi on 2026-01-10: attributed_revenue over broadcasts 100.00 <= daily_sales.attributed_revenue 100.00"
    )
    assert not credit[BAD].passed
    assert credit[BAD].description == (
        "campaign_roi on 2026-01-11: attributed_revenue over broadcasts 80.00 exceeds daily_sales.attributed_revenue "
        "40.00 (an order credited more than once?), e.g. the largest, broadcastId=7003 credited 40.00"
    )
    assert (credit[BAD].metadata["credited_revenue"], credit[BAD].metadata["daily_sales_attributed_revenue"]) == (80, 40)


def test_days_without_rows_pass_every_check(tmp_path, request):
    bench = make_bench("duckdb", request, tmp_path)
    bench.run(CAMPAIGN_ROI, GOOD, BAD)  # no raw rows: both days empty
    found = outcomes(bench, CAMPAIGN_ROI, *(c.name for c in checks_for(CAMPAIGN_ROI)))
    assert {name: [o.passed for o in by_day.values()] for name, by_day in found.items()} == {
        GRAIN_UNIQUE: [True, True], GRAIN_NOT_NULL: [True, True], CREDITED_WITHIN_SALES: [True, True],
    }


# A definition gone wrong on BAD only: contact 1 twice, once with a share of 1.5
BROKEN = Metric(
    table=MetricTable(
        "broken_rows",
        (DATE, col("contactId", "int", "The contact"), col("share", "float", "A share", rate=True)),
        grain=("date", "contactId"),
    ),
    formula="A table whose rows break their declared grain and rate on 2026-01-11",
    sql="""
SELECT @day AS date, 1 AS contactId, 0.5 AS share
UNION ALL
SELECT @day AS date, 1 AS contactId, 1.5 AS share FROM (SELECT 1 AS one) AS t WHERE @day = DATE '2026-01-11'
""",
    reads=(),
)


def test_a_metric_asset_reports_each_check_per_partition_and_a_broken_key_fails_the_step(tmp_path):
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone=TZ)
    asset = build_metric_asset(BROKEN, partitions, dg.BackfillPolicy.single_run())
    warehouse = DuckDBMetricsWarehouse(path=str(tmp_path / "broken.duckdb"), timezone=TZ)
    result = dg.materialize(
        [asset], resources={RESOURCE_KEY: warehouse}, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        tags={RANGE_START_TAG: GOOD.isoformat(), RANGE_END_TAG: BAD.isoformat()},
    )  # fmt: skip
    assert not result.success  # grain_unique is blocking: the step fails once the table is written and checked
    assert {m.partition for m in result.asset_materializations_for_node("esputnik_metrics__broken_rows")} == {
        GOOD.isoformat(), BAD.isoformat(),
    }
    found = {(e.check_name, e.partition): (e.passed, e.description) for e in result.get_asset_check_evaluations()}
    assert found == {
        (GRAIN_UNIQUE, "2026-01-10"): (True, "broken_rows on 2026-01-10: every row has its own (date, contactId)"),
        (GRAIN_UNIQUE, "2026-01-11"): (
            False, "broken_rows on 2026-01-11: 1 values of (date, contactId) repeated, e.g. contactId=1 in 2 rows",
        ),
        (GRAIN_NOT_NULL, "2026-01-10"): (True, "broken_rows on 2026-01-10: contactId never null"),
        (GRAIN_NOT_NULL, "2026-01-11"): (True, "broken_rows on 2026-01-11: contactId never null"),
        (RATES_IN_RANGE, "2026-01-10"): (True, "broken_rows on 2026-01-10: share within [0, 1] or null"),
        (RATES_IN_RANGE, "2026-01-11"): (
            False, "broken_rows on 2026-01-11: 1 rows with a rate outside [0, 1], e.g. contactId=1: share=1.5",
        ),
    }  # fmt: skip
