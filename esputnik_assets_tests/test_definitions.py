"""The whole Definitions object, as Dagster loads it, from placeholder environments; and the CLI a user types."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from esputnik_assets.contracts import DATASET_NAMES, load_contracts
from esputnik_assets.definitions import build_definitions
from esputnik_assets.schedules import RANGE_END_TAG, RANGE_START_TAG, daily_range
from esputnik_assets.settings import Settings
from esputnik_assets.specs import DATASETS, WriteMode
from esputnik_assets_tests.conftest import built_in_demo_account
from esputnik_assets_tests.services import free_port, graphql

FACT_DATASETS = {name for name, spec in DATASETS.items() if spec.write_mode is WriteMode.REPLACE_DAYS}

PLACEHOLDERS = {
    "ESPUTNIK_API_KEY": "placeholder-key",
    "ESPUTNIK_API_URL": "https://esputnik.example/api",
    "ESPUTNIK_TIMEZONE": "Europe/Kyiv",
    "ESPUTNIK_START_DATE": "2025-06-01",
    "ESPUTNIK_DUCKDB_PATH": "/tmp/placeholder.duckdb",
}
BIN = Path(sys.executable).parent


def test_definitions_load_with_placeholder_env():
    defs = build_definitions(Settings.from_environ(PLACEHOLDERS))
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs() if spec.group_name != "esputnik_metrics"}
    assert set(specs) == {dg.AssetKey(["esputnik", name]) for name in DATASET_NAMES}
    for key, spec in specs.items():
        assert spec.group_name == "esputnik"
        assert spec.description and "Source: GET /v" in spec.description
        schema = spec.metadata["dagster/column_schema"]
        assert len(schema.columns) > 0 and all(c.description for c in schema.columns)
        partitions = spec.partitions_def
        assert isinstance(partitions, dg.DailyPartitionsDefinition) and partitions.timezone == "Europe/Kyiv"
        assert partitions.start == datetime(2025, 6, 1, tzinfo=ZoneInfo("Europe/Kyiv"))
    schedule = defs.resolve_schedule_def("esputnik_daily_schedule")
    assert schedule.execution_timezone == "Europe/Kyiv"
    assert defs.resolve_job_def("esputnik_daily")


def test_the_api_key_stays_an_env_var_in_config():
    resource = build_definitions(Settings.from_environ(PLACEHOLDERS)).resources["esputnik"]
    assert isinstance(resource.api_key, dg.EnvVar) and resource.api_key.env_var_name == "ESPUTNIK_API_KEY"
    assert build_definitions(Settings.from_environ({})).resources["esputnik"].api_key is None  # no key and no URL: the demo account


def test_a_subset_of_datasets_builds_only_their_sources():
    defs = build_definitions(Settings.from_environ({"ESPUTNIK_DATASETS": "orderItems, contacts"}))
    keys = {spec.key.path[-1] for spec in defs.resolve_all_asset_specs() if spec.group_name == "esputnik"}
    assert keys == {"orderItems", "contacts"}


def test_the_partitions_time_zone_is_the_only_one():
    """Settings' zone builds the partitions; the schedule, freshness and metrics take the same value, and the raw
    read, its days and its checks take the partitions' zone: no resource keeps a zone of its own that could drift."""
    from esputnik_assets.source.resource import EsputnikResource
    from esputnik_assets.warehouse.io_manager import WarehouseIOManager

    defs = build_definitions(Settings.from_environ(PLACEHOLDERS))
    zones = {spec.partitions_def.timezone for spec in defs.resolve_all_asset_specs()}
    zones |= {defs.resolve_schedule_def("esputnik_daily_schedule").execution_timezone}
    zones |= {defs.resources["metrics_warehouse"].timezone}
    assert zones == {"Europe/Kyiv"}
    assert "timezone" not in EsputnikResource.model_fields and "timezone" not in WarehouseIOManager.model_fields


def test_the_schedule_asks_for_yesterday_and_a_lookback_in_the_accounts_time_zone():
    # 00:30 in Kyiv on the 25th is still the 24th in UTC: the account's day decides
    now = datetime(2026, 11, 25, 0, 30, tzinfo=ZoneInfo("Europe/Kyiv"))
    assert daily_range(now, "Europe/Kyiv", 3, date(2026, 1, 1)) == (date(2026, 11, 21), date(2026, 11, 24))
    assert daily_range(now, "Europe/Kyiv", 3, date(2026, 11, 23)) == (date(2026, 11, 23), date(2026, 11, 24))
    assert daily_range(now, "Europe/Kyiv", 3, date(2026, 11, 25)) is None

    defs = build_definitions(Settings.from_environ(PLACEHOLDERS | {"ESPUTNIK_LOOKBACK_DAYS": "2"}))
    schedule = defs.resolve_schedule_def("esputnik_daily_schedule")
    with dg.build_schedule_context(scheduled_execution_time=now) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-11-22", "2026-11-24")


def _cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESPUTNIK_")}
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [str(BIN / "dagster"), *args], cwd=tmp_path, env=clean | {"DAGSTER_HOME": str(home)} | env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_dagster_definitions_validate_is_clean(tmp_path):
    result = _cli(["definitions", "validate", "-m", "esputnik_assets"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


@pytest.mark.slow
def test_the_cli_materializes_the_nine_tables_for_a_day(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    args = ["asset", "materialize", "-m", "esputnik_assets", "--select", "group:esputnik", "--partition", "2026-11-20"]
    result = _cli(args, tmp_path, ESPUTNIK_DUCKDB_PATH=str(path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BetaWarning" not in result.stderr + result.stdout  # Dagster's beta notices, in every step's process
    assert "dg dev" not in result.stderr
    assert "Executing steps using multiprocess executor" in result.stderr  # nine steps: forked, not in process
    with duckdb.connect(str(path), read_only=True) as con:
        tables = dict(con.execute(
            "SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'esputnik'"
        ).fetchall())  # fmt: skip
        assert set(tables) == set(DATASET_NAMES)
        held = {name: con.execute(f'SELECT count(*) FROM esputnik."{name}"').fetchone()[0] for name in DATASET_NAMES}
    account, day = built_in_demo_account(), date(2026, 11, 20)
    assert held == {name: account.expected_count(name, day if name in FACT_DATASETS else None) for name in DATASET_NAMES}


def _answers(url: str) -> bool:
    """Whether the webserver at `url` answers GraphQL yet."""
    try:
        return bool(graphql(url, "{ version }", timeout=30))
    except OSError:
        return False


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """`esputnik-assets dev` (dagster dev on the project's home) in a fresh folder, once for the module: its URL and
    its output."""
    import time

    folder = tmp_path_factory.mktemp("dev")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPUTNIK_") and k != "DAGSTER_HOME"}
    env["ESPUTNIK_DUCKDB_PATH"] = str(folder / "w.duckdb")  # the home is the project-local one, made in the folder
    output = folder / "dev.log"
    with open(output, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "esputnik_assets.cli", "dev", "-m", "esputnik_assets", "-h", "127.0.0.1",
             "-p", str(port)], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 240
            while not _answers(url):  # "Serving dagster-webserver" is logged before the socket listens
                assert server.poll() is None and time.monotonic() < deadline, output.read_text()[-3000:]
                time.sleep(0.5)
            yield url, output
        finally:
            server.terminate()
            server.wait(timeout=60)


def test_the_ui_shows_the_nine_assets_with_descriptions_and_column_schemas(dev_server):
    """What `esputnik-assets dev` serves: the webserver's own GraphQL answer for the asset graph."""
    import json
    import time
    import urllib.request

    url, _ = dev_server
    query = (
        "{ assetNodes { assetKey { path } groupName description "
        "metadataEntries { label ... on TableSchemaMetadataEntry { schema { columns { name description } } } } } }"
    )
    deadline = time.monotonic() + 120
    while True:  # the webserver serves before its code location has loaded
        request = urllib.request.Request(
            f"{url}/graphql", json.dumps({"query": query}).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            nodes = json.load(answer)["data"]["assetNodes"]
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    by_name = {node["assetKey"]["path"][-1]: node for node in nodes if node["assetKey"]["path"][0] == "esputnik"}
    assert set(by_name) == set(DATASET_NAMES)
    for name, node in by_name.items():
        assert node["groupName"] == "esputnik" and node["description"]
        [schema] = [m["schema"] for m in node["metadataEntries"] if m["label"] == "dagster/column_schema"]
        assert [c["name"] for c in schema["columns"]] == load_contracts()[name].column_names


def test_esputnik_assets_dev_starts_without_hints_a_user_cannot_act_on(dev_server):
    """No `dg dev` hint and no beta notice from the code, once it has served the asset graph."""
    text = dev_server[1].read_text()
    assert "dg dev" not in text and "Warning" not in text, text[-3000:]


def test_bigquery_environment_maps_to_the_bigquery_io_manager_with_secret_credentials():
    from esputnik_assets.warehouse.io_manager import BigQueryIOManager

    env = PLACEHOLDERS | {
        "ESPUTNIK_WAREHOUSE": "bigquery",
        "BIGQUERY_PROJECT": "my-project",
        "BIGQUERY_LOCATION": "EU",
        "ESPUTNIK_DATASET": "marketing",
        "BIGQUERY_CREDENTIALS_BASE64": "c2VjcmV0LWtleQ==",
    }
    io_manager = build_definitions(Settings.from_environ(env)).resources["warehouse_io_manager"]
    assert isinstance(io_manager, BigQueryIOManager)
    assert (io_manager.bigquery.project, io_manager.bigquery.location, io_manager.dataset) == ("my-project", "EU", "marketing")
    assert isinstance(io_manager.bigquery.gcp_credentials, dg.EnvVar)
    assert "c2VjcmV0LWtleQ==" not in repr(io_manager)


def test_the_sandbox_command_serves_the_demo_account_on_its_own():
    import requests

    server = subprocess.Popen(
        [str(BIN / "esputnik-sandbox"), "--port", "0", "--contacts", "50"], stdout=subprocess.PIPE, text=True
    )
    try:
        url = server.stdout.readline().strip().rsplit(" ", 1)[-1]
        answer = requests.get(f"{url}/v1/contacts", params={"maxrows": 500}, auth=("", "demo-key"), timeout=10)
        assert answer.status_code == 200 and len(answer.json()) == 50
        assert requests.get(f"{url}/v1/contacts", auth=("", "wrong"), timeout=10).status_code == 401
    finally:
        server.terminate()
        assert server.wait(timeout=30) is not None


def test_assets_show_their_warehouse_owners_and_a_code_version_that_follows_the_contract():
    bigquery = {"ESPUTNIK_WAREHOUSE": "bigquery", "BIGQUERY_PROJECT": "p", "ESPUTNIK_API_KEY": "k"}
    for env, warehouse in (({}, "duckdb"), (bigquery, "bigquery")):
        specs = build_definitions(Settings.from_environ({**env, "ESPUTNIK_OWNERS": "team:marketing-data"})).resolve_all_asset_specs()
        raw = [s for s in specs if s.group_name == "esputnik"]
        assert all({"polars", warehouse} <= s.kinds and s.owners == ["team:marketing-data"] for s in raw)
    from esputnik_assets.assets import raw as raw_module
    from esputnik_assets.specs import DATASETS

    before = raw_module.code_version(DATASETS["orders"])
    assert before == raw_module.code_version(DATASETS["orders"]) != raw_module.code_version(DATASETS["events"])
    changed = DATASETS["orders"].__class__(**{**DATASETS["orders"].__dict__, "key": ("orderId", "contactId")})
    assert raw_module.code_version(changed) != before
