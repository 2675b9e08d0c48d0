"""The UI as a new operator meets it: the quick start, then `esputnik-assets dev` (webserver and daemon) in the
same folder, backfills clicked through the launcher for the raw and the metric group, a failed check as the Checks
tab shows it, the metric assets' KPI metadata drawn as Plots, and the pages seen in a browser.

One server for the module (it takes about half a minute to start) and one browser (headless chromium driven over
the DevTools protocol, `browser.py`). Screenshots are kept in `esputnik_assets_tests/artifacts/` (ignored by git).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from esputnik_assets.keys import RAW_GROUP
from esputnik_assets.keys import raw_asset_key as raw_key
from esputnik_assets.checks.raw import HISTORY_DAYS
from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.doctor import DOCTOR_JOB
from esputnik_assets.home import LOCAL_HOME
from esputnik_assets.metrics.assets import GROUP as METRICS_GROUP
from esputnik_assets.metrics.assets import metric_key
from esputnik_assets.metrics.dashboard import DASHBOARD
from esputnik_assets.metrics.wiring import ALL_METRICS
from esputnik_assets.specs import DATASETS, WriteMode
from esputnik_assets_tests.browser import Page, find_browser, open_page
from esputnik_assets_tests.services import clean_env, free_port, graphql

pytestmark = pytest.mark.slow  # minutes: the quick start, a dev server, a backfill through the daemon, a browser
BIN = Path(sys.executable).parent
ARTIFACTS = Path(__file__).parent / "artifacts"
TODAY = datetime.now(timezone.utc).date()  # the demo environment's zone is UTC
LAUNCHER_DAYS = [(TODAY - timedelta(days=n)).isoformat() for n in (6, 5)]
BROKEN_DAY = LAUNCHER_DAYS[-1]  # the demo account serves it with delivery collapsed: kpi_delivery_rate fails on it
GROUP_KEYS = {
    RAW_GROUP: [raw_key(name).path for name in DATASET_NAMES],
    METRICS_GROUP: [*(metric_key(metric.table.name).path for metric in ALL_METRICS), metric_key(DASHBOARD).path],
}
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status partitionNames assetSelection { path } runs { runId status } }
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


needs_browser = pytest.mark.skipif(find_browser() is None, reason="no chromium installed (apt-get install chromium)")


@dataclass
class DevServer:
    url: str
    folder: Path
    quick_start_day: str

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.url, query, variables, timeout=60)


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
    """The README's path in a fresh folder: `esputnik-demo-run`, then `esputnik-assets dev` with one demo day served
    broken (README, "See them fail"), nothing else set."""
    folder, env = tmp_path_factory.mktemp("operator"), clean_env()
    started = datetime.now(timezone.utc).date()
    quick = subprocess.run(
        [str(BIN / "esputnik-demo-run")], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert quick.returncode == 0, quick.stderr[-3000:]
    # The day it says it materialized: yesterday, as of its start or (past midnight UTC meanwhile) of its end.
    quick_start_day = re.search(r"Materialized .* for (\d{4}-\d{2}-\d{2}) \(job", quick.stdout)[1]
    ended = datetime.now(timezone.utc).date()
    assert quick_start_day in {(started - timedelta(days=1)).isoformat(), (ended - timedelta(days=1)).isoformat()}
    env["ESPUTNIK_DEMO_BROKEN_DAYS"] = f"{BROKEN_DAY}=collapsed_delivery"
    port = free_port()
    log = (folder / "dev.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "esputnik-assets"), "dev", "-m", "esputnik_assets", "-h", "127.0.0.1", "-p", str(port)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    server = DevServer(f"http://127.0.0.1:{port}", folder, quick_start_day)
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


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    """One headless chromium tab for the module's browser tests."""
    browser = find_browser()
    if browser is None:
        pytest.skip("no chromium installed (apt-get install chromium)")
    with open_page(browser, ARTIFACTS) as tab:
        yield tab


def test_the_quick_starts_run_is_in_the_ui_history(dev_server):
    assert (dev_server.folder / LOCAL_HOME / "dagster.yaml").exists()
    runs = dev_server.graphql("{ runsOrError { ... on Runs { results { status tags { key value } } } } }")
    partitions = [
        {t["key"]: t["value"] for t in run["tags"]}.get("dagster/partition")
        for run in runs["runsOrError"]["results"]
        if run["status"] == "SUCCESS"
    ]
    assert dev_server.quick_start_day in partitions


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


def _assert_not_blank(png: Path) -> None:
    """A real page: a sizeable PNG with many colours, none of them covering nearly everything."""
    from PIL import Image

    assert png.stat().st_size > 20_000, f"{png} is only {png.stat().st_size} bytes"
    with Image.open(png) as image:
        pixels = image.width * image.height
        colours = image.convert("RGB").getcolors(maxcolors=pixels)
    assert len(colours) > 100, f"{png} has {len(colours)} colours"
    assert max(count for count, _ in colours) < 0.95 * pixels, f"{png} is nearly one colour"


def _render(page: Page, url: str, screenshot: Path, expected: tuple[str, ...], height: int = 1200) -> None:
    """The page once every `expected` text shows, as a PNG at `screenshot` (the lineage graph renders only the nodes
    in view: a tall window shows a whole group)."""
    page.resize(1600, height)
    page.goto(url)
    for text in expected:
        page.wait_for_text(text)
    page.wait_for("!document.body.innerText.includes('Loading')", "every node's figures loaded")
    _assert_not_blank(page.screenshot(screenshot))


@needs_browser
def test_the_lineage_and_an_asset_page_render_in_a_browser(dev_server, page):
    groups = f"{dev_server.url}/locations/esputnik_assets/asset-groups"
    # the global graph shows both groups (collapsed to one node each); each group's page its tables
    _render(page, f"{dev_server.url}/asset-groups", ARTIFACTS / "lineage.png", (RAW_GROUP, METRICS_GROUP))
    _render(page, f"{groups}/{RAW_GROUP}", ARTIFACTS / "lineage-raw.png", DATASET_NAMES, height=4000)
    metrics = tuple(path[-1] for path in GROUP_KEYS[METRICS_GROUP])
    _render(page, f"{groups}/{METRICS_GROUP}", ARTIFACTS / "lineage-metrics.png", metrics, height=4000)
    expected = ("contactActivities", "Latest materialization", "Checks", "Columns", "activityStatus", "esputnik_daily")
    _render(page, f"{dev_server.url}/assets/esputnik/contactActivities", ARTIFACTS / "asset.png", expected)
    page.resize(1600, 1000)
    print(f"\nscreenshots: {ARTIFACTS}")


def _wait_for_backfill(server: DevServer, backfill_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        backfill = server.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
            return backfill
        assert time.monotonic() < deadline, f"backfill {backfill_id} still {backfill['status']} after {timeout:.0f} s"
        time.sleep(2)


def _click_backfill(server: DevServer, page: Page, group: str, days: list[str]) -> str:
    """As a person does it: the group's list, select all, "Materialize selected", the days typed as a range in the
    launcher, "Launch backfill"; the id is read from the link the UI then shows."""
    page.goto(f"{server.url}/locations/esputnik_assets/asset-groups/{group}/list")
    page.wait_for_text(GROUP_KEYS[group][0][-1])
    page.click("label:has(input[type=checkbox])")  # the header's box: every asset of the group
    page.click("button", f"Materialize selected ({len(GROUP_KEYS[group])})…")
    page.wait_for_text(f"Launch runs to materialize {len(GROUP_KEYS[group])} assets")
    page.click("[role=dialog] input[type=text]")  # the partition selection's text field
    page.type(f"[{days[0]}...{days[-1]}]")
    page.press("Enter", "Enter", 13)
    page.wait_for_text(f"{len(days)} partitions")
    page.screenshot(ARTIFACTS / f"launcher-{group}.png")
    links = "[...document.querySelectorAll('a[href*=\"/runs/b/\"]')].map((a) => a.pathname)"
    before = page.evaluate(links)
    page.click("[role=dialog] button", "Launch backfill")
    found = page.wait_for(f"{links}.find((p) => !{json.dumps(before)}.includes(p))", f"the {group} backfill's link")
    return found.rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def clicked_backfills(dev_server, page) -> dict[str, dict]:
    """The raw group's days, then the metric group's, each backfill clicked in the launcher and waited for."""
    backfills = {}
    for group in (RAW_GROUP, METRICS_GROUP):  # the metrics read the raw tables: one group after the other
        backfills[group] = _wait_for_backfill(dev_server, _click_backfill(dev_server, page, group, LAUNCHER_DAYS))
    return backfills


def _materialized(server: DevServer, path: list[str], days: list[str]) -> dict[str, dict]:
    """Each day's materialization of an asset (run id and integer metadata), by partition."""
    found = server.graphql(MATERIALIZATIONS, {"key": {"path": path}, "days": days})["assetOrError"]
    figures = {}
    for m in found["assetMaterializations"]:
        figures[m["partition"]] = {e["label"]: e["intValue"] for e in m["metadataEntries"] if "intValue" in e}
        figures[m["partition"]]["run"] = m["runId"]
    return figures


@needs_browser
def test_backfills_clicked_in_the_launcher_materialize_each_groups_days(dev_server, clicked_backfills):
    for group, backfill in clicked_backfills.items():
        assert backfill["status"] == "COMPLETED_SUCCESS", (group, backfill)
        if group == RAW_GROUP:
            assert sorted(backfill["partitionNames"]) == LAUNCHER_DAYS, group  # the range typed, nothing else
        else:  # a window metric's later days read the typed ones: Dagster's backfill targets them too (through the
            # partition mappings), so the assets' targets differ and the backfill has no single list of days
            assert backfill["partitionNames"] is None, backfill
        assert sorted(a["path"] for a in backfill["assetSelection"]) == sorted(GROUP_KEYS[group]), group
        run_ids = {run["runId"] for run in backfill["runs"]}
        assert run_ids and all(run["status"] == "SUCCESS" for run in backfill["runs"]), group
        for path in GROUP_KEYS[group]:
            materialized = _materialized(dev_server, path, LAUNCHER_DAYS)
            assert sorted(materialized) == LAUNCHER_DAYS, path
            assert {m["run"] for m in materialized.values()} <= run_ids, path

    with duckdb.connect(str(dev_server.folder / "data" / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        for name in DATASET_NAMES:
            spec, figures = DATASETS[name], _materialized(dev_server, raw_key(name).path, LAUNCHER_DAYS)
            if spec.write_mode is WriteMode.REPLACE_DAYS:
                column = f'"{spec.partition_column}"'
                held = dict(con.execute(
                    f'SELECT CAST({column} AS DATE), count(*) FROM esputnik."{name}" GROUP BY 1'
                ).fetchall())  # fmt: skip
                for day, entries in figures.items():  # each partition says its own day's rows, not the run's
                    assert entries["rows_written"] == entries["dagster/partition_row_count"], (name, day)
                    assert entries["rows_written"] == held.get(date.fromisoformat(day)) > 0, (name, day)
            else:
                assert con.execute(f'SELECT count(*) FROM esputnik."{name}"').fetchone()[0] > 0, name


def _delivery_rates(folder: Path) -> dict[date, float]:
    """delivered / (delivered + undelivered) contacts per UTC day, straight from the table (the check's KPI)."""
    with duckdb.connect(str(folder / "data" / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute("""
            SELECT CAST("activityDateTime" AS DATE),
                   count(DISTINCT CASE WHEN "activityStatus" = 'DELIVERED' THEN "contactId" END),
                   count(DISTINCT CASE WHEN "activityStatus" = 'UNDELIVERED' THEN "contactId" END)
            FROM esputnik."contactActivities" GROUP BY 1""").fetchall()
    return {day: sent / (sent + failed) for day, sent, failed in rows if sent + failed}


@needs_browser
def test_a_failed_check_is_red_on_the_checks_tab_with_its_finding(dev_server, clicked_backfills, page):
    rates, broken = _delivery_rates(dev_server.folder), date.fromisoformat(BROKEN_DAY)
    history = [rates[d] for d in (broken - timedelta(days=n) for n in range(1, HISTORY_DAYS + 1)) if d in rates]
    finding = (
        f"delivery_rate fell more than 30%: {BROKEN_DAY}: {rates[broken]:.4g} "
        f"against a trailing {HISTORY_DAYS}-day mean of {sum(history) / len(history):.4g}"
    )
    page.goto(f"{dev_server.url}/assets/esputnik/contactActivities?view=checks")
    page.click("span", "kpi_delivery_rate")  # the check's row in the tab's list
    page.wait_for_text(finding)
    failed_tag_colour = page.wait_for(
        """(() => { const tag = [...document.querySelectorAll('.BaseTag')].find((t) => t.innerText.trim() === 'Failed');
          const icon = tag && tag.querySelector('[role=img]');
          return icon && getComputedStyle(icon).backgroundColor; })()""", "the evaluation's Failed tag")
    red, green, blue = (int(v) for v in failed_tag_colour[failed_tag_colour.index("(") + 1 : -1].split(",")[:3])
    assert red > 2 * green and red > 2 * blue, f"the Failed tag is {failed_tag_colour}, not red"
    assert "This is a non-blocking asset check." in page.text()
    _assert_not_blank(page.screenshot(ARTIFACTS / "failed-check.png"))


# ---- the KPI trends on the asset page's Plots view ----------------------------------------------------------------

PLOTTED_KPIS = {  # a few of the figures kpis.py reports for the demo account, each drawn as a trend over the days
    "channel_engagement": ("kpi/Email/open_rate", "kpi/Email/delivery_rate", "kpi/Email/delivered"),
    "daily_sales": ("kpi/orders", "kpi/revenue", "kpi/attributed_share"),
}
NUMERIC_MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations {
        partition timestamp
        metadataEntries {
          label ... on IntMetadataEntry { intValue } ... on FloatMetadataEntry { floatValue }
        }
      }
    }
  }
}"""
# Each chart of the metadata's Plots view, by its title: the canvas's size and, for each point the chart holds, its
# partition, its value and whether the series' colour is inked on the canvas around the point's place. The chart is
# Chart.js drawing on a canvas: its instance is found through the React component that owns the canvas.
PLOTTED_SERIES = """(() => {
  const chartOf = (canvas) => {
    for (let f = canvas[Object.keys(canvas).find((k) => k.startsWith('__reactFiber$'))]; f; f = f.return)
      for (let hook = f.memoizedState; hook && typeof hook === 'object' && 'next' in hook; hook = hook.next)
        if (hook.memoizedState && hook.memoizedState.current && hook.memoizedState.current.getDatasetMeta)
          return hook.memoizedState.current;
    return null;
  };
  const series = {};
  for (const canvas of document.querySelectorAll('canvas')) {
    let cell = canvas;  // the plot's cell in the grid of plots: its title and its canvas
    while (cell.parentElement && cell.parentElement.style.display !== 'grid') cell = cell.parentElement;
    const chart = chartOf(canvas);
    if (!chart || !canvas.width || !canvas.height) continue;
    const dataset = chart.data.datasets[0], scale = chart.currentDevicePixelRatio;
    const colour = dataset.borderColor.match(/[0-9.]+/g).slice(0, 3).map(Number);
    const ink = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const inked = (x, y) => {
      for (let dx = -4; dx <= 4; dx++) for (let dy = -4; dy <= 4; dy++) {
        const at = 4 * (Math.round(scale * y + dy) * canvas.width + Math.round(scale * x + dx));
        if (ink[at + 3] > 200 && colour.every((c, i) => Math.abs(ink[at + i] - c) < 24)) return true;
      }
      return false;
    };
    series[cell.innerText.trim()] = {
      size: [canvas.width, canvas.height],
      points: chart.getDatasetMeta(0).data.flatMap((point, i) => point.skip ? [] :
        [[chart.data.labels[i], dataset.data[i].y, inked(point.x, point.y)]]),
    };
  }
  return series;
})()"""


def _kpi_history(server: DevServer, path: list[str]) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The asset's materialized partitions, and each numeric `kpi/...` figure by partition from each partition's
    latest materialization."""
    found = server.graphql(NUMERIC_MATERIALIZATIONS, {"key": {"path": path}})["assetOrError"]
    latest: dict[str, dict] = {}
    for m in sorted(found["assetMaterializations"], key=lambda m: float(m["timestamp"])):
        latest[m["partition"]] = m
    history: dict[str, dict[str, float]] = {}
    for partition, m in latest.items():
        for entry in m["metadataEntries"]:
            value = entry.get("floatValue", entry.get("intValue"))
            if entry["label"].startswith("kpi/") and value is not None:
                history.setdefault(entry["label"], {})[partition] = value
    return sorted(latest), history


def _page_errors(events: list[dict], origin: str) -> list[dict]:
    """Exceptions, console errors and failed loads of the page; a failed load off this machine (the UI's telemetry
    script from dagster.io, unreachable here) is not the page's error."""
    return [
        e for e in events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
            and (e["params"]["entry"]["source"] != "network" or e["params"]["entry"].get("url", "").startswith(origin)))
    ]  # fmt: skip


def _plotted_kpis(server: DevServer, page: Page, table: str, screenshot: Path) -> dict:
    """The asset's page, its metadata shown as Plots (the button a person clicks), once each named figure's chart
    has drawn its points: the charts by title."""
    page.goto(f"{server.url}/assets/{'/'.join(metric_key(table).path)}")
    page.click("button", "Plots")
    named = json.dumps(PLOTTED_KPIS[table])
    plotted = page.wait_for(
        f"(() => {{ const s = {PLOTTED_SERIES}; return {named}.every((t) => s[t] && s[t].points.length"
        f" && s[t].points.every(([, , inked]) => inked)) && s; }})()",
        f"the charts of {table}'s KPIs, each point inked",
    )
    page.evaluate(
        f"[...document.querySelectorAll('div, span')].find((e) => !e.children.length"
        f" && e.textContent.trim() === {json.dumps(PLOTTED_KPIS[table][0])}).scrollIntoView({{block: 'center'}})"
    )
    _assert_not_blank(page.screenshot(screenshot))
    return plotted


@needs_browser
def test_the_plots_view_draws_each_kpi_as_a_trend_over_the_materialized_days(dev_server, clicked_backfills, page):
    for domain in ("Runtime", "Log"):
        page.send(f"{domain}.enable")
    first_event = len(page.events)
    page.resize(1600, 1400)
    for table, figures in PLOTTED_KPIS.items():
        materialized, history = _kpi_history(dev_server, metric_key(table).path)
        assert {dev_server.quick_start_day, *LAUNCHER_DAYS} <= set(materialized), (table, materialized)
        plotted = _plotted_kpis(dev_server, page, table, ARTIFACTS / f"kpi-plots-{table}.png")
        # one chart per figure the materializations carry, titled with its name, and no other kpi chart
        assert sorted(title for title in plotted if title.startswith("kpi/")) == sorted(history), table
        for figure in figures:
            chart = plotted[figure]
            assert chart["size"][0] > 100 and chart["size"][1] > 100, (figure, chart["size"])
            # a point per materialized day (x: the partition), its value the metadata's (each inked: waited for)
            assert {day: value for day, value, _ in chart["points"]} == history[figure], figure
            assert sorted(history[figure]) == materialized, figure
    page.resize(1600, 1000)
    assert _page_errors(page.events[first_event:], dev_server.url) == []
