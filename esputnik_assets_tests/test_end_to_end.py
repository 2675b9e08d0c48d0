"""The nine assets, materialized from the demo account's server into each warehouse, checked against its truth.

Tests that take `pipeline` run twice: into a real DuckDB file and into the BigQuery emulator, with one set of
expectations. Tests about the source side (bad rows, missing endpoints) run on DuckDB only.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
import yaml

from esputnik_assets.contracts import DATASET_NAMES, load_contracts
from esputnik_assets.demo import DemoServer, FaultPlan
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.specs import DATASETS, WriteMode
from esputnik_assets.warehouse.base import DayGuard, day_bounds, day_verdicts
from esputnik_assets.warehouse.bigquery import BigQueryWarehouse, schema_field
from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
from esputnik_assets.warehouse.sql import duckdb_type
from esputnik_assets.warehouse.io_manager import BigQueryIOManager, DuckDBIOManager
from esputnik_assets_tests.conftest import TIMEZONE, Pipeline, built_in_demo_account, failure_text, run_log
from esputnik_assets_tests.scripted_server import Reply, ScriptedServer

DAYS = [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]
FACTS = [d for d, s in DATASETS.items() if s.write_mode is WriteMode.REPLACE_DAYS]
ENTITIES = [d for d, s in DATASETS.items() if s.write_mode is WriteMode.UPSERT]


def local_day_counts(frame: pl.DataFrame, column: str) -> dict[date, int]:
    days = frame.get_column(column).dt.convert_time_zone(TIMEZONE).dt.date()
    return dict(days.value_counts().iter_rows())


def physical_columns(pipeline: Pipeline, dataset: str) -> list[tuple[str, str]]:
    """Column names and types as the warehouse itself reports them, in table order."""
    io = pipeline.io_manager
    if isinstance(io, DuckDBIOManager):
        with io.open_warehouse() as warehouse, warehouse.connect() as con:
            return con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
                "AND table_name = ? ORDER BY ordinal_position",
                [io.dataset, dataset],
            ).fetchall()
    with io.open_warehouse() as warehouse:
        table = warehouse.client.get_table(warehouse.table_id(dataset))
    legacy = {"INTEGER": "INT64", "FLOAT": "FLOAT64"}
    return [(f.name, f"{f.mode} {legacy.get(f.field_type, f.field_type)}") for f in table.schema]


def expected_columns(pipeline: Pipeline, dataset: str) -> list[tuple[str, str]]:
    columns = load_contracts()[dataset].columns
    if isinstance(pipeline.io_manager, DuckDBIOManager):
        return [(c.name, duckdb_type(c.type, c.repeated)) for c in columns]
    return [(c.name, f"{schema_field(c).mode} {schema_field(c).field_type}") for c in columns]


def test_nine_tables_with_the_exact_schema_and_the_accounts_rows(golden):
    pipeline, account = golden.pipeline, golden.account
    for name in DATASET_NAMES:
        assert physical_columns(pipeline, name) == expected_columns(pipeline, name), name
    for name in FACTS:
        frame = pipeline.table(name)
        assert frame.schema == load_contracts()[name].polars_schema
        expected = {day: account.expected_count(name, day) for day in golden.days}
        assert local_day_counts(frame, DATASETS[name].partition_column) == expected, name
    for name in ENTITIES:
        frame = pipeline.table(name)
        assert frame.height == account.expected_count(name, None), name
        key = [k for k in DATASETS[name].key]
        assert frame.select(key).is_duplicated().sum() == 0


def test_values_match_the_contract_mapping(golden):
    pipeline, account = golden.pipeline, golden.account
    activities = pipeline.table("contactActivities")
    assert "READ" not in activities["activityStatus"].to_list()
    assert (activities["activity"] == activities["activityStatus"]).all()
    assert (activities["started"] == activities["activityDateTime"]).all()
    assert set(activities["campaignType"].unique()) <= {"IM", "Group"}
    assert (activities.filter(pl.col("broadcastId").is_null())["campaignType"] == "IM").all()
    orders = pipeline.table("orders")
    assert not set(orders["Status"].unique()) & {"IN_PROGRESS", "CANCELLED"}
    raw_orders = account.rows("orders", date(2026, 11, 21))
    order_one = raw_orders.row(0, named=True)
    stored = orders.filter(pl.col("orderId") == int(order_one["orderId"])).row(0, named=True)
    assert stored["totalCost"] == pytest.approx(float(order_one["totalCost"]))
    local = datetime.fromisoformat(order_one["date"]).replace(tzinfo=ZoneInfo(TIMEZONE))
    assert stored["orderDate"] == local.astimezone(ZoneInfo("UTC"))
    events = pipeline.table("events")
    assert events["paramsJson"].map_elements(lambda s: len(__import__("json").loads(s)) <= 50, return_dtype=pl.Boolean).all()


def test_rerunning_a_day_is_idempotent(pipeline):
    pipeline.run("2026-11-20", "2026-11-21")
    before = {name: pipeline.table(name) for name in DATASET_NAMES}
    rerun = pipeline.run("2026-11-21")
    pipeline.run("2026-11-20", "2026-11-21")
    for name in DATASET_NAMES:
        assert pipeline.table(name).equals(before[name]), name
    row_counts = {
        e.asset_key.path[-1]: e.event_specific_data.materialization.metadata["dagster/row_count"].value
        for e in rerun.get_asset_materialization_events()
    }  # a one-day run reports the table after its write, not its own rows
    assert row_counts == {name: before[name].height for name in DATASET_NAMES}


def test_revenue_and_entities_changed_by_esputnik_are_updated_not_duplicated(pipeline, account):
    pipeline.run("2026-11-20", selection=["revenue", "contacts"])
    revenue_before, contacts_before = pipeline.table("revenue"), pipeline.table("contacts")
    account.revision = 1
    result = pipeline.run("2026-11-20", selection=["revenue", "contacts"])
    revenue_after, contacts_after = pipeline.table("revenue"), pipeline.table("contacts")
    assert revenue_after.height == revenue_before.height == account.expected_count("revenue", date(2026, 11, 20))
    changed = revenue_before.join(revenue_after, on=["orderId", "messageInstanceId"], suffix="_new").filter(
        pl.col("totalCost") != pl.col("totalCost_new")
    )
    assert changed.height > 0
    truth = account.rows("revenue", date(2026, 11, 20)).select(
        pl.col("orderId").cast(pl.Int64), pl.col("totalCost").cast(pl.Float64)
    )
    assert sorted(revenue_after.select("orderId", "totalCost").rows()) == sorted(truth.rows())
    assert contacts_after.height == contacts_before.height
    assert not contacts_after.sort("contactId").equals(contacts_before.sort("contactId"))
    meta = {e.asset_key.path[-1]: e.event_specific_data.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["contacts"]["run_rows_updated"].value == contacts_before.height
    assert meta["revenue"]["run_rows_replaced"].value == revenue_before.height


FAIL_BETWEEN_LOAD_AND_SWAP = {DuckDBIOManager: (DuckDBWarehouse, "_insert_latest"), BigQueryIOManager: (BigQueryWarehouse, "_swap_days")}
FAIL_IN_UPSERT = {DuckDBIOManager: (DuckDBWarehouse, "_insert_fresh"), BigQueryIOManager: (BigQueryWarehouse, "_merge")}


def staging_tables(pipeline: Pipeline) -> list[str]:
    if not isinstance(pipeline.io_manager, BigQueryIOManager):
        return []
    with pipeline.io_manager.open_warehouse() as warehouse:
        return [t.table_id for t in warehouse.client.list_tables(warehouse.dataset) if t.table_id.startswith("_staging")]


def crash(*args, **kwargs):
    raise RuntimeError("injected failure")


def test_a_failure_half_way_through_a_write_leaves_the_day_as_it_was(pipeline, account, monkeypatch):
    pipeline.run("2026-11-20", "2026-11-21", selection=["orders"])
    before = pipeline.table("orders")
    monkeypatch.setattr(*FAIL_BETWEEN_LOAD_AND_SWAP[type(pipeline.io_manager)], crash)
    account.revision = 2
    result = pipeline.run("2026-11-21", raise_on_error=False, selection=["orders"])
    assert not result.success and "injected failure" in failure_text(result)
    assert pipeline.table("orders").equals(before)
    assert staging_tables(pipeline) == []


def test_a_failed_upsert_leaves_the_entities_as_they_were(pipeline, account, monkeypatch):
    pipeline.run("2026-11-20", selection=["contacts"])
    before = pipeline.table("contacts")
    monkeypatch.setattr(*FAIL_IN_UPSERT[type(pipeline.io_manager)], crash)
    account.revision = 3
    assert not pipeline.run("2026-11-20", raise_on_error=False, selection=["contacts"]).success
    assert pipeline.table("contacts").equals(before)
    assert staging_tables(pipeline) == []


def duckdb_io(tmp_path) -> DuckDBIOManager:
    return DuckDBIOManager(path=str(tmp_path / "w.duckdb"))


def empty_events_server():
    def script(seen):
        return Reply(body=[])

    return ScriptedServer(script)


def test_an_empty_answer_for_a_day_that_held_rows_is_refused_unless_confirmed(pipeline):
    pipeline.run("2026-11-20", selection=["events"])
    held = pipeline.table("events").height
    with empty_events_server() as server:
        empty = Pipeline(server.url, "k", pipeline.io_manager)
        result = empty.run("2026-11-20", raise_on_error=False, selection=["events"])
        assert not result.success
        text = failure_text(result)
        assert "no rows for 2026-11-20" in text
        assert result.get_step_failure_events()[0].event_specific_data.error.cls_name == "Failure"  # not a wrapper
        assert pipeline.table("events").height == held
        pasted = yaml.safe_load(text[text.index("ops:"):])
        assert pasted == {"ops": {"esputnik_events": {"config": {"allow_empty_days": True}}}}
        confirmed = empty.run("2026-11-20", selection=["events"], run_config=pasted)
        assert confirmed.success and pipeline.table("events").height == 0


def shrinking_orders_server(answered: dict[str, int]) -> ScriptedServer:
    """/v1/orders answering the first `answered["orders"]` of 20 orders of 2026-11-20, each with one item."""

    def script(seen):
        orders = [
            {"orderId": n, "date": "2026-11-20T12:00:00", "totalCost": "10", "status": "DELIVERED",
             "items": [{"externalItemId": f"sku{n}", "quantity": "1", "cost": "10"}]}
            for n in range(answered["orders"])
        ]  # fmt: skip
        return Reply(body=orders if seen.query.get("startindex", "1") == "1" else [])

    return ScriptedServer(script)


def quarantined(io_manager) -> dict[str, int]:
    """Refused reads kept for inspection: table -> rows (DuckDB's quarantine schema, BigQuery's kept staging tables)."""
    with io_manager.open_warehouse() as warehouse:
        if isinstance(warehouse, DuckDBWarehouse):
            with warehouse.connect() as con:
                names = con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [f"{warehouse.schema}_quarantine"]
                ).fetchall()
                return {n: con.execute(f'SELECT count(*) FROM "{warehouse.schema}_quarantine"."{n}"').fetchone()[0]
                        for (n,) in names}  # fmt: skip
        tables = [t.table_id for t in warehouse.client.list_tables(warehouse.dataset) if t.table_id.startswith("_staging")]
        return {t: warehouse.row_count(t) for t in tables}


def test_a_partial_answer_for_a_stored_day_is_refused_kept_for_inspection_and_confirmable(io_manager):
    """A re-read answering 2 of a day's 20 orders: nothing is replaced, the read is kept, the error gives the run
    config that confirms it, and that config, pasted, writes the day."""
    answered = {"orders": 20}
    with shrinking_orders_server(answered) as server:
        pipe = Pipeline(server.url, "live-key-123", io_manager)
        assert pipe.run("2026-11-20", selection=["orders", "orderItems"]).success
        answered["orders"] = 2
        result = pipe.run("2026-11-20", selection=["orders", "orderItems"], raise_on_error=False)
        assert not result.success
        text = failure_text(result)
        assert "orders: eSputnik answered far fewer rows than the table holds" in text
        assert "2026-11-20: 2 rows read, 20 stored (refused below 10)" in text
        assert pipe.table("orders").height == 20 and pipe.table("orderItems").height == 20
        assert result.get_asset_materialization_events() == []
        assert sorted(quarantined(io_manager).values()) == [2, 2]  # orders and orderItems, as read
        pasted = yaml.safe_load(text[text.index("ops:"):].split("\n\n")[0])  # the first refusal's config
        assert pasted == {"ops": {"esputnik_orders": {"config": {"allow_smaller_days": True}}}}
        confirmed = pipe.run("2026-11-20", selection=["orders", "orderItems"], run_config=pasted)
        assert confirmed.success and pipe.table("orders").height == 2 and pipe.table("orderItems").height == 2


def test_a_re_read_day_is_refused_only_below_both_its_stored_rows_and_their_trailing_mean():
    """The rule of `day_verdicts`: a day stored as an outlier (20 in a week of 2 a day) may come back to 2."""
    day = date(2026, 11, 20)
    bounds = day_bounds(LocalWindow.for_days(day, day + timedelta(days=1)), TIMEZONE)
    week = {day - timedelta(days=i): 2 for i in range(1, 8)}
    [outlier] = day_verdicts(bounds, DayGuard(max_day_drop=0.5), week | {day: 20}, {day: 2})
    assert not outlier.smaller and outlier.floor == 1
    [partial] = day_verdicts(bounds, DayGuard(max_day_drop=0.5), {day: 200}, {day: 20})
    assert partial.smaller and partial.trailing_mean is None and partial.floor == 100
    [empty] = day_verdicts(bounds, DayGuard(), {day: 200}, {})
    assert empty.empty and not empty.smaller


def paged_orders_server(pages: list[list[dict]]) -> ScriptedServer:
    """/v1/orders answering `pages` in turn (page n for startindex 1 + 500 * n), then an empty page."""

    def script(seen):
        index = (int(seen.query.get("startindex", 1)) - 1) // 500
        return Reply(body=pages[index] if index < len(pages) else [])

    return ScriptedServer(script)


def test_an_orders_items_come_from_the_same_copy_as_the_order_that_wins(io_manager):
    """Order 7 on page 1 (two items) and again on page 2 (one item, total 999, CANCELLED): the later copy wins whole."""

    def order(order_id, items, total="10", status="DELIVERED"):
        return {"orderId": order_id, "date": "2026-11-20T12:00:00", "totalCost": total, "status": status, "items": items}

    item = lambda sku: {"externalItemId": sku, "name": sku, "quantity": "1", "cost": "5"}  # noqa: E731
    first_page = [order(7, [item("stale-a"), item("stale-b")])] + [order(100 + i, [item(f"x{i}")]) for i in range(499)]
    with paged_orders_server([first_page, [order(7, [item("late-a")], total="999", status="CANCELLED")]]) as server:
        pipe = Pipeline(server.url, "k", io_manager)
        assert pipe.run("2026-11-20", selection=["orders", "orderItems"], spool_batch_rows=100).success
    orders, items = pipe.table("orders"), pipe.table("orderItems")
    assert orders.filter(pl.col("orderId") == 7).select("totalCost", "Status").rows() == [(999.0, "CANCELED")]
    assert items.filter(pl.col("orderId") == 7)["externalProductId"].to_list() == ["late-a"]
    assert orders.height == 500 and items.height == 500


def test_bad_rows_fail_the_run_naming_dataset_field_and_value(tmp_path):
    bad = [{"orderId": 1, "date": "2026-11-20T10:00:00", "totalCost": "12,5", "items": []}]
    with ScriptedServer(lambda seen: Reply(body=bad)) as server:
        result = Pipeline(server.url, "k", duckdb_io(tmp_path)).run("2026-11-20", raise_on_error=False, selection=["orders"])
    message = failure_text(result)
    assert "orders: field 'totalCost' has value '12,5'" in message


def test_an_assumed_endpoint_missing_on_the_account_says_how_to_switch_it_off(tmp_path):
    with ScriptedServer(lambda seen: Reply(404, "Not Found")) as server:
        result = Pipeline(server.url, "k", duckdb_io(tmp_path)).run("2026-11-20", raise_on_error=False, selection=["devices"])
    message = failure_text(result)
    assert "devices" in message and "ESPUTNIK_DATASETS" in message and "endpoint_paths" in message


def test_endpoint_paths_are_configurable(demo_server, tmp_path):
    seen = []

    def proxy(request):
        seen.append(request.path)
        return Reply(body=[{"deviceId": "d1", "contactId": 1}])

    with ScriptedServer(proxy) as server:
        result = Pipeline(server.url, "k", duckdb_io(tmp_path)).run(
            "2026-11-20", selection=["devices"], endpoint_paths={"devices": "/v2/mobile/devices"}
        )
    assert result.success and seen == ["/api/v2/mobile/devices"]


def test_rows_outside_the_asked_window_are_counted_and_left_for_their_day(tmp_path):
    rows = [{"eventId": 1, "occurred": "2026-11-20T12:00:00"}, {"eventId": 2, "occurred": "2026-11-21T00:00:00"}]
    with ScriptedServer(lambda seen: Reply(body=rows)) as server:
        pipe = Pipeline(server.url, "k", duckdb_io(tmp_path))
        result = pipe.run("2026-11-20", selection=["events"])
    [event] = result.get_asset_materialization_events()
    assert event.event_specific_data.materialization.metadata["run_out_of_window_rows"].value == 1
    assert pipe.table("events")["eventId"].to_list() == [1]


def test_the_demo_account_when_chosen_is_used_and_said(tmp_path):
    pipe = Pipeline("https://unused.invalid/api", None, duckdb_io(tmp_path))
    result = pipe.run("2026-11-20", selection=["broadcasts", "orders"], demo_account=True)
    sources = {e.event_specific_data.materialization.metadata["source"].value for e in result.get_asset_materialization_events()}
    assert len(sources) == 1 and sources.pop().startswith("demo account")
    assert pipe.table("orders").height == built_in_demo_account().expected_count("orders", date(2026, 11, 20))


def test_the_api_key_never_reaches_metadata_or_logs(golden):
    for result in (golden.history, golden.result):
        for event in result.all_events:
            assert golden.server.api_key not in str(event), event.event_type_value


def test_a_multi_day_backfill_reads_each_entity_once(pipeline, demo_server):
    pipeline.run("2026-11-01", "2026-11-22", selection=["contacts", "orders"])
    contact_pages = demo_server.requests_served("/v1/contacts")
    order_pages = demo_server.requests_served("/v1/orders")
    assert contact_pages == 300 // 500 + 1
    assert order_pages == (22 * 40) // 500 + 1


@pytest.mark.parametrize("day", ["2026-10-25", "2026-03-29"])
def test_daylight_saving_days_have_their_23_or_25_hours(pipeline, account, day):
    pipeline.run(day, selection=["contactActivities"])
    local = date.fromisoformat(day)
    frame = pipeline.table("contactActivities")
    assert local_day_counts(frame, "activityDateTime") == {local: account.expected_count("contactActivities", local)}
    local_times = account.rows("contactActivities", local)["activityDateTime"].sort()  # the answer's local text
    first, last = (datetime.fromisoformat(t).replace(tzinfo=ZoneInfo(TIMEZONE)) for t in local_times[[0, -1]])
    shift = {"2026-10-25": timedelta(hours=1), "2026-03-29": timedelta(hours=-1)}[day]  # a day of 25 or 23 hours
    assert frame["activityDateTime"].max() - frame["activityDateTime"].min() == (last - first) + shift


@pytest.mark.slow
def test_both_warehouses_hold_identical_tables(demo_server, make_io_manager):
    """The same reads into DuckDB and BigQuery give the same rows, value for value, in every table."""
    duck = Pipeline(demo_server.url, demo_server.api_key, make_io_manager("duckdb"))
    bq = Pipeline(demo_server.url, demo_server.api_key, make_io_manager("bigquery"))
    for pipe in (duck, bq):
        pipe.run("2026-11-20", "2026-11-21")
        pipe.run("2026-11-21")
    for name in DATASET_NAMES:
        assert bq.table(name).equals(duck.table(name)), name


def test_bigquery_tables_are_day_partitioned_and_clustered(make_io_manager, demo_server):
    pipe = Pipeline(demo_server.url, demo_server.api_key, make_io_manager("bigquery"))
    pipe.run("2026-11-20")
    with pipe.io_manager.open_warehouse() as warehouse:
        for name, spec in DATASETS.items():
            table = warehouse.client.get_table(warehouse.table_id(name))
            if spec.write_mode is WriteMode.REPLACE_DAYS:
                assert table.time_partitioning.type_ == "DAY" and table.time_partitioning.field == spec.partition_column
                assert table.clustering_fields == list(spec.cluster_by)
            else:
                assert table.time_partitioning is None
            descriptions = {f.name: f.description for f in table.schema}
            assert all(descriptions[c.name] for c in load_contracts()[name].columns), name
        assert warehouse.client.get_table(warehouse.table_id("broadcasts")).schema[1].mode == "REPEATED"


@pytest.mark.slow
def test_streamed_small_batches_write_the_same_tables(pipeline, account, make_io_manager, demo_server, monkeypatch):
    """Many spool parts per read (batches of 300 rows) give the tables one batch gives, and stay atomic."""
    streamed = Pipeline(demo_server.url, demo_server.api_key, make_io_manager("duckdb"))
    pipeline.run("2026-11-20", "2026-11-21")
    streamed.run("2026-11-20", "2026-11-21", spool_batch_rows=300)
    for name in DATASET_NAMES:
        assert streamed.table(name).equals(pipeline.table(name)), name
    before = streamed.table("contactActivities")
    monkeypatch.setattr(*FAIL_BETWEEN_LOAD_AND_SWAP[type(streamed.io_manager)], crash)
    account.revision = 4
    assert not streamed.run("2026-11-21", selection=["contactActivities"], spool_batch_rows=300, raise_on_error=False).success
    assert streamed.table("contactActivities").equals(before)


def test_an_unreliable_server_still_gives_exactly_the_accounts_rows(account, tmp_path):
    """429s (with and without Retry-After), 5xx, and repeated activities: retried and deduplicated, nothing lost."""
    faults = FaultPlan(seed=5, rate_429=0.15, retry_after=0.0, rate_5xx=0.1, activity_duplicate_rate=0.5)
    with DemoServer(account, faults=faults) as server:
        pipe = Pipeline(server.url, server.api_key, duckdb_io(tmp_path))
        result = pipe.run("2026-11-20", retry_base_delay_seconds=0.01, max_attempts=10)
    retries = sum(
        e.event_specific_data.materialization.metadata["run_http_retries"].value for e in result.get_asset_materialization_events()
    )
    assert retries > 0
    for name in FACTS:
        assert pipe.table(name).height == account.expected_count(name, date(2026, 11, 20)), name
    for name in ENTITIES:
        assert pipe.table(name).height == account.expected_count(name, None), name


def test_an_account_without_the_activity_export_says_so(account, tmp_path):
    with DemoServer(account, faults=FaultPlan(activity_enabled=False)) as server:
        result = Pipeline(server.url, server.api_key, duckdb_io(tmp_path)).run(
            "2026-11-20", selection=["contactActivities"], raise_on_error=False
        )
    text = failure_text(result)
    assert "Contact support to enable ContactActivity." in text and "ESPUTNIK_DATASETS" in text


def test_each_partition_of_a_range_run_carries_its_own_days_figures(golden):
    days = [day.isoformat() for day in golden.run_days]
    events = {
        e.partition: e.event_specific_data.materialization.metadata
        for e in golden.result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "events"
    }
    assert sorted(events) == days
    count = {day.isoformat(): golden.account.expected_count("events", day) for day in golden.days}
    phases = [f"run_seconds_{phase}" for phase in ("fetching", "shaping", "spooling", "writing")]
    run_figures = {key: value.value for key, value in events[days[0]].items() if key.startswith("run_seconds_")}
    assert sorted(run_figures) == sorted(phases) and 0 < sum(run_figures.values()) <= golden.run_seconds
    for day in days:
        meta = events[day]
        assert meta["rows_written"].value == meta["dagster/partition_row_count"].value == count[day]
        assert meta["rows_read"].value == count[day]
        assert meta["dagster/row_count"].value == sum(count.values())  # the table after the write, not the run's rows
        assert meta["run_rows_written"].value == sum(count[d] for d in days)
        assert [r.data["day"] for r in meta["run_days"].value.records] == days
        assert "| eventId |" in meta["preview"].value
        assert {key: meta[key].value for key in phases} == run_figures  # the run's figures, the same on each day
    contacts = [e for e in golden.result.get_asset_materialization_events() if e.asset_key.path[-1] == "contacts"]
    row_counts = {e.event_specific_data.materialization.metadata["dagster/row_count"].value for e in contacts}
    assert row_counts == {golden.account.expected_count("contacts")}


def test_a_read_reports_its_progress_in_the_run_log(demo_server, tmp_path):
    pipe = Pipeline(demo_server.url, demo_server.api_key, duckdb_io(tmp_path))
    _, log = run_log(pipe, "2026-11-20", selection=["contactActivities"], spool_batch_rows=500)
    progress = [line for line in log if "rows read in" in line]
    assert progress[0].startswith("contactActivities: 1000 rows read in 1 pages")  # a line per spooled batch
    assert progress[-1].startswith("contactActivities: 1500 rows read in 2 pages")
