"""Every environment variable the project reads, parsed and checked once into one typed, frozen `Settings`.

`Settings.from_environ(env)` is the only reader of the environment (entry points pass `os.environ`, tests a dict).
Every problem is collected into one `SettingsError` whose lines name the variable and its value; secrets (the API
key, the BigQuery credentials, the alert webhook URL) are checked for presence and form only, never quoted, and
stay Dagster `EnvVar`s in the resources. The README's variables table is the user's reference for the same names.
"""

from __future__ import annotations

import binascii
import math
import re
from base64 import b64decode
from collections.abc import Mapping, Sequence
from typing import TypeVar
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagster._core.definitions.utils import is_valid_owner

from esputnik_assets.checks.alerts import WEBHOOK_VARIABLE
from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.metrics.catalog import MEDIA_TYPES, cost_parameter
from esputnik_assets.metrics.resource import METRICS_DATASET
from esputnik_assets.source.resource import DEFAULT_API_URL

API_KEY_VARIABLE = "ESPUTNIK_API_KEY"
CREDENTIALS_VARIABLE = "BIGQUERY_CREDENTIALS_BASE64"  # a service-account key, base64-encoded, as dagster-gcp takes it
COST_PREFIX = "ESPUTNIK_COST_PER_MESSAGE_"
WAREHOUSES = ("duckdb", "bigquery")
DEFAULT_START_DATE = date(2026, 1, 1)
MAX_BROADCAST_WINDOW_DAYS = 90  # a send's row reads that many days of activity: beyond, a rerun recomputes too much
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
N = TypeVar("N", int, float)
DATASET_NAME = re.compile(r"[A-Za-z0-9_]{1,1024}")  # what BigQuery allows for a dataset (DuckDB quotes any schema)


def cost_variable(media_type: str) -> str:
    """The variable holding one mediaType's cost per message: the prefix, then In-App -> INAPP, Sms -> SMS."""
    return COST_PREFIX + cost_parameter(media_type).removeprefix("cost_").upper()


@dataclass(frozen=True)
class SettingsProblem:
    """One variable this project cannot use, and why, in a line that names it."""

    variable: str
    message: str


class SettingsError(ValueError):
    """The environment holds values this project cannot use; one line per problem, each naming its variable."""

    def __init__(self, problems: Sequence[SettingsProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(problem.message for problem in self.problems))


@dataclass(frozen=True)
class Settings:
    """The environment, parsed and checked once; defaults are the README's."""

    # the account
    api_key_set: bool = False  # ESPUTNIK_API_KEY: presence only, the value stays an EnvVar
    api_url: str = DEFAULT_API_URL
    demo_account: bool = False
    demo_broken_days: tuple[str, ...] = ()
    timezone: str = "UTC"  # the one source of the partitions' zone, which every step then uses
    max_requests_per_second: float = 1.0
    max_concurrent_requests: int = 1
    # what is exported, and when
    datasets: tuple[str, ...] = DATASET_NAMES
    start_date: date = DEFAULT_START_DATE
    lookback_days: int = 3
    freshness_deadline_hours: int = 6
    owners: tuple[str, ...] = ()
    # the warehouse
    warehouse: str = "duckdb"
    duckdb_path: str = "data/warehouse.duckdb"
    dataset: str = "esputnik"
    metrics_dataset: str = METRICS_DATASET
    bigquery_project: str = ""
    bigquery_location: str | None = None
    bigquery_credentials_set: bool = False  # BIGQUERY_CREDENTIALS_BASE64: presence only
    bigquery_emulator_host: str | None = None
    # the metrics
    cost_per_message: Mapping[str, float] = field(default_factory=dict)  # by mediaType, only those set
    attribution_window_hours: int = 72
    snapshot_retention_days: int = 120
    churn_horizon_days: int = 28
    affinity_min_pair_orders: int = 2
    broadcast_window_days: int = 7
    dashboard_dir: str = ""  # ESPUTNIK_DASHBOARD_DIR; empty: see metrics.wiring.dashboard_directory
    # the checks and alerts
    volume_min_ratio: float = 0.5
    max_day_drop: float = 0.5
    kpi_max_drop: float = 0.3
    duplicate_warn_share: float = 0.1
    alert_webhook_set: bool = False  # ESPUTNIK_ALERT_WEBHOOK_URL: presence only
    ui_url: str = "http://127.0.0.1:3000"

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Settings:
        """Parse every variable; raise one SettingsError naming each one that is wrong (not only the first)."""
        read = _Reader(env)
        timezone = read.timezone("ESPUTNIK_TIMEZONE", cls.timezone)
        warehouse = read.choice("ESPUTNIK_WAREHOUSE", cls.warehouse, WAREHOUSES)
        retention = read.number("ESPUTNIK_SNAPSHOT_RETENTION_DAYS", cls.snapshot_retention_days, minimum=1)
        horizon = read.number("ESPUTNIK_CHURN_HORIZON_DAYS", cls.churn_horizon_days, minimum=1)
        if retention <= 2 * horizon:
            read.problem("ESPUTNIK_SNAPSHOT_RETENTION_DAYS", f"ESPUTNIK_SNAPSHOT_RETENTION_DAYS={retention} must "
                         f"exceed 2 x ESPUTNIK_CHURN_HORIZON_DAYS ({horizon}): churn_risk trains on the "
                         "contact_segments snapshot of that many days ago")  # fmt: skip
        demo_account = read.demo_account(warehouse)
        settings = cls(
            api_key_set=read.is_set(API_KEY_VARIABLE),
            api_url=read.url("ESPUTNIK_API_URL", cls.api_url),
            demo_account=demo_account,
            demo_broken_days=read.broken_days("ESPUTNIK_DEMO_BROKEN_DAYS", demo_account),
            timezone=timezone,
            max_requests_per_second=read.number("ESPUTNIK_MAX_REQUESTS_PER_SECOND", cls.max_requests_per_second, 0.0),
            max_concurrent_requests=read.number("ESPUTNIK_MAX_CONCURRENT_REQUESTS", cls.max_concurrent_requests, 1),
            datasets=read.datasets("ESPUTNIK_DATASETS"),
            start_date=read.start_date("ESPUTNIK_START_DATE", cls.start_date, timezone),
            lookback_days=read.number("ESPUTNIK_LOOKBACK_DAYS", cls.lookback_days, minimum=0),
            freshness_deadline_hours=read.number(
                "ESPUTNIK_FRESHNESS_DEADLINE_HOURS", cls.freshness_deadline_hours, 0, 23, "hours after midnight"
            ),
            owners=read.owners("ESPUTNIK_OWNERS"),
            warehouse=warehouse,
            duckdb_path=read.text("ESPUTNIK_DUCKDB_PATH", cls.duckdb_path),
            dataset=read.dataset_name("ESPUTNIK_DATASET", cls.dataset),
            metrics_dataset=read.dataset_name("ESPUTNIK_METRICS_DATASET", cls.metrics_dataset),
            bigquery_project=read.required("BIGQUERY_PROJECT", warehouse == "bigquery", "the Google Cloud project id"),
            bigquery_location=read.text("BIGQUERY_LOCATION", "") or None,
            bigquery_credentials_set=read.base64_secret(CREDENTIALS_VARIABLE),
            bigquery_emulator_host=read.text("BIGQUERY_EMULATOR_HOST", "") or None,
            cost_per_message=read.costs(),
            attribution_window_hours=read.number("ESPUTNIK_ATTRIBUTION_WINDOW_HOURS", cls.attribution_window_hours, 1),
            snapshot_retention_days=retention,
            churn_horizon_days=horizon,
            affinity_min_pair_orders=read.number("ESPUTNIK_AFFINITY_MIN_PAIR_ORDERS", cls.affinity_min_pair_orders, 1),
            broadcast_window_days=read.number(
                "ESPUTNIK_BROADCAST_WINDOW_DAYS", cls.broadcast_window_days, 1, MAX_BROADCAST_WINDOW_DAYS,
                "days a send is followed from its send day, that day included",
            ),
            dashboard_dir=read.text("ESPUTNIK_DASHBOARD_DIR", cls.dashboard_dir),
            volume_min_ratio=read.share("ESPUTNIK_CHECK_VOLUME_MIN_RATIO", cls.volume_min_ratio),
            max_day_drop=read.share("ESPUTNIK_CHECK_MAX_DAY_DROP", cls.max_day_drop),
            kpi_max_drop=read.share("ESPUTNIK_CHECK_KPI_MAX_DROP", cls.kpi_max_drop),
            duplicate_warn_share=read.share("ESPUTNIK_CHECK_DUPLICATE_WARN_SHARE", cls.duplicate_warn_share),
            alert_webhook_set=read.url_secret(WEBHOOK_VARIABLE),
            ui_url=read.url("ESPUTNIK_UI_URL", cls.ui_url).rstrip("/"),
        )
        if read.problems:
            raise SettingsError(read.problems)
        return settings


class _Reader:
    """Reads variables from one mapping; a bad value is recorded as a problem and its default used, so one pass
    names every wrong variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[SettingsProblem] = []

    def problem(self, variable: str, message: str) -> None:
        self.problems.append(SettingsProblem(variable, message))

    def text(self, name: str, default: str) -> str:
        return (self.env.get(name) or "").strip() or default

    def is_set(self, name: str) -> bool:
        return bool(self.text(name, ""))

    def required(self, name: str, needed: bool, meaning: str) -> str:
        value = self.text(name, "")
        if needed and not value:
            self.problem(name, f"{name} is not set: ESPUTNIK_WAREHOUSE=bigquery needs it ({meaning})")
        return value

    def number(
        self, name: str, default: N, minimum: N | None = None, maximum: N | None = None, meaning: str = ""
    ) -> N:
        """A whole number or a finite decimal, like its default, within bounds."""
        raw = self.text(name, "")
        if not raw:
            return default
        kind = type(default)
        try:
            value = kind(raw)
        except ValueError:
            self.problem(name, f"{name}={raw!r} is not a {'whole number' if kind is int else 'number'}")
            return default
        if not math.isfinite(value) or (minimum is not None and value < minimum) or (
            maximum is not None and value > maximum
        ):
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            self.problem(name, f"{name}={raw!r} must be {bounds}" + (f" ({meaning})" if meaning else ""))
            return default
        return value

    def share(self, name: str, default: float) -> float:
        return self.number(name, default, 0.0, 1.0, "a share")

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            self.problem(name, f"{name}={value!r}: use one of {', '.join(choices)}")
            return default
        return value

    def timezone(self, name: str, default: str) -> str:
        value = self.text(name, default)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(name, f"{name}={value!r} is not an IANA time zone name (e.g. Europe/Kyiv)")
            return default
        return value

    def url(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not _is_http_url(value):
            self.problem(name, f"{name}={value!r} is not an http(s) URL with a host")
            return default
        return value

    def url_secret(self, name: str) -> bool:
        """A secret URL: only whether it is set, and whether it is one (its value is never quoted)."""
        value = self.text(name, "")
        if value and not _is_http_url(value):
            self.problem(name, f"{name} is set but is not an http(s) URL with a host (the value is secret: not shown)")
        return bool(value)

    def base64_secret(self, name: str) -> bool:
        value = self.text(name, "")
        try:
            b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.problem(name, f"{name} is set but is not base64 (encode the key file with `base64 -w0`; the value "
                         "is secret: not shown)")  # fmt: skip
        return bool(value)

    def dataset_name(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not DATASET_NAME.fullmatch(value):
            self.problem(name, f"{name}={value!r}: use letters, digits and underscores (a BigQuery dataset name)")
            return default
        return value

    def datasets(self, name: str) -> tuple[str, ...]:
        raw = self.text(name, ",".join(DATASET_NAMES))
        listed = {d.strip() for d in raw.split(",") if d.strip()}
        unknown = sorted(listed - set(DATASET_NAMES))
        if unknown or not listed:
            self.problem(name, f"{name}={raw!r} names {unknown or 'nothing'}; choose from {', '.join(DATASET_NAMES)}")
            return DATASET_NAMES
        return tuple(d for d in DATASET_NAMES if d in listed)

    def start_date(self, name: str, default: date, timezone: str) -> date:
        raw = self.text(name, default.isoformat())
        try:
            start = date.fromisoformat(raw)
        except ValueError:
            self.problem(name, f"{name}={raw!r} is not a date (YYYY-MM-DD)")
            return default
        today = datetime.now(ZoneInfo(timezone)).date()
        if start > today:
            self.problem(name, f"{name}={start} is after today ({today} in {timezone}): no daily partition exists "
                         "yet, so there is nothing to materialize. Use the first day whose data you want (default "
                         f"{default}).")  # fmt: skip
            return default
        return start

    def owners(self, name: str) -> tuple[str, ...]:
        owners = tuple(o.strip() for o in self.text(name, "").split(",") if o.strip())
        invalid = [o for o in owners if not is_valid_owner(o)]
        if invalid:
            self.problem(name, f"{name} holds {', '.join(map(repr, invalid))}: each owner is an email address or "
                         "team:<name>")  # fmt: skip
            return ()
        return owners

    def costs(self) -> dict[str, float]:
        """ESPUTNIK_COST_PER_MESSAGE_<MEDIA> as {mediaType: cost}, only those set; an unknown <MEDIA> is a typo."""
        by_variable = {cost_variable(media): media for media in MEDIA_TYPES}
        for name in sorted(n for n in self.env if n.startswith(COST_PREFIX) and n not in by_variable):
            self.problem(name, f"{name} names no mediaType: use one of {', '.join(by_variable)}")
        return {media: self.number(name, 0.0, 0.0) for name, media in by_variable.items() if self.is_set(name)}

    def broken_days(self, name: str, demo_account: bool) -> tuple[str, ...]:
        days = tuple(d.strip() for d in self.text(name, "").split(",") if d.strip())
        if not days:
            return ()
        if not demo_account:
            self.problem(name, f"{name} breaks days of the built-in demo account, which this environment does not "
                         "read (set ESPUTNIK_DEMO=true, or unset it)")  # fmt: skip
            return ()
        from esputnik_assets.demo.account import BROKEN_DAY_MODES  # the demo is loaded only when it is configured

        for item in days:
            day, _, mode = item.partition("=")
            if not _is_date(day) or mode not in BROKEN_DAY_MODES:
                self.problem(name, f"{name} holds {item!r}: use YYYY-MM-DD=MODE, MODE one of "
                             f"{', '.join(BROKEN_DAY_MODES)}")  # fmt: skip
                return ()
        return days

    def demo_account(self, warehouse: str) -> bool:
        """The demo account is an explicit choice, implied only for an embedded DuckDB with no account configured."""
        has_key, has_url = self.is_set(API_KEY_VARIABLE), self.is_set("ESPUTNIK_API_URL")
        flag = self.text("ESPUTNIK_DEMO", "").lower()
        if flag not in ("", *TRUE, *FALSE):
            self.problem("ESPUTNIK_DEMO", f"ESPUTNIK_DEMO={flag!r}: use true or false")
            return False
        if flag in TRUE:
            if has_key or has_url:
                self.problem("ESPUTNIK_DEMO", "ESPUTNIK_DEMO=true reads the built-in demo account, but "
                             "ESPUTNIK_API_KEY or ESPUTNIK_API_URL is set too: unset one side so it is clear which "
                             "account the tables come from")  # fmt: skip
            return True
        if has_key:
            return False
        if has_url:
            self.problem(API_KEY_VARIABLE, "ESPUTNIK_API_URL is set but ESPUTNIK_API_KEY is not: set the account's API "
                         "key (the demo account is never used in place of a configured account)")  # fmt: skip
        elif flag in FALSE or warehouse != "duckdb":
            self.problem(API_KEY_VARIABLE, "No eSputnik account is configured: set ESPUTNIK_API_KEY (and "
                         "ESPUTNIK_API_URL if not esputnik.com), or ESPUTNIK_DEMO=true to load the built-in synthetic "
                         "demo account" + (" into BigQuery" if warehouse != "duckdb" else ""))  # fmt: skip
        else:
            return True
        return False


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
