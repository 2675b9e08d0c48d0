"""`esputnik-assets doctor` and the `esputnik_doctor` job: every answer an operator can meet, and its exit code."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from esputnik_assets.cli import doctor
from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.definitions import build_definitions
from esputnik_assets.demo import DemoAccount, DemoServer, FaultPlan
from esputnik_assets.doctor import DOCTOR_JOB, SCRATCH_PREFIX
from esputnik_assets.settings import Settings

BIN = Path(sys.executable).parent
SECRET = "s3cret-key-never-printed"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_doctor(monkeypatch, capsys, **env: str) -> tuple[int, dict[str, str], str]:
    """The command in-process, with exactly `env` for ESPUTNIK_*/BIGQUERY_*: its exit code, lines by item, output."""
    for name in list(os.environ):
        if name.startswith(("ESPUTNIK_", "BIGQUERY_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = doctor(os.environ)
    out = capsys.readouterr().out
    lines = {}
    for line in out.splitlines():
        if line.startswith("["):
            item = line[7:].split(":", 1)[0]
            lines[item] = line
    return code, lines, out


def status(line: str) -> str:
    return line[1:5].strip()


@pytest.fixture
def live(account: DemoAccount, tmp_path: Path):
    """Environment for a 'live' account served by a demo server with the given faults (the key is SECRET)."""

    def start(faults: FaultPlan | None = None, **extra: str) -> tuple[DemoServer, dict[str, str]]:
        server = DemoServer(account, api_key=SECRET, faults=faults).start()
        env = {"ESPUTNIK_API_URL": server.url, "ESPUTNIK_API_KEY": SECRET, "ESPUTNIK_MAX_REQUESTS_PER_SECOND": "0",
               "ESPUTNIK_TIMEZONE": "Europe/Kyiv", "ESPUTNIK_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
               **extra}  # fmt: skip
        servers.append(server)
        return server, env

    servers: list[DemoServer] = []
    yield start
    for server in servers:
        server.stop()


def test_the_demo_account_is_all_green_from_the_console_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESPUTNIK_", "BIGQUERY_"))}
    result = subprocess.run(
        [str(BIN / "esputnik-assets"), "doctor"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "Ready: nothing blocks the export."
    assert all(line.startswith("[ ok ]") for line in lines[:-1]), result.stdout
    items = [line[7:].split(":", 1)[0] for line in lines[:-1]]
    warehouse = ["warehouse connection", "warehouse create schema", "warehouse write", "warehouse read",
                 "warehouse tables"]  # fmt: skip
    assert items == ["settings", "key", *(f"dataset {name}" for name in DATASET_NAMES), "time zone",
                     "costs per message", *warehouse]  # fmt: skip
    assert "the demo account's example costs" in lines[items.index("costs per message")]
    assert (tmp_path / "data" / "warehouse.duckdb").exists()  # where the export writes by default
    import duckdb

    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        left = con.execute(f"SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, '{SCRATCH_PREFIX}')")
        assert left.fetchall() == []  # the scratch table was dropped


def test_an_endpoint_the_account_does_not_have_is_named_with_what_to_do(live, monkeypatch, capsys):
    server, env = live(FaultPlan(disabled_paths=frozenset({"/v1/orders"})))
    env.pop("ESPUTNIK_TIMEZONE")
    code, lines, out = run_doctor(monkeypatch, capsys, **env)
    assert code == 1
    for dataset in ("orders", "orderItems"):
        line = lines[f"dataset {dataset}"]
        assert status(line) == "FAIL" and "GET /v1/orders: no such endpoint (404)" in line
        assert f"endpoint_paths, or remove {dataset} from ESPUTNIK_DATASETS" in line
    others = set(DATASET_NAMES) - {"orders", "orderItems"}
    assert all(status(lines[f"dataset {name}"]) == "ok" for name in others)
    assert status(lines["key"]) == "ok" and status(lines["warehouse read"]) == "ok"
    assert status(lines["time zone"]) == "warn" and "set ESPUTNIK_TIMEZONE" in lines["time zone"]  # UTC by default
    assert out.splitlines()[-1].startswith("Blocked: 2 item(s) stop the export (dataset orderItems, dataset orders)")
    assert SECRET not in out


def test_an_account_without_the_activity_export_is_told_to_ask_support(live, monkeypatch, capsys):
    _, env = live(FaultPlan(activity_enabled=False))
    code, lines, _ = run_doctor(monkeypatch, capsys, **env)
    line = lines["dataset contactActivities"]
    assert code == 1 and status(line) == "FAIL" and "not enabled on the account" in line
    assert "ask eSputnik support to enable the contact activity export" in line


def test_a_wrong_key_fails_once_and_skips_the_endpoints(live, monkeypatch, capsys):
    _, env = live()
    code, lines, out = run_doctor(monkeypatch, capsys, **env | {"ESPUTNIK_API_KEY": "wrong-" + SECRET})
    assert code == 1
    assert status(lines["key"]) == "FAIL" and "rejected the API key (401)" in lines["key"]
    assert "check ESPUTNIK_API_KEY" in lines["key"]
    assert all(status(lines[f"dataset {name}"]) == "skip" for name in DATASET_NAMES)
    assert "not checked: the key check failed (wrong key (401))" in lines["dataset contacts"]
    assert status(lines["warehouse read"]) == "ok"  # the warehouse is still checked
    assert SECRET not in out


def test_rate_limits_warn_but_do_not_block(live, monkeypatch, capsys):
    _, env = live(FaultPlan(rate_429=1.0, retry_after=0.05), ESPUTNIK_DATASETS="contacts,events")
    started = time.monotonic()
    code, lines, out = run_doctor(monkeypatch, capsys, **env)
    assert time.monotonic() - started < 30  # a small retry budget: the preflight answers at once
    assert code == 0, out
    assert status(lines["key"]) == "warn" and "429" in lines["key"]
    for name in ("contacts", "events"):
        assert status(lines[f"dataset {name}"]) == "warn" and "rate-limited (429)" in lines[f"dataset {name}"]
    assert status(lines["costs per message"]) == "warn"  # a live account without costs: the third warning
    assert out.splitlines()[-1] == "Ready: nothing blocks the export (4 warning(s) above)."


def test_a_live_account_without_costs_is_warned_which_variables_set_them(live, monkeypatch, capsys):
    """No ESPUTNIK_COST_PER_MESSAGE_<MEDIA> on a live account: a warning that names every variable, not a failure;
    with one set, the line says what it costs and that the other media cost 0."""
    _, env = live(ESPUTNIK_DATASETS="contacts")
    code, lines, out = run_doctor(monkeypatch, capsys, **env)
    line = lines["costs per message"]
    assert code == 0 and status(line) == "warn" and "campaign_roi's cost is 0 and its roi null on every row" in line
    variables = [f"ESPUTNIK_COST_PER_MESSAGE_{media}" for media in
                 ("EMAIL", "SMS", "VIBER", "MOBILEPUSH", "WEBPUSH", "APPINBOX", "WIDGET", "INAPP", "TELEGRAM")]
    assert all(variable in line for variable in variables), line
    code, lines, _ = run_doctor(monkeypatch, capsys, **env, ESPUTNIK_COST_PER_MESSAGE_SMS="0.045")
    line = lines["costs per message"]
    assert code == 0 and status(line) == "ok" and "Sms 0.045; any other mediaType costs 0 in campaign_roi" in line


def test_an_unreachable_api_is_named_in_one_line_without_retry_noise(live, monkeypatch, capsys):
    _, env = live()
    port = closed_port()
    env["ESPUTNIK_API_URL"] = f"http://127.0.0.1:{port}/api"
    monkeypatch.setattr("sys.stderr", sys.stdout)  # the client's retry lines would land before the report
    code, lines, out = run_doctor(monkeypatch, capsys, **env)
    assert code == 1
    line = lines["key"]
    assert status(line) == "FAIL" and "ESPUTNIK_API_URL" in line
    assert f"cannot be reached: 127.0.0.1:{port} refused the connection (nothing listens there); 2 attempt(s)" in line
    for noise in ("HTTPConnectionPool", "Max retries", "Caused by", "NewConnectionError", "maxrows", "retry"):
        assert noise not in out, out
    assert out.splitlines()[0].startswith("[ ok ] settings")  # nothing before the report
    assert status(lines["dataset contacts"]) == "skip"


def test_a_host_that_does_not_resolve_and_a_failed_tls_handshake_are_told_apart(live, monkeypatch, capsys):
    server, env = live(ESPUTNIK_DATASETS="contacts")
    _, lines, _ = run_doctor(monkeypatch, capsys, **env | {"ESPUTNIK_API_URL": "http://esputnik-api.invalid/api"})
    assert "the host name esputnik-api.invalid does not resolve (DNS)" in lines["key"]
    tls = server.url.replace("http://", "https://")  # the demo server speaks plain HTTP
    _, lines, _ = run_doctor(monkeypatch, capsys, **env | {"ESPUTNIK_API_URL": tls})
    port = tls.split(":")[2].split("/")[0]
    assert f"the TLS handshake with 127.0.0.1:{port} failed" in lines["key"], lines["key"]


CAPTIVE_PORTAL = f"<!DOCTYPE html><html><head><title>Sign in to Wi-Fi</title></head><body>key {SECRET}</body></html>"


def html_env(server, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A live account's environment pointing at a scripted server."""
    return {"ESPUTNIK_API_URL": server.url, "ESPUTNIK_API_KEY": SECRET, "ESPUTNIK_TIMEZONE": "Europe/Kyiv",
            "ESPUTNIK_MAX_REQUESTS_PER_SECOND": "0", "ESPUTNIK_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
            **extra}  # fmt: skip


def test_a_web_page_answered_with_200_is_not_ready(monkeypatch, capsys, tmp_path):
    from esputnik_assets_tests.scripted_server import Reply, ScriptedServer

    with ScriptedServer(lambda seen: Reply(200, CAPTIVE_PORTAL, {"Content-Type": "text/html"})) as server:
        code, lines, out = run_doctor(monkeypatch, capsys, **html_env(server, tmp_path))
    assert code == 1 and out.splitlines()[-1].startswith("Blocked")
    line = lines["key"]
    assert status(line) == "FAIL" and "answered GET /v1/contacts with 200, but not with the API's JSON" in line
    assert "the answer starts with '<!DOCTYPE html><html><head><title>Sign in to Wi-Fi" in line
    assert "check ESPUTNIK_API_URL" in line and status(lines["dataset orders"]) == "skip"
    assert SECRET not in out


def test_one_endpoint_answering_a_web_page_blocks_its_datasets(monkeypatch, capsys, tmp_path):
    from esputnik_assets_tests.scripted_server import Reply, ScriptedServer

    def script(seen) -> Reply:
        return Reply(200, "<html>" + SECRET + "</html>") if seen.path == "/api/v1/orders" else Reply(200, [])

    with ScriptedServer(script) as server:
        env = html_env(server, tmp_path, ESPUTNIK_DATASETS="contacts,orders")
        code, lines, out = run_doctor(monkeypatch, capsys, **env)
    assert code == 1 and status(lines["key"]) == "ok" and status(lines["dataset contacts"]) == "ok"
    line = lines["dataset orders"]
    assert status(line) == "FAIL" and "GET /v1/orders: answered 200, but not with the API's JSON" in line
    assert "the answer starts with '<html>***</html>'" in line and "endpoint_paths for 'orders'" in line
    assert SECRET not in out


def test_demo_tables_in_the_duckdb_file_are_named_for_a_live_account(live, monkeypatch, capsys, tmp_path):
    from esputnik_assets.contracts import load_contracts
    from esputnik_assets.specs import DATASETS
    from esputnik_assets.warehouse.duckdb import DuckDBWarehouse

    _, env = live(ESPUTNIK_DATASETS="contacts,orders")
    warehouse = DuckDBWarehouse(env["ESPUTNIK_DUCKDB_PATH"], "esputnik")
    for name, source in (("orders", "demo"), ("contacts", "live")):
        warehouse.ensure_table(DATASETS[name], load_contracts()[name])
        warehouse.record_source(name, source)
    code, lines, out = run_doctor(monkeypatch, capsys, **env)
    line = lines["warehouse tables"]
    assert code == 0 and status(line) == "warn", out
    assert f"{env['ESPUTNIK_DUCKDB_PATH']}:esputnik holds tables of the demo account: orders (demo);" in line
    assert "ESPUTNIK_DUCKDB_PATH" in line.split("->")[1] and "drop these tables" in line


def test_a_url_that_is_not_the_api_is_named(live, monkeypatch, capsys):
    server, env = live()
    code, lines, _ = run_doctor(monkeypatch, capsys, **env | {"ESPUTNIK_API_URL": server.url.removesuffix("/api")})
    assert code == 1
    assert status(lines["key"]) == "FAIL" and "has no /v1/contacts (404)" in lines["key"]
    assert "check ESPUTNIK_API_URL: https://esputnik.com/api" in lines["key"]


def test_a_variable_the_definitions_would_refuse_blocks_and_is_named(monkeypatch, capsys, tmp_path):
    """`ESPUTNIK_ATTRIBUTION_WINDOW_HOURS=soon esputnik-assets doctor` said Ready while the definitions failed."""
    env = {"ESPUTNIK_ATTRIBUTION_WINDOW_HOURS": "soon", "ESPUTNIK_CHECK_MAX_DAY_DROP": "2",
           "ESPUTNIK_ALERT_WEBHOOK_URL": "not-a-url-" + SECRET, "ESPUTNIK_DUCKDB_PATH": str(tmp_path / "w.duckdb")}  # fmt: skip
    code, lines, out = run_doctor(monkeypatch, capsys, **env)
    assert code == 1 and out.splitlines()[-1].startswith("Blocked: 3 item(s)")
    line = lines["setting ESPUTNIK_ATTRIBUTION_WINDOW_HOURS"]
    assert status(line) == "FAIL" and "ESPUTNIK_ATTRIBUTION_WINDOW_HOURS='soon' is not a whole number" in line
    assert status(lines["setting ESPUTNIK_CHECK_MAX_DAY_DROP"]) == "FAIL"
    assert status(lines["setting ESPUTNIK_ALERT_WEBHOOK_URL"]) == "FAIL" and SECRET not in out


def test_a_duckdb_file_that_cannot_be_created_blocks(monkeypatch, capsys, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the warehouse folder should be")
    code, lines, _ = run_doctor(monkeypatch, capsys, ESPUTNIK_DUCKDB_PATH=str(blocker / "warehouse.duckdb"))
    assert code == 1
    line = lines["warehouse connection"]
    assert status(line) == "FAIL" and "set ESPUTNIK_DUCKDB_PATH to a file in a folder this user can write" in line
    assert [status(lines[i]) for i in ("warehouse create schema", "warehouse write", "warehouse read")] == ["skip"] * 3
    assert status(lines["dataset contacts"]) == "ok"


def test_an_unreachable_bigquery_blocks(monkeypatch, capsys):
    env = {"ESPUTNIK_DEMO": "true", "ESPUTNIK_WAREHOUSE": "bigquery", "BIGQUERY_PROJECT": "p",
           "BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{closed_port()}", "ESPUTNIK_DATASETS": "contacts"}  # fmt: skip
    code, lines, _ = run_doctor(monkeypatch, capsys, **env)
    assert code == 1
    line = lines["warehouse connection"]
    assert status(line) == "FAIL" and "check the network to BigQuery (or BIGQUERY_EMULATOR_HOST)" in line
    assert status(lines["warehouse load"]) == status(lines["warehouse query"]) == "skip"


def test_bigquery_is_all_green_and_left_clean(bq_emulator, monkeypatch, capsys):
    env = {"ESPUTNIK_DEMO": "true", "ESPUTNIK_WAREHOUSE": "bigquery", "BIGQUERY_PROJECT": bq_emulator.project,
           "BIGQUERY_EMULATOR_HOST": bq_emulator.host, "ESPUTNIK_DATASET": "doctor_check",
           "ESPUTNIK_DATASETS": "contacts"}  # fmt: skip
    code, lines, out = run_doctor(monkeypatch, capsys, **env)
    assert code == 0, out
    assert [status(lines[i]) for i in ("warehouse connection", "warehouse load", "warehouse query")] == ["ok"] * 3
    from esputnik_assets.warehouse.bigquery_resource import EsputnikBigQueryResource

    resource = EsputnikBigQueryResource(project=bq_emulator.project, emulator_host=bq_emulator.host)
    with resource.get_client() as client:
        assert [t.table_id for t in client.list_tables(f"{bq_emulator.project}.doctor_check")] == []


def _doctor_job_run(tmp_path: Path, duckdb_path: Path) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    settings = Settings.from_environ({"ESPUTNIK_DATASETS": "contacts,orders", "ESPUTNIK_DUCKDB_PATH": str(duckdb_path)})
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def(DOCTOR_JOB).execute_in_process(instance=instance, raise_on_error=False)
    return result, [entry.user_message for entry in instance.all_logs(result.run_id)]


def test_the_doctor_job_logs_each_line_in_the_ui_and_passes(tmp_path):
    result, messages = _doctor_job_run(tmp_path, tmp_path / "w.duckdb")
    assert result.success
    assert any(m.startswith("[ ok ] dataset orders: GET /v1/orders works") for m in messages)
    assert any(m.startswith("[ ok ] warehouse read:") for m in messages)
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    report = output.event_specific_data.metadata["report"].value
    assert "| ok | dataset contacts |" in report and report.endswith("Ready: nothing blocks the export.")


def test_the_doctor_job_fails_when_something_blocks(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result, messages = _doctor_job_run(tmp_path, blocker / "w.duckdb")
    assert not result.success
    assert any(m.startswith("[FAIL] warehouse connection:") for m in messages)
    assert result.dagster_run.tags["dagster/max_retries"] == "0"  # the home's run retries do not repeat it
    [failure] = result.get_step_failure_events()
    assert "Blocked: 1 item(s) stop the export (warehouse connection)" in failure.event_specific_data.error.message


def test_forbidden_endpoints_and_failing_servers_are_told_apart(monkeypatch, capsys, tmp_path):
    from esputnik_assets_tests.scripted_server import Reply, ScriptedServer

    def script(seen) -> Reply:
        if seen.path == "/api/v1/devices":
            return Reply(403, "Forbidden")
        if seen.path == "/api/v1/events":
            return Reply(503, "Service Unavailable", {"Retry-After": "0"})
        return Reply(200, [])

    with ScriptedServer(script) as server:
        env = {"ESPUTNIK_API_URL": server.url, "ESPUTNIK_API_KEY": SECRET, "ESPUTNIK_TIMEZONE": "Europe/Kyiv",
               "ESPUTNIK_MAX_REQUESTS_PER_SECOND": "0", "ESPUTNIK_DATASETS": "contacts,devices,events",
               "ESPUTNIK_DUCKDB_PATH": str(tmp_path / "w.duckdb")}  # fmt: skip
        code, lines, out = run_doctor(monkeypatch, capsys, **env)
        events_requests = sum(seen.path == "/api/v1/events" for seen in server.seen)
    assert code == 1
    assert status(lines["dataset contacts"]) == "ok"
    assert status(lines["dataset devices"]) == "FAIL" and "forbidden (403)" in lines["dataset devices"]
    assert "give the API key read access" in lines["dataset devices"]
    assert status(lines["dataset events"]) == "FAIL" and "server error (5xx)" in lines["dataset events"]
    assert events_requests == 2  # the probe's small budget: one retry, not the export's six attempts
    assert SECRET not in out


def test_a_pending_wait_is_reported_not_slept_in(live, monkeypatch, capsys, tmp_path):
    """Item 5: a hold-off another process stored for the account (a 429's Retry-After) is reported with its end and
    reason at once; before, the doctor sat silent in the pacer until it ended."""
    import tempfile

    from esputnik_assets.source.pacing import RatePacer

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's pacing files only
    server, env = live(ESPUTNIK_MAX_REQUESTS_PER_SECOND="5", ESPUTNIK_DATASETS="contacts")
    RatePacer(5, server.url.rstrip("/")).hold_off(60, "contacts: GET /v1/contacts answered 429 asking for 60s")
    started = time.monotonic()
    code, lines, out = run_doctor(monkeypatch, capsys, **env)
    assert time.monotonic() - started < 15, out
    assert code == 0 and status(lines["key"]) == "warn", out
    assert "asked to wait until 20" in lines["key"] and "(contacts: GET /v1/contacts answered 429 asking for 60s)" in lines["key"]
    assert status(lines["dataset contacts"]) == "skip"
