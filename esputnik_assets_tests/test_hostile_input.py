"""Hostile input and odd configuration: a run never succeeds with merged keys, demo rows it was not asked for, or
spool files left behind."""

import json
import os
import signal
import subprocess
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from esputnik_assets.definitions import build_definitions
from esputnik_assets.settings import Settings, SettingsError
from esputnik_assets.source.resource import NO_ACCOUNT
from esputnik_assets.source.spool_dirs import ROOT_NAME
from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
from esputnik_assets.warehouse.io_manager import DuckDBIOManager
from esputnik_assets_tests.conftest import TIMEZONE, Pipeline, failure_text, run_log
from esputnik_assets_tests.scripted_server import Reply, ScriptedServer

DAY = "2026-11-20"


def duckdb_io(tmp_path: Path, name: str = "w.duckdb") -> DuckDBIOManager:
    return DuckDBIOManager(path=str(tmp_path / name))


def v1_server(rows: list[dict]) -> ScriptedServer:
    """A v1 endpoint serving `rows` in honest pages."""

    def script(seen):
        first, size = int(seen.query.get("startindex", 1)) - 1, int(seen.query.get("maxrows", 500))
        return Reply(body=rows[first : first + size])

    return ScriptedServer(script)


def table_rows(io: DuckDBIOManager, dataset: str) -> int:
    """Rows in a table of the file; 0 when the file or the table does not exist (nothing was written)."""
    if not Path(io.path).exists():
        return 0
    with duckdb.connect(io.path, read_only=True) as con:
        found = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'esputnik' AND table_name = ?", [dataset]
        ).fetchone()[0]
        return con.execute(f'SELECT count(*) FROM esputnik."{dataset}"').fetchone()[0] if found else 0


# -- 1. null or missing keys ------------------------------------------------------------------------------------


def test_contacts_without_their_id_fail_the_run_instead_of_merging(tmp_path):
    rows = [{"firstName": f"c{i}", **({"id": None} if i % 2 else {})} for i in range(1500)]
    io = duckdb_io(tmp_path)
    with v1_server(rows) as server:
        result = Pipeline(server.url, "k", io).run(DAY, raise_on_error=False, selection=["contacts"])
    assert not result.success
    message = failure_text(result)
    assert "contacts: key field 'contactId' is null or missing in 1500 of 1500 row(s)" in message
    assert table_rows(io, "contacts") == 0


@pytest.mark.parametrize(("missing", "count"), [(None, 10), ("", 15), ("   ", 15)])
def test_activities_with_a_null_or_blank_iid_fail_the_run_naming_the_field_and_count(tmp_path, missing, count):
    """A blank key is a missing key: it would merge unrelated rows into one."""
    rows = [
        {"iid": missing if i < count else f"a{i}", "offset": str(i), "contactId": i, "activityStatus": "DELIVERED",
         "mediaType": "Email", "activityDateTime": "2026-11-20T10:00:00"}
        for i in range(999)
    ]  # fmt: skip
    io = duckdb_io(tmp_path)
    with ScriptedServer(lambda seen: Reply(body=rows)) as server:
        result = Pipeline(server.url, "k", io).run(DAY, raise_on_error=False, selection=["contactActivities"])
    assert not result.success
    assert f"contactActivities: key field 'iid' is null or missing in {count} of 999 row(s)" in failure_text(result)
    assert table_rows(io, "contactActivities") == 0


def test_devices_with_a_blank_id_fail_the_run_like_a_missing_one(tmp_path):
    rows = [{"deviceId": "" if i % 10 == 0 else f"d{i}", "contactId": i} for i in range(200)]
    io = duckdb_io(tmp_path)
    with v1_server(rows) as server:
        result = Pipeline(server.url, "k", io).run(DAY, raise_on_error=False, selection=["devices"])
    assert not result.success
    assert "devices: key field 'deviceId' is null or missing in 20 of 200 row(s)" in failure_text(result)
    assert table_rows(io, "devices") == 0


def test_revenue_rows_without_a_message_instance_are_kept_one_per_order(tmp_path):
    rows = [
        {"orderId": n, "orderDate": "2026-11-20T12:00:00", "totalCost": "10", "activityDateTime": "2026-11-20T11:00:00"}
        for n in (1, 2, 3)
    ]
    io = duckdb_io(tmp_path)
    with ScriptedServer(lambda seen: Reply(body=rows)) as server:
        result = Pipeline(server.url, "k", io).run(DAY, selection=["revenue"])
    [event] = result.get_asset_materialization_events()
    assert event.event_specific_data.materialization.metadata["run_duplicates_dropped"].value == 0
    assert table_rows(io, "revenue") == 3


# -- 2. the demo account is a choice, never a fallback --------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ESPUTNIK_API_URL": "https://esputnik.example/api"}, "ESPUTNIK_API_URL is set but ESPUTNIK_API_KEY is not"),
        ({"ESPUTNIK_DEMO": "false"}, "No eSputnik account is configured"),
        ({"ESPUTNIK_DEMO": "true", "ESPUTNIK_API_KEY": "k"}, "unset one side"),
        ({"ESPUTNIK_DEMO": "maybe"}, "ESPUTNIK_DEMO='maybe'"),
        ({"ESPUTNIK_WAREHOUSE": "bigquery", "BIGQUERY_PROJECT": "p"}, "ESPUTNIK_DEMO=true to load the built-in"),
        ({"ESPUTNIK_START_DATE": "2999-01-01"}, "no daily partition exists yet"),
    ],
)
def test_an_account_that_is_not_clearly_chosen_is_refused_when_definitions_load(env, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        Settings.from_environ(env)


def test_the_demo_account_is_implied_only_for_duckdb_with_no_account_configured():
    assert Settings.from_environ({}).demo_account is True
    assert Settings.from_environ({"ESPUTNIK_API_KEY": "k"}).demo_account is False
    bigquery_demo = {"ESPUTNIK_WAREHOUSE": "bigquery", "BIGQUERY_PROJECT": "p", "ESPUTNIK_DEMO": "yes"}
    assert build_definitions(Settings.from_environ(bigquery_demo)).resources["esputnik"].demo_account is True


def _live_env(server: ScriptedServer, tmp_path: Path) -> dict[str, str]:
    return {
        "ESPUTNIK_API_KEY": "live-key-123",
        "ESPUTNIK_API_URL": server.url,
        "ESPUTNIK_TIMEZONE": TIMEZONE,
        "ESPUTNIK_DATASETS": "devices",
        "ESPUTNIK_MAX_REQUESTS_PER_SECOND": "0",
        "ESPUTNIK_DUCKDB_PATH": str(tmp_path / "live.duckdb"),
    }


def test_launchpad_config_for_the_resource_fails_loudly_instead_of_reading_the_demo(tmp_path, monkeypatch):
    """Dagster replaces the resource's whole config when a run sets some of it; the EnvVar key goes with it."""
    with ScriptedServer(lambda seen: Reply(body=[{"deviceId": "d1", "contactId": 1}])) as server:
        env = _live_env(server, tmp_path)
        monkeypatch.setenv("ESPUTNIK_API_KEY", env["ESPUTNIK_API_KEY"])
        job = build_definitions(Settings.from_environ(env)).resolve_implicit_global_asset_job_def()
        partial = {"resources": {"esputnik": {"config": {"read_timeout_seconds": 5.0, "api_url": server.url}}}}
        result = job.execute_in_process(
            partition_key=DAY, run_config=partial, raise_on_error=False, instance=dg.DagsterInstance.ephemeral()
        )
        assert not result.success and NO_ACCOUNT in failure_text(result)
        assert server.seen == []
        assert table_rows(DuckDBIOManager(path=env["ESPUTNIK_DUCKDB_PATH"]), "devices") == 0

        whole = {"resources": {"esputnik": {"config": {
            "read_timeout_seconds": 5.0, "api_url": server.url, "max_requests_per_second": 0,
            "api_key": {"env": "ESPUTNIK_API_KEY"},
        }}}}  # fmt: skip
        result = job.execute_in_process(partition_key=DAY, run_config=whole, instance=dg.DagsterInstance.ephemeral())
        assert result.success and [s.password for s in server.seen] == ["live-key-123"]
        assert table_rows(DuckDBIOManager(path=env["ESPUTNIK_DUCKDB_PATH"]), "devices") == 1


def test_demo_rows_never_enter_a_table_of_live_rows_nor_the_reverse(demo_server, io_manager):
    answers = {"/api/v1/devices": [{"deviceId": "live-1", "contactId": 1}], "/api/v1/broadcasts": [{"broadcastId": 7}]}
    with ScriptedServer(lambda seen: Reply(body=answers[seen.path] if seen.query["startindex"] == "1" else [])) as server:
        live = Pipeline(server.url, "k", io_manager)
        assert live.run(DAY, selection=["devices"]).success
        demo = Pipeline("https://unused.invalid/api", None, io_manager)
        result = demo.run(DAY, selection=["devices"], raise_on_error=False, demo_account=True)
        assert not result.success
        assert "holds live-account rows" in failure_text(result) and "the table was not changed" in failure_text(result)
        assert live.table("devices")["deviceId"].to_list() == ["live-1"]

        assert demo.run(DAY, selection=["broadcasts"], demo_account=True).success
        result = live.run(DAY, selection=["broadcasts"], raise_on_error=False)
        assert not result.success and "holds demo-account rows" in failure_text(result)


def test_demo_rows_never_enter_a_table_that_held_rows_before_sources_were_recorded(tmp_path):
    io = duckdb_io(tmp_path)
    with v1_server([{"deviceId": "old", "contactId": 1}]) as server:
        assert Pipeline(server.url, "k", io).run(DAY, selection=["devices"]).success
    with duckdb.connect(io.path) as con:  # as a table written by an earlier version looks
        con.execute("COMMENT ON TABLE esputnik.devices IS NULL")
    assert DuckDBWarehouse(io.path).source_of("devices") is None
    result = Pipeline("https://unused.invalid/api", None, io).run(
        DAY, selection=["devices"], raise_on_error=False, demo_account=True
    )
    assert not result.success and "rows of unknown origin" in failure_text(result)
    assert table_rows(io, "devices") == 1


# -- 6. spool folders -------------------------------------------------------------------------------------------


def test_a_failed_write_leaves_no_spool_folder(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(DuckDBWarehouse, "replace_days", refuse)
    spool = tmp_path / "spool"
    result = Pipeline("https://unused.invalid/api", None, duckdb_io(tmp_path)).run(
        DAY, selection=["orders", "orderItems"], raise_on_error=False, demo_account=True, spool_folder=str(spool)
    )
    assert not result.success and "disk full" in failure_text(result)
    assert list((spool / ROOT_NAME).iterdir()) == []


def test_spool_folders_of_ended_processes_are_swept_on_start(tmp_path):
    ended = subprocess.Popen(["true"])
    ended.wait()
    root = tmp_path / "spool" / ROOT_NAME
    stale = root / f"orders-{ended.pid}-deadbeef"
    stale.mkdir(parents=True)
    (stale / "orders.000000.parquet").write_bytes(b"x" * 1000)
    unrelated = root / "notes"
    unrelated.mkdir()
    pipe = Pipeline("https://unused.invalid/api", None, duckdb_io(tmp_path))
    result, log = run_log(pipe, DAY, selection=["devices"], demo_account=True, spool_folder=str(tmp_path / "spool"))
    assert result.success
    assert not stale.exists() and unrelated.exists()
    assert [line for line in log if "left behind" in line and str(stale) in line and "1000 bytes" in line]


def test_a_duckdb_file_in_a_missing_folder_is_created_and_said(tmp_path):
    io = DuckDBIOManager(path=str(tmp_path / "new" / "folder" / "w.duckdb"))
    _, log = run_log(Pipeline("https://unused.invalid/api", None, io), DAY, selection=["devices"], demo_account=True)
    assert (tmp_path / "new" / "folder" / "w.duckdb").is_file()
    assert [line for line in log if "Created the folder" in line and str(tmp_path / "new" / "folder") in line]


# -- 4. no form of the key in Dagster's storage -----------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 500])
def test_no_form_of_the_key_reaches_dagsters_run_storage(tmp_path, status):
    """A server echoing the Authorization header: the failed run's events, errors and logs, as Dagster stores them
    on disk, hold the key in none of its forms."""
    from esputnik_assets_tests.test_hostile_source import FORMS, KEY, echo

    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        with ScriptedServer(echo(status)) as server:
            pipe = Pipeline(server.url, KEY, duckdb_io(tmp_path))
            result = pipe.run(DAY, selection=["contacts"], raise_on_error=False, instance=instance,
                              max_attempts=2, retry_base_delay_seconds=0.01)  # fmt: skip
        assert not result.success and "***" in failure_text(result)
        stored = b"".join(path.read_bytes() for path in (tmp_path / "home").rglob("*") if path.is_file())
        assert len(stored) > 10_000  # the run really is in there
    for name, form in FORMS.items():
        assert form.rstrip("=").encode() not in stored, name


def test_the_demo_account_starts_once_per_run_and_says_so_once(tmp_path):
    pipe = Pipeline("https://unused.invalid/api", None, duckdb_io(tmp_path))
    result, log = run_log(pipe, DAY, selection=["devices", "broadcasts", "orders"], demo_account=True,
                          spool_folder=str(tmp_path / "shared"))  # fmt: skip
    assert result.success
    announced = [line for line in log if "Reading the built-in demo account" in line]
    assert len(announced) == 1  # three steps, one server
    [ready] = (tmp_path / "shared" / "esputnik-assets-demo").glob(f"{result.run_id}-*.json")
    server = json.loads(ready.read_text())
    assert announced[0].endswith(f"at {server['url']}, as configured (demo_account)")
    os.kill(server["pid"], signal.SIGTERM)  # it would stop by itself after two idle minutes
