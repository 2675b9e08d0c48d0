"""Many accounts in one code location (ESPUTNIK_ACCOUNTS_FILE): a bad file fails at load naming the account and the
field; two accounts in different time zones get their own names, partitions, pools and schemas, and materialize side
by side into one warehouse, each over its own local day."""

import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from esputnik_assets.definitions import build_definitions
from esputnik_assets.settings import Settings, SettingsError
from esputnik_assets_tests.conftest import built_in_demo_account

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "accounts.yaml"
BIN = Path(sys.executable).parent
DAY = date(2026, 11, 20)
DATASETS = ("contactActivities", "orders", "orderItems", "revenue")
TWO_ACCOUNTS = f"""\
accounts:
  - name: shop_ua
    demo: true
    timezone: Europe/Kyiv
    datasets: [{", ".join(DATASETS)}]
  - name: shop_us
    demo: true
    timezone: America/New_York
    datasets: [{", ".join(DATASETS)}]
    start_date: 2026-03-01
    max_requests_per_second: 4
"""


def _settings(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    return Settings.from_environ({"ESPUTNIK_ACCOUNTS_FILE": str(path), **env})


def _account(**fields: object) -> str:
    """An accounts file of one account, its fields written as YAML flow mappings write them."""
    return "accounts:\n  - {" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}\n"


@pytest.mark.parametrize(
    ("text", "env", "shown"),
    [
        (_account(name="shop", demo="true", colour="red"), {}, "account 'shop': field 'colour': unknown field"),
        (TWO_ACCOUNTS.replace("shop_us", "shop_ua"), {}, "account 'shop_ua': field 'name': a second account has"),
        (_account(name="Shop-UA", demo="true"), {}, "account 'Shop-UA': field 'name': 'Shop-UA': required, [a-z]"),
        (_account(name="a" * 41, demo="true"), {}, "field 'name'"),
        (_account(name="shop", api_key_env="KEY_SHOP"), {}, "account 'shop': field 'api_key_env': the variable "
         "KEY_SHOP is not set"),
        (_account(name="shop"), {}, "account 'shop': field 'api_key_env': required"),
        (_account(name="shop", demo="true", api_key_env="K"), {"K": "k"},
         "account 'shop': field 'api_key_env': a demo"),
        (_account(name="shop", demo="true", timezone="Mars/Olympus"), {}, "account 'shop': field 'timezone': "
         "'Mars/Olympus' is not an IANA"),
        (_account(name="shop", demo="true", datasets="[orders, coupons]"), {}, "account 'shop': field 'datasets'"),
        (_account(name="shop", demo="true", start_date="2026-13-01"), {}, "account 'shop': field 'start_date'"),
        (_account(name="shop", demo="true", start_date="2999-01-01"), {}, "field 'start_date': 2999-01-01 is after"),
        (_account(name="shop", demo="true", max_requests_per_second=-1), {}, "field 'max_requests_per_second'"),
        (_account(name="shop", demo="maybe"), {}, "account 'shop': field 'demo': 'maybe': use true or false"),
        (_account(name="shop", api_key_env="K", api_url="ftp://x"), {"K": "k"}, "account 'shop': field 'api_url': "
         "'ftp://x' is not an http(s) URL"),
        ("accounts: []\n", {}, "the file holds one key, `accounts`, a list of one or more accounts"),
        ("account:\n  - {name: shop, demo: true}\n", {}, "the file holds one key, `accounts`"),
        ("accounts: [\n", {}, "cannot be read as YAML"),
        ("accounts:\n  - shop\n", {}, "account #1: field 'name': each account is a mapping"),
        (_account(name="shop", demo="true"), {"ESPUTNIK_API_KEY": "k", "ESPUTNIK_TIMEZONE": "UTC"},
         "ESPUTNIK_ACCOUNTS_FILE is set, and so are ESPUTNIK_API_KEY, ESPUTNIK_TIMEZONE: the accounts file replaces"),
    ],
)  # fmt: skip
def test_a_bad_accounts_file_fails_naming_the_account_and_the_field(tmp_path, text, env, shown):
    with pytest.raises(SettingsError) as raised:
        _settings(tmp_path, text, **env)
    assert shown in str(raised.value)
    assert {p.variable for p in raised.value.problems} == {"ESPUTNIK_ACCOUNTS_FILE"}


def test_a_missing_file_is_named():
    with pytest.raises(SettingsError, match="ESPUTNIK_ACCOUNTS_FILE='/nowhere.yaml' cannot be read"):
        Settings.from_environ({"ESPUTNIK_ACCOUNTS_FILE": "/nowhere.yaml"})


def test_a_live_account_keeps_its_key_an_env_var_named_by_the_file(tmp_path):
    text = _account(name="shop", api_key_env="KEY_SHOP", api_url="https://yespo.io/api", timezone="Europe/Kyiv")
    defs = build_definitions(_settings(tmp_path, text, KEY_SHOP="secret"))
    resource = defs.resources["esputnik_shop"]
    assert isinstance(resource.api_key, dg.EnvVar) and resource.api_key.env_var_name == "KEY_SHOP"
    assert resource.api_url == "https://yespo.io/api" and type(resource).__name__ == "EsputnikResource"
    assert defs.resources["alert_webhook_shop"].account_key.env_var_name == "KEY_SHOP"  # redacted from alerts


def test_each_account_has_its_own_names_partitions_schemas_budget_and_pool(tmp_path):
    defs = build_definitions(_settings(tmp_path, TWO_ACCOUNTS))
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    for name, zone, start in (("shop_ua", "Europe/Kyiv", date(2026, 1, 1)), ("shop_us", "America/New_York",
                                                                              date(2026, 3, 1))):  # fmt: skip
        raw = {k for k, s in specs.items() if s.group_name == f"esputnik_{name}"}
        assert raw == {dg.AssetKey([f"esputnik_{name}", d]) for d in DATASETS}
        metrics = {k for k, s in specs.items() if s.group_name == f"esputnik_{name}_metrics"}
        assert metrics and {k.path[0] for k in metrics} == {f"esputnik_{name}_metrics"}
        partitions = {specs[k].partitions_def for k in raw | metrics}
        assert {(p.timezone, p.start) for p in partitions} == {(zone, datetime(*start.timetuple()[:3],
                                                                               tzinfo=ZoneInfo(zone)))}  # fmt: skip
        io_manager = defs.resources[f"warehouse_io_manager_{name}"]
        warehouse = defs.resources[f"metrics_warehouse_{name}"]
        assert (io_manager.dataset, io_manager.metrics_dataset) == (f"esputnik_{name}", f"esputnik_{name}_metrics")
        assert (warehouse.raw_dataset, warehouse.metrics_dataset, warehouse.timezone) == (
            f"esputnik_{name}", f"esputnik_{name}_metrics", zone)
        assert defs.resolve_schedule_def(f"esputnik_{name}_daily_schedule").execution_timezone == zone
        job = defs.resolve_job_def(f"esputnik_{name}_daily")
        assert job.tags["esputnik/account"] == name
        selected = {k.path[0] for k in job.asset_layer.selected_asset_keys}
        assert selected == {f"esputnik_{name}", f"esputnik_{name}_metrics"}
        reads = [a for a in defs.resolve_asset_graph().assets_defs if a.keys <= raw]
        assert {a.op.pool for a in reads} == {f"esputnik_api_{name}"}  # at most the pool's limit of its reads at once
        assert {a.op.tags["esputnik/account"] for a in reads} == {name}
        for sensor in ("freshness", "alerts", "stale_metric_days"):
            assert defs.resolve_sensor_def(f"esputnik_{name}_{sensor}")
        assert defs.resolve_job_def(f"esputnik_{name}_doctor")
    assert defs.resources["esputnik_shop_ua"].max_requests_per_second == 1.0
    assert defs.resources["esputnik_shop_us"].max_requests_per_second == 4.0
    assert not {k for k in specs if k.path[0] in ("esputnik", "esputnik_metrics")}  # no single-account names


def test_the_example_file_loads_two_demo_accounts_in_two_time_zones():
    settings = Settings.from_environ({"ESPUTNIK_ACCOUNTS_FILE": str(EXAMPLE)})
    assert [(a.name, a.timezone, a.demo) for a in settings.accounts] == [
        ("shop_ua", "Europe/Kyiv", True), ("shop_us", "America/New_York", True)]
    build_definitions(settings)


def _expected_activities(day: date, zone: str) -> tuple[int, int, int]:
    """The demo account's activities of its local day D, as the account of zone `zone` holds them: (count, first and
    last instant in ms since 1970). The API speaks naive local times; the demo's `_t` is that local wall time in ms,
    so the instant is the wall time read in the account's zone."""
    walls = built_in_demo_account().day_frame("contactActivities", day)["_t"].to_list()

    def instant(wall_ms: int) -> int:
        wall = datetime(1970, 1, 1) + timedelta(milliseconds=wall_ms)
        return round(wall.replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)

    return len(walls), instant(min(walls)), instant(max(walls))


@pytest.mark.parametrize("warehouse", ["duckdb", pytest.param("bigquery", marks=pytest.mark.slow)])
def test_two_accounts_in_two_time_zones_materialize_side_by_side(tmp_path, request, warehouse):
    env = {"ESPUTNIK_DUCKDB_PATH": str(tmp_path / "w.duckdb")}
    names = ("shop_ua", "shop_us")
    if warehouse == "bigquery":
        emulator = request.getfixturevalue("bq_emulator")
        env = {"ESPUTNIK_WAREHOUSE": "bigquery", "BIGQUERY_PROJECT": emulator.project,
               "BIGQUERY_EMULATOR_HOST": emulator.host}  # fmt: skip
    defs = build_definitions(_settings(tmp_path, TWO_ACCOUNTS, **env))
    with dg.DagsterInstance.ephemeral() as instance:
        for name in names:
            job = defs.resolve_job_def(f"esputnik_{name}_daily")
            assert job.execute_in_process(partition_key=DAY.isoformat(), instance=instance).success
    sql = {  # the day's activities of each account, and the first and last of them, in ms since 1970
        "duckdb": "SELECT count(*), min(epoch_ms(activityDateTime)), max(epoch_ms(activityDateTime)) FROM {}",
        "bigquery": "SELECT count(*), min(UNIX_MILLIS(activityDateTime)), max(UNIX_MILLIS(activityDateTime)) FROM {}",
    }[warehouse]
    # daily_sales of D in each account's metric schema, over its own orders: every order is kept or canceled
    sales_sql = "SELECT orders + canceled_orders FROM {} WHERE date = DATE '2026-11-20'"
    held, sales = {}, {}
    if warehouse == "duckdb":  # one file holds both accounts' schemas
        with duckdb.connect(env["ESPUTNIK_DUCKDB_PATH"], read_only=True) as con:
            schemas = {s for (s,) in con.execute("SELECT DISTINCT schema_name FROM duckdb_tables()").fetchall()}
            for name in names:
                held[name] = con.execute(sql.format(f'esputnik_{name}."contactActivities"')).fetchone()
                [sales[name]] = con.execute(sales_sql.format(f"esputnik_{name}_metrics.daily_sales")).fetchone()
    else:
        client = emulator.client()
        schemas = {d.dataset_id for d in client.list_datasets()}
        for name in names:
            [row] = client.query(sql.format(f"`{emulator.project}.esputnik_{name}.contactActivities`")).result()
            held[name] = tuple(row.values())
            [row] = client.query(sales_sql.format(f"`{emulator.project}.esputnik_{name}_metrics.daily_sales`")).result()
            [sales[name]] = row.values()
    assert {"esputnik_shop_ua", "esputnik_shop_ua_metrics", "esputnik_shop_us", "esputnik_shop_us_metrics"} <= schemas
    # Kyiv's 2026-11-20 is 2026-11-19 22:00 .. 11-20 22:00 UTC, New York's 11-20 05:00 .. 11-21 05:00 UTC: each account
    # holds the demo's 5,000 activities of its own local day, the same wall times 7 hours apart as instants
    assert held["shop_ua"] == _expected_activities(DAY, "Europe/Kyiv")
    assert held["shop_us"] == _expected_activities(DAY, "America/New_York")
    assert held["shop_us"][1] - held["shop_ua"][1] == 7 * 3600 * 1000
    # the demo serves each account the same 120 orders of its local day D; each account's metric counts its own
    assert sales == {name: built_in_demo_account().expected_count("orders", DAY) for name in names}


@pytest.mark.slow
def test_the_cli_materializes_one_accounts_raw_tables_for_its_day(tmp_path):
    path, accounts = tmp_path / "w.duckdb", tmp_path / "accounts.yaml"
    accounts.write_text(TWO_ACCOUNTS)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESPUTNIK_")}
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = clean | {"DAGSTER_HOME": str(home), "ESPUTNIK_ACCOUNTS_FILE": str(accounts),
                   "ESPUTNIK_DUCKDB_PATH": str(path)}  # fmt: skip
    args = ["asset", "materialize", "-m", "esputnik_assets", "--select", "group:esputnik_shop_us", "--partition",
            DAY.isoformat()]  # fmt: skip
    result = subprocess.run([str(BIN / "dagster"), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with duckdb.connect(str(path), read_only=True) as con:
        tables = set(con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall())
        [(activities,)] = con.execute('SELECT count(*) FROM esputnik_shop_us."contactActivities"').fetchall()
    assert tables == {(f"esputnik_shop_us.{d}",) for d in DATASETS}  # that account's raw tables only
    assert activities == _expected_activities(DAY, "America/New_York")[0]


def _doctor(monkeypatch, capsys, account: str | None, **env: str) -> tuple[int, str, str]:
    """`esputnik-assets doctor [--account NAME]` in-process with exactly `env`: exit code, output, errors."""
    from esputnik_assets.cli import doctor

    for name in list(os.environ):
        if name.startswith(("ESPUTNIK_", "BIGQUERY_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = doctor(os.environ, account)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_doctor_checks_every_account_in_its_own_block_or_the_one_asked(tmp_path, monkeypatch, capsys):
    from esputnik_assets.demo import DemoServer

    with DemoServer(built_in_demo_account(), api_key="right-key") as server:
        accounts = tmp_path / "accounts.yaml"
        accounts.write_text(
            "accounts:\n"
            "  - {name: shop_ua, demo: true, timezone: Europe/Kyiv}\n"
            f"  - {{name: shop_pl, api_key_env: KEY_SHOP_PL, api_url: '{server.url}', timezone: Europe/Warsaw,\n"
            "     max_requests_per_second: 0}\n"
        )
        env = {"ESPUTNIK_ACCOUNTS_FILE": str(accounts), "ESPUTNIK_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
               "KEY_SHOP_PL": "wrong-key"}  # fmt: skip
        code, out, _ = _doctor(monkeypatch, capsys, None, **env)
        assert code == 1  # shop_pl's key is refused
        blocks = out.split("== account ")[1:]
        assert [b.split(" ", 1)[0] for b in blocks] == ["shop_ua", "shop_pl"]
        assert "Ready: nothing blocks the export." in blocks[0]
        assert "schemas esputnik_shop_pl, esputnik_shop_pl_metrics" in blocks[1]
        assert "check KEY_SHOP_PL (api_key_env of account shop_pl)" in blocks[1] and "wrong-key" not in out

        code, out, _ = _doctor(monkeypatch, capsys, "shop_ua", **env)
        assert code == 0 and out.count("== account ") == 1 and "== account shop_ua (Europe/Kyiv" in out
        code, _, err = _doctor(monkeypatch, capsys, "shop_xx", **env)
        assert code == 2 and "No account 'shop_xx' (accounts: shop_ua, shop_pl)" in err


def test_each_accounts_alerts_name_it_and_carry_only_its_checks_and_runs():
    from esputnik_assets.checks.alerts import AlertWebhook, build_alert_sensor
    from esputnik_assets.keys import AccountNames
    from esputnik_assets_tests.test_alerts import Receiver, tick

    @dg.op
    def broken() -> None:
        raise RuntimeError("the read broke")

    @dg.job
    def failing() -> None:
        broken()

    receiver = Receiver()
    try:
        with dg.instance_for_test() as instance:
            keys = {}
            for name in ("shop_ua", "shop_us"):
                names = AccountNames(name)
                keys[name] = [dg.AssetCheckKey(names.raw("orders"), "volume")]
                instance.report_runless_asset_event(dg.AssetCheckEvaluation(
                    asset_key=names.raw("orders"), check_name="volume", passed=False, description=f"{name} shrank"))
                failing.execute_in_process(instance=instance, tags=names.run_tags, raise_on_error=False)
            sensor = build_alert_sensor(keys["shop_ua"], AccountNames("shop_ua"))
            assert sensor.name == "esputnik_shop_ua_alerts"
            tick(sensor, instance, None, alert_webhook_shop_ua=AlertWebhook(url=receiver.url))
        texts = [post["text"] for post in receiver.posts]
        assert len(texts) == 2
        assert texts[0].startswith(":red_circle: [shop_ua] ") and texts[1].startswith(":x: [shop_ua] Run")
        assert "shop_ua shrank" in texts[0] and "shop_us" not in "".join(texts)
    finally:
        receiver.close()


def test_the_quick_start_runs_each_accounts_daily_job_and_the_ui_command_names_the_file(tmp_path, monkeypatch, capsys):
    from esputnik_assets.quickstart import main as quick_start

    for name in list(os.environ):
        if name.startswith(("ESPUTNIK_", "BIGQUERY_")):
            monkeypatch.delenv(name)
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(TWO_ACCOUNTS)
    monkeypatch.setenv("ESPUTNIK_ACCOUNTS_FILE", "accounts.yaml")  # relative: the printed command makes it absolute
    monkeypatch.setenv("DAGSTER_HOME", "")
    monkeypatch.chdir(tmp_path)
    assert quick_start(["--day", DAY.isoformat()]) == 0
    out = capsys.readouterr().out
    for name in ("shop_ua", "shop_us"):
        assert f"for 2026-11-20 (job esputnik_{name}_daily) into data/warehouse.duckdb:esputnik_{name}:" in out
        assert f"rows  data/warehouse.duckdb:esputnik_{name}_metrics.daily_sales" in out
    assert f"&& ESPUTNIK_ACCOUNTS_FILE={accounts} " in out


def test_dagster_loads_the_code_location_of_a_good_file_and_refuses_a_bad_one_naming_account_and_field(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESPUTNIK_")}
    home = tmp_path / "dagster_home"
    home.mkdir()
    accounts = tmp_path / "accounts.yaml"
    results = {}
    for label, text in (("good", TWO_ACCOUNTS), ("bad", TWO_ACCOUNTS.replace("America/New_York", "America/Nowhere"))):
        accounts.write_text(text)
        env = clean | {"DAGSTER_HOME": str(home), "ESPUTNIK_ACCOUNTS_FILE": str(accounts)}
        results[label] = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "esputnik_assets"],
                                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert results["good"].returncode == 0, results["good"].stderr[-3000:]
    assert results["bad"].returncode != 0
    said = results["bad"].stdout + results["bad"].stderr
    assert "account 'shop_us': field 'timezone': 'America/Nowhere' is not an IANA time zone" in said
