"""`Settings.from_environ`, the one reader of the environment: every variable's parse, and an error naming each
variable that is wrong (never quoting a secret)."""

import re
from datetime import date
from pathlib import Path

import pytest

from esputnik_assets.settings import Settings, SettingsError

README = Path(__file__).resolve().parents[1] / "README.md"
SETTINGS_SOURCE = Path(__file__).resolve().parents[1] / "esputnik_assets" / "settings.py"


def test_an_empty_environment_is_the_readmes_defaults_on_the_demo_account():
    assert Settings.from_environ({}) == Settings(demo_account=True)
    assert Settings.from_environ({"ESPUTNIK_TIMEZONE": "  ", "ESPUTNIK_LOOKBACK_DAYS": ""}) == Settings(demo_account=True)


def test_every_variable_is_parsed_into_the_one_object():
    env = {
        "ESPUTNIK_API_KEY": "k", "ESPUTNIK_API_URL": "https://yespo.io/api", "ESPUTNIK_TIMEZONE": "Europe/Kyiv",
        "ESPUTNIK_MAX_REQUESTS_PER_SECOND": "2.5", "ESPUTNIK_MAX_CONCURRENT_REQUESTS": "3",
        "ESPUTNIK_DATASETS": " orders, contacts ", "ESPUTNIK_START_DATE": "2025-06-01", "ESPUTNIK_LOOKBACK_DAYS": "5",
        "ESPUTNIK_FRESHNESS_DEADLINE_HOURS": "9", "ESPUTNIK_OWNERS": "team:data, ann@example.com",
        "ESPUTNIK_WAREHOUSE": "BigQuery", "ESPUTNIK_DUCKDB_PATH": "/tmp/x.duckdb", "ESPUTNIK_DATASET": "marketing",
        "ESPUTNIK_METRICS_DATASET": "kpi", "BIGQUERY_PROJECT": "proj", "BIGQUERY_LOCATION": "EU",
        "BIGQUERY_CREDENTIALS_BASE64": "c2VjcmV0", "BIGQUERY_EMULATOR_HOST": "http://127.0.0.1:9050",
        "ESPUTNIK_COST_PER_MESSAGE_SMS": "0.45", "ESPUTNIK_COST_PER_MESSAGE_INAPP": "0",
        "ESPUTNIK_ATTRIBUTION_WINDOW_HOURS": "48", "ESPUTNIK_SNAPSHOT_RETENTION_DAYS": "90",
        "ESPUTNIK_CHURN_HORIZON_DAYS": "14", "ESPUTNIK_AFFINITY_MIN_PAIR_ORDERS": "3",
        "ESPUTNIK_BROADCAST_WINDOW_DAYS": "10",
        "ESPUTNIK_CHECK_VOLUME_MIN_RATIO": "0.4", "ESPUTNIK_CHECK_MAX_DAY_DROP": "0.6",
        "ESPUTNIK_CHECK_KPI_MAX_DROP": "0.2", "ESPUTNIK_CHECK_DUPLICATE_WARN_SHARE": "0",
        "ESPUTNIK_ALERT_WEBHOOK_URL": "https://hooks.example/x", "ESPUTNIK_UI_URL": "https://dagster.example/",
    }  # fmt: skip
    assert Settings.from_environ(env) == Settings(
        api_key_set=True, api_url="https://yespo.io/api", demo_account=False, timezone="Europe/Kyiv",
        max_requests_per_second=2.5, max_concurrent_requests=3, datasets=("contacts", "orders"),
        start_date=date(2025, 6, 1), lookback_days=5, freshness_deadline_hours=9, owners=("team:data", "ann@example.com"),
        warehouse="bigquery", duckdb_path="/tmp/x.duckdb", dataset="marketing", metrics_dataset="kpi",
        bigquery_project="proj", bigquery_location="EU", bigquery_credentials_set=True,
        bigquery_emulator_host="http://127.0.0.1:9050", cost_per_message={"Sms": 0.45, "In-App": 0.0},
        attribution_window_hours=48, snapshot_retention_days=90, churn_horizon_days=14, affinity_min_pair_orders=3,
        broadcast_window_days=10,
        volume_min_ratio=0.4, max_day_drop=0.6, kpi_max_drop=0.2, duplicate_warn_share=0.0, alert_webhook_set=True,
        ui_url="https://dagster.example",
    )  # fmt: skip
    demo = Settings.from_environ({"ESPUTNIK_DEMO": "yes", "ESPUTNIK_DEMO_BROKEN_DAYS": "2026-11-18=empty, 2026-11-20=unknown_status"})
    assert (demo.demo_account, demo.demo_broken_days) == (True, ("2026-11-18=empty", "2026-11-20=unknown_status"))


@pytest.mark.parametrize(
    ("env", "variable", "shown"),
    [
        ({"ESPUTNIK_TIMEZONE": "Mars/Olympus"}, "ESPUTNIK_TIMEZONE", "'Mars/Olympus' is not an IANA time zone"),
        ({"ESPUTNIK_BROADCAST_WINDOW_DAYS": "0"}, "ESPUTNIK_BROADCAST_WINDOW_DAYS", "'0' must be from 1 to 90"),
        ({"ESPUTNIK_BROADCAST_WINDOW_DAYS": "a week"}, "ESPUTNIK_BROADCAST_WINDOW_DAYS", "'a week' is not a whole"),
        ({"ESPUTNIK_WAREHOUSE": "snowflake"}, "ESPUTNIK_WAREHOUSE", "'snowflake': use one of duckdb, bigquery"),
        ({"ESPUTNIK_DATASETS": "orders,clicks"}, "ESPUTNIK_DATASETS", "names ['clicks']"),
        ({"ESPUTNIK_DATASETS": " , "}, "ESPUTNIK_DATASETS", "names nothing"),
        ({"ESPUTNIK_START_DATE": "yesterday"}, "ESPUTNIK_START_DATE", "'yesterday' is not a date"),
        ({"ESPUTNIK_START_DATE": "2999-01-01"}, "ESPUTNIK_START_DATE", "2999-01-01 is after today"),
        ({"ESPUTNIK_MAX_REQUESTS_PER_SECOND": "-1"}, "ESPUTNIK_MAX_REQUESTS_PER_SECOND", "'-1' must be >= 0"),
        ({"ESPUTNIK_MAX_REQUESTS_PER_SECOND": "inf"}, "ESPUTNIK_MAX_REQUESTS_PER_SECOND", "'inf' must be >= 0"),
        ({"ESPUTNIK_MAX_CONCURRENT_REQUESTS": "0"}, "ESPUTNIK_MAX_CONCURRENT_REQUESTS", "'0' must be >= 1"),
        ({"ESPUTNIK_LOOKBACK_DAYS": "three"}, "ESPUTNIK_LOOKBACK_DAYS", "'three' is not a whole number"),
        ({"ESPUTNIK_FRESHNESS_DEADLINE_HOURS": "24"}, "ESPUTNIK_FRESHNESS_DEADLINE_HOURS", "'24' must be from 0 to 23"),
        ({"ESPUTNIK_OWNERS": "team:data,marketing"}, "ESPUTNIK_OWNERS", "holds 'marketing'"),
        ({"ESPUTNIK_API_KEY": "k", "ESPUTNIK_API_URL": "esputnik.com/api"}, "ESPUTNIK_API_URL", "'esputnik.com/api'"),
        ({"ESPUTNIK_API_URL": "https://esputnik.com/api"}, "ESPUTNIK_API_KEY", "ESPUTNIK_API_KEY is not"),
        ({"ESPUTNIK_DEMO": "false"}, "ESPUTNIK_API_KEY", "No eSputnik account is configured"),
        ({"ESPUTNIK_DEMO": "maybe"}, "ESPUTNIK_DEMO", "'maybe': use true or false"),
        ({"ESPUTNIK_DEMO": "true", "ESPUTNIK_API_KEY": "k"}, "ESPUTNIK_DEMO", "unset one side"),
        ({"ESPUTNIK_DEMO_BROKEN_DAYS": "2026-11-20=gone"}, "ESPUTNIK_DEMO_BROKEN_DAYS", "'2026-11-20=gone'"),
        ({"ESPUTNIK_DEMO_BROKEN_DAYS": "2026-11-20", "ESPUTNIK_API_KEY": "k"}, "ESPUTNIK_DEMO_BROKEN_DAYS",
         "does not read"),
        ({"ESPUTNIK_DATASET": "my-data"}, "ESPUTNIK_DATASET", "'my-data': use letters, digits and underscores"),
        ({"ESPUTNIK_METRICS_DATASET": "kpi.x"}, "ESPUTNIK_METRICS_DATASET", "'kpi.x'"),
        ({"ESPUTNIK_WAREHOUSE": "bigquery", "ESPUTNIK_DEMO": "true"}, "BIGQUERY_PROJECT", "BIGQUERY_PROJECT is not set"),
        ({"ESPUTNIK_COST_PER_MESSAGE_EMAIL": "-1"}, "ESPUTNIK_COST_PER_MESSAGE_EMAIL", "'-1' must be >= 0"),
        ({"ESPUTNIK_COST_PER_MESSAGE_EMIAL": "1"}, "ESPUTNIK_COST_PER_MESSAGE_EMIAL", "names no mediaType"),
        ({"ESPUTNIK_ATTRIBUTION_WINDOW_HOURS": "soon"}, "ESPUTNIK_ATTRIBUTION_WINDOW_HOURS", "'soon' is not a whole"),
        ({"ESPUTNIK_SNAPSHOT_RETENTION_DAYS": "30"}, "ESPUTNIK_SNAPSHOT_RETENTION_DAYS",
         "=30 must exceed 2 x ESPUTNIK_CHURN_HORIZON_DAYS (28)"),
        ({"ESPUTNIK_CHURN_HORIZON_DAYS": "0"}, "ESPUTNIK_CHURN_HORIZON_DAYS", "'0' must be >= 1"),
        ({"ESPUTNIK_AFFINITY_MIN_PAIR_ORDERS": "1.5"}, "ESPUTNIK_AFFINITY_MIN_PAIR_ORDERS", "'1.5' is not a whole"),
        ({"ESPUTNIK_CHECK_VOLUME_MIN_RATIO": "1.5"}, "ESPUTNIK_CHECK_VOLUME_MIN_RATIO", "'1.5' must be from 0.0 to 1.0"),
        ({"ESPUTNIK_CHECK_MAX_DAY_DROP": "nan"}, "ESPUTNIK_CHECK_MAX_DAY_DROP", "'nan' must be from 0.0 to 1.0"),
        ({"ESPUTNIK_CHECK_KPI_MAX_DROP": "-0.1"}, "ESPUTNIK_CHECK_KPI_MAX_DROP", "'-0.1' must be"),
        ({"ESPUTNIK_CHECK_DUPLICATE_WARN_SHARE": "lots"}, "ESPUTNIK_CHECK_DUPLICATE_WARN_SHARE", "'lots' is not a number"),
        ({"ESPUTNIK_UI_URL": "localhost:3000"}, "ESPUTNIK_UI_URL", "'localhost:3000' is not an http(s) URL"),
    ],
)
def test_a_bad_value_is_named_with_its_variable_and_value(env, variable, shown):
    with pytest.raises(SettingsError) as caught:
        Settings.from_environ(env)
    assert [problem.variable for problem in caught.value.problems] == [variable]
    assert variable in str(caught.value) and shown in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ESPUTNIK_ALERT_WEBHOOK_URL", "hooks-s3cret-token"), ("BIGQUERY_CREDENTIALS_BASE64", "s3cret key file!")],
)
def test_a_malformed_secret_is_named_without_its_value(variable, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_environ({variable: value})
    assert [problem.variable for problem in caught.value.problems] == [variable]
    assert "s3cret" not in str(caught.value) and "not shown" in str(caught.value)


def test_every_wrong_variable_is_named_at_once():
    env = {"ESPUTNIK_ATTRIBUTION_WINDOW_HOURS": "soon", "ESPUTNIK_TIMEZONE": "Kyiv", "ESPUTNIK_CHECK_KPI_MAX_DROP": "2"}
    with pytest.raises(SettingsError) as caught:
        Settings.from_environ(env)
    assert sorted(problem.variable for problem in caught.value.problems) == sorted(env)
    assert len(str(caught.value).splitlines()) == 3


def test_every_variable_read_is_in_the_readme():
    read = set(re.findall(r"\b(?:ESPUTNIK|BIGQUERY)_[A-Z0-9_]*[A-Z0-9]", SETTINGS_SOURCE.read_text()))
    readme = README.read_text()
    assert {name for name in read if f"`{name}" not in readme} == set()
    assert {"ESPUTNIK_TIMEZONE", "ESPUTNIK_CHECK_MAX_DAY_DROP", "BIGQUERY_PROJECT"} <= read  # the scan found them
