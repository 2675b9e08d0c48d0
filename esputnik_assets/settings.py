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
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from dagster._core.definitions.utils import is_valid_owner

from esputnik_assets.checks.alerts import WEBHOOK_VARIABLE
from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.metrics.catalog import MEDIA_TYPES, cost_parameter
from esputnik_assets.metrics.resource import METRICS_DATASET
from esputnik_assets.source.resource import DEFAULT_API_URL

API_KEY_VARIABLE = "ESPUTNIK_API_KEY"
ACCOUNTS_FILE_VARIABLE = "ESPUTNIK_ACCOUNTS_FILE"
# What an accounts file replaces: each account of the file has these as fields (the schemas are its name's).
SINGLE_ACCOUNT_VARIABLES = (
    API_KEY_VARIABLE, "ESPUTNIK_API_URL", "ESPUTNIK_TIMEZONE", "ESPUTNIK_DATASETS", "ESPUTNIK_START_DATE",
    "ESPUTNIK_MAX_REQUESTS_PER_SECOND", "ESPUTNIK_DEMO", "ESPUTNIK_DEMO_BROKEN_DAYS", "ESPUTNIK_DATASET",
    "ESPUTNIK_METRICS_DATASET",
)
ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
ACCOUNT_FIELDS = (
    "name", "api_key_env", "api_url", "timezone", "datasets", "start_date", "max_requests_per_second", "demo"
)
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
class AccountSettings:
    """One account of ESPUTNIK_ACCOUNTS_FILE, checked; its tables live in schemas / datasets named after it."""

    name: str
    api_key_env: str | None  # the NAME of the variable holding the key; None for a demo account
    api_url: str = DEFAULT_API_URL
    timezone: str = "UTC"
    datasets: tuple[str, ...] = DATASET_NAMES
    start_date: date = DEFAULT_START_DATE
    max_requests_per_second: float = 1.0
    demo: bool = False

    @property
    def raw_dataset(self) -> str:
        return f"esputnik_{self.name}"

    @property
    def metrics_dataset(self) -> str:
        return f"esputnik_{self.name}_metrics"


@dataclass(frozen=True)
class Settings:
    """The environment, parsed and checked once; defaults are the README's."""

    # the account
    account: str | None = None  # the name of an account of ESPUTNIK_ACCOUNTS_FILE; None: the single account
    api_key_variable: str = API_KEY_VARIABLE  # the NAME of the variable holding the key
    api_key_set: bool = False  # that variable: presence only, the value stays an EnvVar
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
    # the accounts of ESPUTNIK_ACCOUNTS_FILE; empty: the single account of the fields above
    accounts: tuple[AccountSettings, ...] = ()
    accounts_file: str | None = None  # where they were read from, as an absolute path

    def per_account(self) -> tuple[Settings, ...]:
        """One Settings per account, each shaped like the single account's (its own key, zone, days, schemas), so
        every layer builds an account the one way it builds the single account."""
        if not self.accounts:
            return (self,)
        return tuple(
            replace(
                self, account=a.name, api_key_variable=a.api_key_env or API_KEY_VARIABLE,
                api_key_set=a.api_key_env is not None, api_url=a.api_url, demo_account=a.demo, demo_broken_days=(),
                timezone=a.timezone, max_requests_per_second=a.max_requests_per_second, datasets=a.datasets,
                start_date=a.start_date, dataset=a.raw_dataset, metrics_dataset=a.metrics_dataset, accounts=(),
                accounts_file=None,
            )
            for a in self.accounts
        )  # fmt: skip

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Settings:
        """Parse every variable; raise one SettingsError naming each one that is wrong (not only the first)."""
        read = _Reader(env)
        timezone = read.timezone("ESPUTNIK_TIMEZONE", cls.timezone)
        warehouse = read.choice("ESPUTNIK_WAREHOUSE", cls.warehouse, WAREHOUSES)
        accounts = read.accounts_file(ACCOUNTS_FILE_VARIABLE)
        retention = read.number("ESPUTNIK_SNAPSHOT_RETENTION_DAYS", cls.snapshot_retention_days, minimum=1)
        horizon = read.number("ESPUTNIK_CHURN_HORIZON_DAYS", cls.churn_horizon_days, minimum=1)
        if retention <= 2 * horizon:
            read.problem("ESPUTNIK_SNAPSHOT_RETENTION_DAYS", f"ESPUTNIK_SNAPSHOT_RETENTION_DAYS={retention} must "
                         f"exceed 2 x ESPUTNIK_CHURN_HORIZON_DAYS ({horizon}): churn_risk trains on the "
                         "contact_segments snapshot of that many days ago")  # fmt: skip
        demo_account = read.demo_account(warehouse) if not accounts else False
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
            accounts=accounts,
            accounts_file=str(Path(read.text(ACCOUNTS_FILE_VARIABLE, "")).resolve()) if accounts else None,
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

    def accounts_file(self, name: str) -> tuple[AccountSettings, ...]:
        """The accounts of the YAML file `name` points at; each problem names the file, the account and the field."""
        path = self.text(name, "")
        if not path:
            return ()
        both = [v for v in SINGLE_ACCOUNT_VARIABLES if self.is_set(v)]
        if both:
            self.problem(name, f"{name} is set, and so are {', '.join(both)}: the accounts file replaces the "
                         "single-account variables (each account has them as fields); unset one side")  # fmt: skip
        try:
            document = yaml.load(Path(path).read_text(), Loader=_AccountsLoader)
        except (OSError, yaml.YAMLError) as exc:
            self.problem(name, f"{name}={path!r} cannot be read as YAML: {type(exc).__name__}: {exc}")
            return ()
        where = f"{name}={path!r}"
        entries = document.get("accounts") if isinstance(document, dict) else None
        if not isinstance(entries, list) or not entries or set(document) != {"accounts"}:
            self.problem(name, f"{where}: the file holds one key, `accounts`, a list of one or more accounts")
            return ()
        accounts: list[AccountSettings] = []
        for index, entry in enumerate(entries, start=1):
            account = _AccountReader(self, where, index, entry).parse()
            if account is None:
                continue
            if account.name in {a.name for a in accounts}:
                self.problem(name, f"{where}: account {account.name!r}: field 'name': a second account has this name")
                continue
            accounts.append(account)
        return tuple(accounts)

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


class _AccountsLoader(yaml.SafeLoader):
    """YAML as `safe_load` reads it, except that a date stays text: a bad one is then named with its account."""


_AccountsLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


class _AccountReader:
    """Checks one account of the accounts file; every problem is a line naming the file, the account and the field."""

    def __init__(self, read: _Reader, where: str, index: int, entry: object) -> None:
        self.read, self.where, self.entry = read, where, entry if isinstance(entry, dict) else {}
        name = self.entry.get("name")
        self.label = f"account {name!r}" if isinstance(name, str) and name else f"account #{index}"
        if not isinstance(entry, dict):
            self.problem("name", f"each account is a mapping of fields ({', '.join(ACCOUNT_FIELDS)}), not {entry!r}")

    def problem(self, field_name: str, message: str) -> None:
        self.read.problem(ACCOUNTS_FILE_VARIABLE, f"{self.where}: {self.label}: field {field_name!r}: {message}")

    def parse(self) -> AccountSettings | None:
        before = len(self.read.problems)
        for unknown in sorted(set(map(str, self.entry)) - set(ACCOUNT_FIELDS)):
            self.problem(unknown, f"unknown field; an account has {', '.join(ACCOUNT_FIELDS)}")
        name = self.entry.get("name")
        if not isinstance(name, str) or not ACCOUNT_NAME.fullmatch(name):
            self.problem("name", f"{name!r}: required, [a-z][a-z0-9_]{{0,39}} (it names the schemas and groups)")
        demo = self.entry.get("demo", False)
        if not isinstance(demo, bool):
            self.problem("demo", f"{demo!r}: use true or false")
        key_variable = self.entry.get("api_key_env")
        if demo is True and (key_variable is not None or "api_url" in self.entry):
            self.problem("api_key_env", "a demo account reads the built-in demo account: it has no key or URL")
        elif demo is not True:
            if not isinstance(key_variable, str) or not key_variable:
                self.problem("api_key_env", "required: the NAME of the variable holding this account's API key")
            elif not self.read.is_set(key_variable):
                self.problem("api_key_env", f"the variable {key_variable} is not set (it holds the key)")
        url = self.entry.get("api_url", DEFAULT_API_URL)
        if not isinstance(url, str) or not _is_http_url(url):
            self.problem("api_url", f"{url!r} is not an http(s) URL with a host")
        timezone = self.entry.get("timezone", "UTC")
        try:
            ZoneInfo(str(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            self.problem("timezone", f"{timezone!r} is not an IANA time zone name (e.g. Europe/Kyiv)")
            timezone = "UTC"
        datasets = self.entry.get("datasets", list(DATASET_NAMES))
        if not isinstance(datasets, list) or not datasets or set(map(str, datasets)) - set(DATASET_NAMES):
            self.problem("datasets", f"{datasets!r}: a list of one or more of {', '.join(DATASET_NAMES)}")
            datasets = list(DATASET_NAMES)
        start = self.entry.get("start_date", DEFAULT_START_DATE)
        if isinstance(start, str) and _is_date(start):
            start = date.fromisoformat(start)
        if not isinstance(start, date) or isinstance(start, datetime):
            self.problem("start_date", f"{start!r} is not a date (YYYY-MM-DD)")
        elif start > datetime.now(ZoneInfo(str(timezone))).date():
            self.problem("start_date", f"{start} is after today in {timezone}: no daily partition exists yet")
        rate = self.entry.get("max_requests_per_second", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate < 0:
            self.problem("max_requests_per_second", f"{rate!r}: a number >= 0")
        if len(self.read.problems) > before:
            return None
        return AccountSettings(
            name=name, api_key_env=None if demo else key_variable, api_url=url, timezone=str(timezone),
            datasets=tuple(d for d in DATASET_NAMES if d in datasets), start_date=start,
            max_requests_per_second=float(rate), demo=demo,
        )  # fmt: skip


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
