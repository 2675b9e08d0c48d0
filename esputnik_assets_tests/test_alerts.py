"""Freshness and alerts: a late partition turns red between runs; failed checks, late tables and failed runs reach
a webhook once per incident, never when healthy or unconfigured, and the webhook URL is never printed."""

import json
import threading
import time
from collections import Counter
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from esputnik_assets.checks.alerts import AlertWebhook, build_alert_sensor
from esputnik_assets.checks.freshness import PARTITION_ON_TIME, Freshness, build_freshness_sensor
from esputnik_assets.demo import DemoAccount, DemoServer
from esputnik_assets.keys import raw_asset_key
from esputnik_assets.redaction import secret_forms
from esputnik_assets.warehouse.io_manager import DuckDBIOManager
from esputnik_assets_tests.conftest import TEST_NOW, TIMEZONE, Pipeline

SECRET_PATH = "/hooks/T000/B000/s3cr3t-token"


class Receiver:
    """A loopback webhook that records the JSON it is sent; `fail_first` answers 500 before accepting; `delay` is how
    long it takes to answer a post it took."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.posts: list[dict] = []
        self.fail_first, self.delay = fail_first, delay
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                failing = owner.fail_first > 0
                owner.fail_first -= 1
                if not failing:
                    owner.posts.append(body)
                    time.sleep(owner.delay)
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SECRET_PATH}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def data_check_keys(pipeline: Pipeline) -> list[dg.AssetCheckKey]:
    """The table checks (freshness is tested on its own: these runs backfill days long past)."""
    keys = [key for assets in pipeline.definitions().assets for key in assets.check_keys]
    return [key for key in keys if key.name != PARTITION_ON_TIME]


def tick(sensor: dg.SensorDefinition, instance, cursor: str | None, **resources) -> tuple[str | None, str]:
    """One tick as the daemon evaluates it (the sensor reads its account's webhook from the context's resources)."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    data = sensor.evaluate_tick(context)
    return data.cursor, data.skip_message or ""


def test_a_late_partition_turns_red_between_runs_once_per_change(tmp_path, demo_server, instance):
    pipe = Pipeline(demo_server.url, demo_server.api_key, DuckDBIOManager(path=str(tmp_path / "w.duckdb")))
    assert pipe.run("2026-11-20", selection=["devices"], instance=instance).success
    freshness = Freshness(TIMEZONE, 6, date(2026, 1, 1), clock=lambda: TEST_NOW)
    sensor = build_freshness_sensor([raw_asset_key("devices"), raw_asset_key("orders")], freshness)

    context = dg.build_sensor_context(instance=instance)
    first = sensor(context)
    found = {e.asset_key.path[-1]: e for e in first.asset_events}
    assert found["devices"].passed and found["devices"].check_name == PARTITION_ON_TIME
    assert not found["orders"].passed and "partition 2026-11-20 is late" in found["orders"].description

    again = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert again.asset_events == []  # no change, nothing recorded again

    assert pipe.run("2026-11-20", selection=["orders"], instance=instance).success
    fixed = sensor(dg.build_sensor_context(instance=instance, cursor=again.cursor))
    assert [(e.asset_key.path[-1], e.passed) for e in fixed.asset_events] == [("orders", True)]


def test_failed_checks_and_runs_are_posted_once_per_incident(tmp_path, receiver, instance, capsys):
    account = DemoAccount(contacts=300, activities_per_day=1_500, orders_per_day=40, events_per_day=200, devices=80,
                          broken_days=(("2026-11-18", "empty"),))  # fmt: skip
    webhook = AlertWebhook(url=receiver.url, ui_url="http://ui.example")
    with DemoServer(account) as server:
        pipe = Pipeline(server.url, server.api_key, DuckDBIOManager(path=str(tmp_path / "w.duckdb")),
                        datasets=("orders", "orderItems"))  # fmt: skip
        sensor = build_alert_sensor(data_check_keys(pipe))
        assert pipe.run("2026-11-10", "2026-11-17", instance=instance).success
        cursor, _ = tick(sensor, instance, None, alert_webhook=webhook)
        assert receiver.posts == []  # healthy: nothing to say

        assert not pipe.run("2026-11-18", instance=instance, raise_on_error=False).success
        cursor, said = tick(sensor, instance, cursor, alert_webhook=webhook)
        texts = [post["text"] for post in receiver.posts]
        checks = [t for t in texts if "check `volume` failed" in t]
        runs = [t for t in texts if t.startswith(":x: Run")]
        assert len(checks) == 2 and len(runs) == 1 and len(texts) == 3
        assert "`esputnik/orders` for 2026-11-18" in " ".join(checks) and "http://ui.example/assets/esputnik/orders?view=checks" in " ".join(checks)
        assert '"min_ratio": 0.5' in checks[0]

        cursor, _ = tick(sensor, instance, cursor, alert_webhook=webhook)
        assert len(receiver.posts) == 3  # nothing new: no repeat on a quiet tick

        assert not pipe.run("2026-11-18", instance=instance, raise_on_error=False).success
        cursor, _ = tick(sensor, instance, cursor, alert_webhook=webhook)
        new = [post["text"] for post in receiver.posts[3:]]
        assert len(new) == 1 and new[0].startswith(":x: Run")  # the same open incidents are not posted again

    output = capsys.readouterr()
    for text in (output.out, output.err, cursor or "", said):
        assert SECRET_PATH not in text


def test_a_late_table_is_posted_and_nothing_when_the_url_is_unset(instance, receiver):
    late = build_freshness_sensor([raw_asset_key("orders")], Freshness(TIMEZONE, clock=lambda: TEST_NOW))
    result = late(dg.build_sensor_context(instance=instance))
    for event in result.asset_events:
        instance.report_runless_asset_event(event)

    sensor = build_alert_sensor([dg.AssetCheckKey(raw_asset_key("orders"), PARTITION_ON_TIME)])
    _, said = tick(sensor, instance, None, alert_webhook=AlertWebhook(url=None))
    assert receiver.posts == []
    assert "No webhook is set (ESPUTNIK_ALERT_WEBHOOK_URL)" in said and "1 new incident(s) would have been" in said
    tick(sensor, instance, None, alert_webhook=AlertWebhook(url=receiver.url))
    [post] = receiver.posts
    assert "check `partition_on_time` failed on `esputnik/orders` for 2026-11-20" in post["text"]


def test_a_failing_webhook_is_retried_never_raises_and_never_prints_its_url(instance, capsys):
    flaky = Receiver(fail_first=100)
    try:
        late = build_freshness_sensor([raw_asset_key("orders")], Freshness(TIMEZONE, clock=lambda: TEST_NOW))
        for event in late(dg.build_sensor_context(instance=instance)).asset_events:
            instance.report_runless_asset_event(event)
        webhook = AlertWebhook(url=flaky.url, attempts=2)
        sensor = build_alert_sensor([dg.AssetCheckKey(raw_asset_key("orders"), PARTITION_ON_TIME)])
        cursor, said = tick(sensor, instance, None, alert_webhook=webhook)
        assert flaky.posts == [] and json.loads(cursor)["pending"]  # kept for the next tick
        flaky.fail_first = 0
        cursor, said = tick(sensor, instance, cursor, alert_webhook=webhook)
        assert len(flaky.posts) == 1 and json.loads(cursor)["pending"] == []
        output = capsys.readouterr()
        assert "HTTP 500" in output.err + output.out
        for text in (output.out, output.err, cursor, said):
            assert SECRET_PATH not in text
    finally:
        flaky.close()


def failing_checks(instance, count: int, description: str = "rule broken") -> list[dg.AssetCheckKey]:
    """`count` failed checks on orders, recorded as a check run would record them."""
    keys = [dg.AssetCheckKey(raw_asset_key("orders"), f"rule_{i}") for i in range(count)]
    for key in keys:
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=key.asset_key, check_name=key.name, passed=False, description=description)
        )
    return keys


def test_a_slow_webhook_never_outlasts_the_tick_and_each_incident_arrives_once(instance):
    slow = Receiver(delay=0.7)
    try:
        keys = failing_checks(instance, 7)
        sensor = build_alert_sensor(keys)
        # each post takes 0.7 s and may take 2 s: a tick of 4 s starts no post after 2 s, so three fit in one
        webhook = AlertWebhook(url=slow.url, connect_timeout_seconds=0.5, timeout_seconds=1.5, tick_budget_seconds=4)
        started = time.monotonic()
        cursor, said = tick(sensor, instance, None, alert_webhook=webhook)
        assert time.monotonic() - started < 4.5
        sent = len(slow.posts)
        assert 0 < sent < 7 and f"{sent} alert(s) posted, {7 - sent} waiting" in said  # about three fit
        received = {post["text"] for post in slow.posts}
        assert received.isdisjoint(json.loads(cursor)["pending"])  # what was delivered is no longer pending
        for _ in range(6):
            cursor, said = tick(sensor, instance, cursor, alert_webhook=webhook)
        posted = Counter(post["text"].split("`")[1] for post in slow.posts)
        assert posted == {key.name: 1 for key in keys} and json.loads(cursor)["pending"] == []
    finally:
        slow.close()


def test_a_post_that_gets_no_answer_in_time_is_not_posted_again(instance):
    silent = Receiver(delay=1.5)
    try:
        sensor = build_alert_sensor(failing_checks(instance, 1))
        webhook = AlertWebhook(url=silent.url, timeout_seconds=0.5)
        cursor, _ = tick(sensor, instance, None, alert_webhook=webhook)
        cursor, _ = tick(sensor, instance, cursor, alert_webhook=webhook)
        assert len(silent.posts) == 1 and json.loads(cursor)["pending"] == []
    finally:
        silent.close()


def test_an_alert_quoting_the_api_key_reaches_the_webhook_redacted(instance, receiver):
    """In the daemon no client has sent (and registered) the key: the webhook resource's own copy redacts it."""
    key = "alert-key-7f3a9c"
    forms = secret_forms(key)
    echoed = f"the server echoed {forms[-1]} and {forms[0]}"
    sensor = build_alert_sensor(failing_checks(instance, 1, description=echoed))
    webhook = AlertWebhook(url=receiver.url, account_key=key)
    cursor, _ = tick(sensor, instance, None, alert_webhook=webhook)
    [post] = receiver.posts
    assert "the server echoed *** and ***" in post["text"]
    assert not any(form in post["text"] or form in (cursor or "") for form in forms)
