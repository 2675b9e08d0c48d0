"""The UI as a new operator meets it: the quick start, then `esputnik-assets dev` (webserver and daemon) in the
same folder, a backfill launched through the launcher's own GraphQL mutation, and the pages seen in a browser.

One server for the module (it takes about half a minute to start). Screenshots are kept in
`esputnik_assets_tests/artifacts/` (ignored by git).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.doctor import DOCTOR_JOB
from esputnik_assets.home import LOCAL_HOME
from esputnik_assets.specs import DATASETS, WriteMode
from esputnik_assets_tests.conftest import built_in_demo_account

pytestmark = pytest.mark.slow  # minutes: the quick start, a dev server, a backfill through the daemon, a browser
BIN = Path(sys.executable).parent
ARTIFACTS = Path(__file__).parent / "artifacts"
TODAY = datetime.now(timezone.utc).date()  # the demo environment's zone is UTC
BACKFILL_DAYS = [(TODAY - timedelta(days=n)).isoformat() for n in (10, 9, 8)]
LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on PartitionKeysNotFoundError { message }
  }
}"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs { runId status } }
  }
}"""
LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""
RUN_STATUS = """
query Run($id: ID!) {
  runOrError(runId: $id) {
    ... on Run { status eventConnection { events { ... on MessageEvent { message } } } }
  }
}"""
MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!, $days: [String!]) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: $days) {
        partition runId metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DevServer:
    url: str
    folder: Path
    quick_start_day: str

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            reply = json.load(answer)
        assert "errors" not in reply, reply["errors"]
        return reply["data"]


def _clean_env() -> dict[str, str]:
    """This machine's environment minus anything that would pick an account, a warehouse or a Dagster home."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("ESPUTNIK_", "BIGQUERY_")) and k != "DAGSTER_HOME"
    }


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to dagster dev's own process group (webserver, daemon, code server), as a terminal's Ctrl-C would."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        raise AssertionError("dagster dev ignored SIGTERM for 90 s and was killed") from None


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory) -> Iterator[DevServer]:
    """The README's path in a fresh folder: `esputnik-demo-run`, then `esputnik-assets dev`, nothing else set."""
    folder, env = tmp_path_factory.mktemp("operator"), _clean_env()
    quick = subprocess.run(
        [str(BIN / "esputnik-demo-run")], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert quick.returncode == 0, quick.stderr[-3000:]
    port = free_port()
    log = (folder / "dev.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "esputnik-assets"), "dev", "-m", "esputnik_assets", "-h", "127.0.0.1", "-p", str(port)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    server = DevServer(f"http://127.0.0.1:{port}", folder, (TODAY - timedelta(days=1)).isoformat())
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                server.graphql("{ version }")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(f"dagster dev did not come up:\n{(folder / 'dev.log').read_text()[-3000:]}")
                time.sleep(0.5)
        server.graphql("mutation { setNuxSeen }")  # what the UI's "Skip" on its first-visit dialog does
        yield server
    finally:
        _stop(process)
        log.close()


def test_the_quick_starts_run_is_in_the_ui_history(dev_server):
    assert (dev_server.folder / LOCAL_HOME / "dagster.yaml").exists()
    runs = dev_server.graphql("{ runsOrError { ... on Runs { results { status tags { key value } } } } }")
    partitions = [
        {t["key"]: t["value"] for t in run["tags"]}.get("dagster/partition")
        for run in runs["runsOrError"]["results"]
        if run["status"] == "SUCCESS"
    ]
    assert dev_server.quick_start_day in partitions


def test_a_backfill_launched_like_the_ui_materializes_every_day(dev_server):
    selection = [{"path": ["esputnik", name]} for name in DATASET_NAMES]
    launched = dev_server.graphql(LAUNCH_BACKFILL, {"backfillParams": {
        "partitionNames": BACKFILL_DAYS, "assetSelection": selection, "fromFailure": False, "tags": [],
    }})["launchPartitionBackfill"]  # fmt: skip
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + 600
    while True:
        backfill = dev_server.graphql(BACKFILL_STATUS, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        assert time.monotonic() < deadline, f"backfill still {backfill['status']} after 10 minutes"
        time.sleep(2)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    run_ids = {run["runId"] for run in backfill["runs"]}
    assert run_ids and all(run["status"] == "SUCCESS" for run in backfill["runs"])

    figures: dict[str, dict[str, dict[str, int]]] = {}
    for name in DATASET_NAMES:
        asset = dev_server.graphql(MATERIALIZATIONS, {"key": {"path": ["esputnik", name]}, "days": BACKFILL_DAYS})
        materialized = asset["assetOrError"]["assetMaterializations"]
        assert sorted(m["partition"] for m in materialized) == BACKFILL_DAYS, name
        assert {m["runId"] for m in materialized} <= run_ids, name
        figures[name] = {
            m["partition"]: {e["label"]: e["intValue"] for e in m["metadataEntries"] if "intValue" in e}
            for m in materialized
        }

    with duckdb.connect(str(dev_server.folder / "data" / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        for name in DATASET_NAMES:
            spec = DATASETS[name]
            if spec.write_mode is WriteMode.REPLACE_DAYS:
                column = f'"{spec.partition_column}"'
                days = con.execute(
                    f'SELECT DISTINCT CAST({column} AS DATE) FROM esputnik."{name}" WHERE CAST({column} AS DATE) '
                    "BETWEEN ? AND ?", [date.fromisoformat(BACKFILL_DAYS[0]), date.fromisoformat(BACKFILL_DAYS[-1])]
                ).fetchall()  # fmt: skip
                assert sorted(d.isoformat() for (d,) in days) == BACKFILL_DAYS, name
                held = dict(con.execute(
                    f'SELECT CAST({column} AS DATE), count(*) FROM esputnik."{name}" GROUP BY 1'
                ).fetchall())  # fmt: skip
                for day, entries in figures[name].items():  # each partition says its own day's rows, not the run's
                    assert entries["rows_written"] == entries["dagster/partition_row_count"], (name, day)
                    assert entries["rows_written"] == held[date.fromisoformat(day)], (name, day)
            else:  # the quick start's account: the built-in demo account, every entity once
                held = con.execute(f'SELECT count(*) FROM esputnik."{name}"').fetchone()[0]
                assert held == built_in_demo_account().expected_count(name), name


def test_the_doctor_job_runs_from_the_ui(dev_server):
    launched = dev_server.graphql(LAUNCH_RUN, {"params": {"selector": {
        "repositoryLocationName": "esputnik_assets", "repositoryName": "__repository__", "jobName": DOCTOR_JOB,
    }}})["launchRun"]  # fmt: skip
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id, deadline = launched["run"]["runId"], time.monotonic() + 300
    while (run := dev_server.graphql(RUN_STATUS, {"id": run_id})["runOrError"])["status"] not in ("SUCCESS", "FAILURE"):
        assert time.monotonic() < deadline, f"doctor run still {run['status']} after 5 minutes"
        time.sleep(1)
    messages = [e["message"] for e in run["eventConnection"]["events"] if e.get("message")]
    assert run["status"] == "SUCCESS", messages[-5:]
    assert any(m.startswith("[ ok ] key: accepted by the built-in demo account") for m in messages)
    assert any(m.startswith("[ ok ] warehouse read:") for m in messages)


def _browser() -> str | None:
    names = ("chromium", "chromium-browser", "google-chrome")
    return next((found for name in names if (found := shutil.which(name))), None)


def _render(browser: str, url: str, screenshot: Path, height: int = 1200) -> str:
    """The page after its scripts and data loaded: a PNG at `screenshot`, and the DOM it rendered (the lineage graph
    renders only the nodes in view: a tall window shows a whole group)."""
    flags = ["--headless=new", "--disable-gpu", "--hide-scrollbars", f"--window-size=1600,{height}",
             "--virtual-time-budget=12000"] + (["--no-sandbox"] if os.geteuid() == 0 else [])  # fmt: skip
    screenshot.unlink(missing_ok=True)
    page = subprocess.run(
        [browser, *flags, f"--screenshot={screenshot}", "--dump-dom", url], capture_output=True, text=True, timeout=180
    )
    assert page.returncode == 0 and screenshot.exists(), page.stderr[-2000:]
    return page.stdout


def _assert_not_blank(png: Path) -> None:
    """A real page: a sizeable PNG with many colours, none of them covering nearly everything."""
    from PIL import Image

    assert png.stat().st_size > 20_000, f"{png} is only {png.stat().st_size} bytes"
    with Image.open(png) as image:
        pixels = image.width * image.height
        colours = image.convert("RGB").getcolors(maxcolors=pixels)
    assert len(colours) > 100, f"{png} has {len(colours)} colours"
    assert max(count for count, _ in colours) < 0.95 * pixels, f"{png} is nearly one colour"


@pytest.mark.skipif(_browser() is None, reason="no chromium installed (apt-get install chromium)")
def test_the_lineage_and_an_asset_page_render_in_a_browser(dev_server):
    browser = _browser()
    ARTIFACTS.mkdir(exist_ok=True)
    lineage = _render(browser, f"{dev_server.url}/asset-groups", ARTIFACTS / "lineage.png")
    for group in ("esputnik", "esputnik_metrics"):  # the global graph shows both groups (collapsed to one node each)
        assert f">{group}<" in lineage, f"group {group} not on the lineage page"
    groups = f"{dev_server.url}/locations/esputnik_assets/asset-groups"
    raw = _render(browser, f"{groups}/esputnik", ARTIFACTS / "lineage-raw.png", height=4000)
    for name in DATASET_NAMES:
        assert name in raw, f"{name} not on the raw group's lineage page"
    metrics = _render(browser, f"{groups}/esputnik_metrics", ARTIFACTS / "lineage-metrics.png", height=4000)
    for name in ("campaign_performance", "daily_sales", "campaign_roi", "churn_risk", "customer_journeys"):
        assert name in metrics, f"{name} not on the metric group's lineage page"
    asset = _render(browser, f"{dev_server.url}/assets/esputnik/contactActivities", ARTIFACTS / "asset.png")
    expected = ("contactActivities", "Latest materialization", "Checks", "Columns", "activityStatus", "esputnik_daily")
    for text in expected:
        assert text in asset, f"{text!r} not on the asset page"
    for png in ("lineage.png", "lineage-raw.png", "lineage-metrics.png", "asset.png"):
        _assert_not_blank(ARTIFACTS / png)
    print(f"\nscreenshots: {ARTIFACTS}")
