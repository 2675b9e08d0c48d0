"""Preflight for an account and a warehouse: one cheap probe per item, one line each, and what to do about it.

The same checks run from the console (`esputnik-assets doctor`) and as the `esputnik_doctor` job in the UI, both
with the resources that Definitions builds from the environment, so a green doctor means the export's own setup
works. The API key is never printed: lines name the base URL and the paths only.
"""

import contextlib
import enum
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl

from esputnik_assets.contracts import Column, DatasetContract
from esputnik_assets.keys import IO_MANAGER_KEY, SINGLE_ACCOUNT, AccountNames
from esputnik_assets.metrics.catalog import MEDIA_TYPES
from esputnik_assets.redaction import redact
from esputnik_assets.settings import Settings, cost_variable
from esputnik_assets.shaping.errors import AnswerFormatError
from esputnik_assets.shaping.parse import read_page
from esputnik_assets.source.client import EsputnikClient
from esputnik_assets.source.errors import (
    AccountNotConfiguredError,
    ActivityNotEnabledError,
    AuthenticationError,
    BadRequestError,
    EndpointNotFoundError,
    ForbiddenError,
    TransientError,
)
from esputnik_assets.source.resource import EsputnikResource
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.specs import CONTACTS, DATASETS, Paging, SourceSpec
from esputnik_assets.spool import SpooledDataset
from esputnik_assets.warehouse.io_manager import BigQueryIOManager, DuckDBIOManager, WarehouseIOManager
from esputnik_assets.warehouse.sql import bq_quote

DOCTOR_JOB = "esputnik_doctor"
SCRATCH_PREFIX = "_esputnik_doctor_"
SCRATCH_COLUMN = Column("doctor", "n", "int", False, None, (), "The BigQuery probe's scratch column")
# A probe answers in seconds: two attempts, short waits; the export itself keeps its own, patient budget.
PROBE_BUDGET = {
    "max_attempts": 2,
    "retry_base_delay_seconds": 0.5,
    "max_total_retry_wait_seconds": 5.0,
    "connect_timeout_seconds": 5.0,
    "read_timeout_seconds": 30.0,
}
WAREHOUSE_TIMEOUT_SECONDS = 10.0  # retries of one BigQuery call, and a job's wait


class Status(enum.Enum):
    """OK and WARN let the export run; FAIL blocks it; SKIP could not be checked because an earlier item failed."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """One item of the preflight: what was checked, what was found, and what to do."""

    item: str
    status: Status
    detail: str
    action: str = ""

    def line(self) -> str:
        todo = f" -> {self.action}" if self.action else ""
        return f"[{self.status.value:^4}] {self.item}: {self.detail}{todo}"


def blocked(checks: Sequence[Check]) -> bool:
    """True when an item stops the export (a FAIL)."""
    return any(check.status is Status.FAIL for check in checks)


def summary(checks: Sequence[Check]) -> str:
    failing = [check.item for check in checks if check.status is Status.FAIL]
    if failing:
        return f"Blocked: {len(failing)} item(s) stop the export ({', '.join(failing)}); fix them and run doctor again."
    warnings = sum(check.status is Status.WARN for check in checks)
    return "Ready: nothing blocks the export" + (f" ({warnings} warning(s) above)." if warnings else ".")


# ----- the account ------------------------------------------------------------------------------------------


class ProbeStatus(enum.Enum):
    """What one probe request met, in the operator's words."""

    WORKS = "works"
    NOT_ENABLED = "not enabled on the account"
    NO_ENDPOINT = "no such endpoint (404)"
    FORBIDDEN = "forbidden (403)"
    RATE_LIMITED = "rate-limited (429)"
    WRONG_KEY = "wrong key (401)"
    UNREACHABLE = "unreachable"
    SERVER_ERROR = "server error (5xx)"
    BAD_REQUEST = "refused the request"
    NOT_THE_API = "answered 200, but not with the API's JSON"


@dataclass(frozen=True)
class Probe:
    status: ProbeStatus
    message: str = ""  # the client's error text, or what came back instead of JSON (free of the key)


def probe(client: EsputnikClient, source: SourceSpec, path: str, params: Mapping[str, object]) -> Probe:
    """One GET, classified by the statuses it met (the client's typed errors, and its per-status counts), and its
    answer parsed as the export parses it: a web page answered with 200 (a captive portal, a wrong URL) is no API."""
    before, retries = dict(client.stats.by_status), client.stats.retries
    try:
        body = client.get(path, params)
    except ActivityNotEnabledError as exc:
        return Probe(ProbeStatus.NOT_ENABLED, str(exc))
    except AuthenticationError as exc:
        return Probe(ProbeStatus.WRONG_KEY, str(exc))
    except EndpointNotFoundError as exc:
        return Probe(ProbeStatus.NO_ENDPOINT, str(exc))
    except ForbiddenError as exc:
        return Probe(ProbeStatus.FORBIDDEN, str(exc))
    except BadRequestError as exc:
        return Probe(ProbeStatus.BAD_REQUEST, str(exc))
    except TransientError as exc:
        met = _statuses_met(client, before)
        if 429 in met:
            return Probe(ProbeStatus.RATE_LIMITED, str(exc))
        if met:
            return Probe(ProbeStatus.SERVER_ERROR, str(exc))
        attempts = client.stats.retries - retries + 1
        return Probe(ProbeStatus.UNREACHABLE, f"{connection_failure(str(exc), client.base_url)}; {attempts} attempt(s)")
    try:
        read_page(body, source.name, source.answer_schema)
    except AnswerFormatError as exc:
        return Probe(ProbeStatus.NOT_THE_API, redact(exc.detail))
    return Probe(ProbeStatus.WORKS)


# What requests/urllib3 say (the text holds their whole exception chain), and the reason in a person's words.
_CONNECTION_FAILURES = (
    (("nameresolution", "failed to resolve", "name or service not known", "nodename nor servname",
      "name resolution", "getaddrinfo"), "the host name {host} does not resolve (DNS)"),
    (("connection refused",), "{host}:{port} refused the connection (nothing listens there)"),
    (("sslerror", "ssl:", "certificate"), "the TLS handshake with {host}:{port} failed (is it https? is the "
     "certificate trusted?)"),
    (("timeout", "timed out", "not complete after"), "{host}:{port} did not answer in time (timeout)"),
    (("proxyerror", "proxy"), "the proxy refused or failed the connection to {host}:{port}"),
    (("reset", "aborted", "remotedisconnected"), "{host}:{port} closed the connection"),
)  # fmt: skip


def connection_failure(message: str, base_url: str) -> str:
    """A failed connection in one line a person understands, naming the host and port (never the URL's query)."""
    url = urlsplit(base_url)
    host, port = url.hostname or base_url, url.port or (443 if url.scheme == "https" else 80)
    text = message.lower()
    reason = next((r for needles, r in _CONNECTION_FAILURES if any(n in text for n in needles)), None)
    return (reason or "no connection to {host}:{port}").format(host=host, port=port)


def _statuses_met(client: EsputnikClient, before: Mapping[int, int]) -> set[int]:
    return {status for status, count in client.stats.by_status.items() if count > before.get(status, 0)}


def _probe_requests(source: SourceSpec, path: str, timezone: str) -> list[tuple[str, dict[str, object]]]:
    """The cheapest request per endpoint: one row of yesterday (dated) or of the first page; every message type."""
    today = datetime.now(ZoneInfo(timezone)).date()
    params: dict[str, object] = {"maxrows": 1}
    if source.date_window:
        params |= LocalWindow.for_days(today - timedelta(days=1), today).query()
    if source.paging is Paging.V1:
        params["startindex"] = 1
    variants = [variant for variant, _ in source.variants] or [""]
    return [(path.replace("{type}", variant), params) for variant in variants]


_DATASET_ACTIONS = {
    ProbeStatus.NOT_ENABLED: "ask eSputnik support to enable the contact activity export (ContactActivity), or remove "
    "{dataset} from ESPUTNIK_DATASETS",
    ProbeStatus.NO_ENDPOINT: "set this account's path for '{source}' in the esputnik resource's endpoint_paths, or remove "
    "{dataset} from ESPUTNIK_DATASETS",
    ProbeStatus.FORBIDDEN: "give the API key read access to this data in eSputnik (Settings -> API), or remove {dataset} "
    "from ESPUTNIK_DATASETS",
    ProbeStatus.RATE_LIMITED: "the export waits and retries; if this persists, lower ESPUTNIK_MAX_REQUESTS_PER_SECOND or "
    "let other jobs on this account finish",
    ProbeStatus.SERVER_ERROR: "eSputnik is failing now; try again later",
    ProbeStatus.BAD_REQUEST: "check endpoint_paths for '{source}'; the answer above says what eSputnik refused",
    ProbeStatus.UNREACHABLE: "check ESPUTNIK_API_URL and the network (proxy, firewall)",
    ProbeStatus.WRONG_KEY: "check ESPUTNIK_API_KEY",
    ProbeStatus.NOT_THE_API: "check endpoint_paths for '{source}' and ESPUTNIK_API_URL: something other than eSputnik's "
    "API answers there",
}
_NON_BLOCKING = {ProbeStatus.WORKS, ProbeStatus.RATE_LIMITED}
# Statuses whose line quotes what the probe met: the answer says more than the status.
_QUOTED = {ProbeStatus.BAD_REQUEST, ProbeStatus.SERVER_ERROR, ProbeStatus.UNREACHABLE, ProbeStatus.NOT_THE_API}


def check_account(esputnik: EsputnikResource, datasets: Sequence[str], timezone: str) -> list[Check]:
    """The key (one request), then one cheap request per enabled dataset's endpoint, with a short retry budget."""
    quick = esputnik.model_copy(update=PROBE_BUDGET)
    try:
        with quick.open(log=_folded_log()) as api:
            return _check_account(api.client, quick, datasets, api.is_demo, timezone)
    except AccountNotConfiguredError as exc:
        return [Check("key", Status.FAIL, str(exc), "set ESPUTNIK_API_KEY, or ESPUTNIK_DEMO=true for the demo account")]


def _folded_log() -> logging.Logger:
    """A logger that drops the client's retry lines: each probe's line reports its attempts instead."""
    log = logging.Logger(f"{__name__}.probe")  # not registered: nothing configured elsewhere reaches or shows it
    log.addHandler(logging.NullHandler())
    return log


def _check_account(
    client: EsputnikClient, esputnik: EsputnikResource, datasets: Sequence[str], is_demo: bool, timezone: str
) -> list[Check]:
    where = "the built-in demo account" if is_demo else client.base_url
    hold = client.pending_hold_off()
    if hold is not None:  # a probe now would sit silent in the shared pacer until the wait ends
        return [
            Check("key", Status.WARN, f"not checked: {where} asked to wait until {hold.ends_at} ({hold.reason})",
                  f"run doctor again after {hold.ends_at}; the export waits for it by itself"),
            *(Check(f"dataset {name}", Status.SKIP, "not checked: a wait eSputnik asked for is pending") for name in datasets),
        ]  # fmt: skip
    contacts_path = esputnik.path_for(CONTACTS)
    key = probe(client, CONTACTS, contacts_path, {"startindex": 1, "maxrows": 1})
    checks = [_key_check(key, where, contacts_path)]
    if checks[0].status is Status.FAIL:
        return checks + [
            Check(f"dataset {name}", Status.SKIP, f"not checked: the key check failed ({key.status.value})")
            for name in datasets
        ]

    by_source: dict[str, list[str]] = {}
    for name in datasets:
        by_source.setdefault(DATASETS[name].source.name, []).append(name)
    for names in by_source.values():
        source = DATASETS[names[0]].source
        path = esputnik.path_for(source)
        results = [(p, probe(client, source, p, params)) for p, params in _probe_requests(source, path, timezone)]
        failing = [(p, r) for p, r in results if r.status is not ProbeStatus.WORKS]
        for name in names:
            checks.append(_dataset_check(name, source, path, failing))
    return checks


def _key_check(key: Probe, where: str, path: str) -> Check:
    """The key's answer: anything but 401 from the public contacts endpoint means eSputnik took the key."""
    if key.status is ProbeStatus.WRONG_KEY:
        return Check("key", Status.FAIL, f"{where} rejected the API key (401)",
                     "check ESPUTNIK_API_KEY: it must be an API key of this account (Settings -> API in eSputnik)")
    if key.status is ProbeStatus.UNREACHABLE:
        return Check("key", Status.FAIL, f"{where} cannot be reached: {key.message}", _DATASET_ACTIONS[key.status])
    if key.status is ProbeStatus.NOT_THE_API:
        return Check("key", Status.FAIL, f"{where} answered GET {path} with 200, but not with the API's JSON: "
                     f"{key.message}", "check ESPUTNIK_API_URL (https://esputnik.com/api or https://yespo.io/api): "
                     "a web page answers there (a captive portal, a proxy's login, another site)")  # fmt: skip
    if key.status is ProbeStatus.NO_ENDPOINT:
        return Check("key", Status.FAIL, f"{where} has no {path} (404), which every eSputnik account has",
                     "check ESPUTNIK_API_URL: https://esputnik.com/api or https://yespo.io/api")
    if key.status is ProbeStatus.SERVER_ERROR:
        return Check("key", Status.FAIL, f"{where} failed ({key.message})", _DATASET_ACTIONS[key.status])
    if key.status is ProbeStatus.RATE_LIMITED:
        return Check("key", Status.WARN, f"{where} answered 429 before the key could be checked",
                     _DATASET_ACTIONS[key.status])
    proof = "works" if key.status is ProbeStatus.WORKS else f"authenticated, then {key.status.value}"
    return Check("key", Status.OK, f"accepted by {where} (GET {path}: {proof})")  # fmt: skip


def _dataset_check(dataset: str, source: SourceSpec, path: str, failing: list[tuple[str, Probe]]) -> Check:
    item = f"dataset {dataset}"
    if not failing:
        return Check(item, Status.OK, f"GET {path} works")
    result = next((r for _, r in failing if r.status not in _NON_BLOCKING), failing[0][1])
    status = Status.WARN if result.status in _NON_BLOCKING else Status.FAIL
    paths = ", ".join(p for p, r in failing if r.status is result.status)
    detail = f"GET {paths}: {result.status.value}"
    if result.status in _QUOTED:
        detail += f" ({result.message})"
    return Check(item, status, detail, _DATASET_ACTIONS[result.status].format(dataset=dataset, source=source.name))


def check_timezone(timezone: str, is_demo: bool) -> Check:
    """The account's zone decides where a day starts; the default UTC is only right for accounts set to UTC."""
    now = datetime.now(ZoneInfo(timezone))  # a valid zone: Settings checked it
    detail = (
        f"{timezone}: partitions are its local days; now {now:%Y-%m-%d %H:%M} there, "
        f"so the daily schedule's last day is {now.date() - timedelta(days=1)}"
    )
    if timezone == "UTC" and not is_demo:
        return Check("time zone", Status.WARN, detail,
                     "UTC is the default: if the account's time zone in eSputnik is another, set ESPUTNIK_TIMEZONE "
                     "to it, or each day is cut at UTC midnight instead of the account's")  # fmt: skip
    return Check("time zone", Status.OK, detail)


def check_costs(cost_per_message: Mapping[str, float], is_demo: bool) -> Check:
    """campaign_roi needs a cost per delivered message: without one its cost is 0 and its roi null on every row."""
    if cost_per_message:
        priced = ", ".join(f"{media} {cost:g}" for media, cost in cost_per_message.items())
        return Check("costs per message", Status.OK, f"{priced}; any other mediaType costs 0 in campaign_roi")
    if is_demo:
        return Check("costs per message", Status.OK, "the demo account's example costs (campaign_roi has an roi)")
    variables = ", ".join(cost_variable(media) for media in MEDIA_TYPES)
    return Check("costs per message", Status.WARN,
                 "not configured: campaign_roi's cost is 0 and its roi null on every row",
                 f"set the cost of one delivered message per mediaType in {variables}")  # fmt: skip


# ----- the warehouse ----------------------------------------------------------------------------------------


Step = tuple[str, Callable[[], str]]  # an item name and the action that returns its detail (or raises)


def _run_steps(steps: Sequence[Step], explain: Callable[[str, Exception], str]) -> list[Check]:
    """Each step in order; after the first failure the rest are skipped (they depend on it)."""
    checks: list[Check] = []
    failed: str | None = None
    for item, step in steps:
        if failed:
            checks.append(Check(item, Status.SKIP, f"not checked: {failed} failed"))
            continue
        try:
            checks.append(Check(item, Status.OK, step()))
        except Exception as exc:  # every failure here is the answer the operator needs, whatever its type
            checks.append(Check(item, Status.FAIL, f"{type(exc).__name__}: {_first_line(exc)}", explain(item, exc)))
            failed = item
    return checks


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "(no message)"


def check_warehouse(io_manager: WarehouseIOManager) -> list[Check]:
    """Connection and permissions: create the schema/dataset, write a scratch table, read it back, drop it."""
    if isinstance(io_manager, DuckDBIOManager):
        return _check_duckdb(io_manager)
    if isinstance(io_manager, BigQueryIOManager):
        return _check_bigquery(io_manager)
    raise TypeError(f"no warehouse checks for {type(io_manager).__name__}")


def _check_duckdb(io_manager: DuckDBIOManager) -> list[Check]:
    import duckdb

    from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
    from esputnik_assets.warehouse.sql import quote

    path = Path(io_manager.path)
    schema, scratch = quote(io_manager.dataset), quote(f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}")
    engine = DuckDBWarehouse(io_manager.path, io_manager.dataset, lock_timeout=0)  # the export's own engine
    state: dict[str, duckdb.DuckDBPyConnection] = {}
    opened = contextlib.ExitStack()

    def connect() -> str:
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        state["con"] = opened.enter_context(engine.connect())
        return f"DuckDB file {path.resolve()} {'opened' if existed else 'created'} for writing"

    def create_schema() -> str:
        state["con"].execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        return f"schema {io_manager.dataset} exists or was created"

    def write() -> str:
        state["con"].execute(f"CREATE TABLE {schema}.{scratch} AS SELECT range AS n FROM range(3)")
        return f"scratch table {io_manager.dataset}.{scratch.strip(chr(34))} written"

    def read() -> str:
        try:
            [(count,)] = state["con"].execute(f"SELECT count(*) FROM {schema}.{scratch}").fetchall()
            if count != 3:
                raise RuntimeError(f"wrote 3 rows, read {count}")
        finally:
            state["con"].execute(f"DROP TABLE IF EXISTS {schema}.{scratch}")
        return "scratch table read back (3 rows) and dropped"

    def explain(item: str, exc: Exception) -> str:
        if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
            return "another process holds the file (a run in progress?); run doctor again when it ends"
        return f"set ESPUTNIK_DUCKDB_PATH to a file in a folder this user can write (now {path})"

    try:
        return _run_steps(
            [("warehouse connection", connect), ("warehouse create schema", create_schema),
             ("warehouse write", write), ("warehouse read", read)],
            explain,
        )  # fmt: skip
    finally:
        opened.close()


def _check_bigquery(io_manager: BigQueryIOManager) -> list[Check]:
    """Reach BigQuery the way the writes do, through their engine: the dataset ensured, a scratch table loaded from
    Parquet as a read is staged, then counted by project SQL and dropped."""
    from google.api_core import exceptions as gexc

    from esputnik_assets.warehouse.bigquery import BigQueryWarehouse

    resource, name = io_manager.bigquery, io_manager.dataset
    scratch = DatasetContract(f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:12]}", (SCRATCH_COLUMN,))

    def explain(item: str, exc: Exception) -> str:
        if isinstance(exc, gexc.Forbidden):
            return ("give the service account BigQuery Data Editor on the dataset (or project) and BigQuery Job User "
                    "on the project")  # fmt: skip
        if isinstance(exc, gexc.NotFound):
            return "check BIGQUERY_PROJECT (the project id) and BIGQUERY_LOCATION"
        if type(exc).__name__ in ("DefaultCredentialsError", "RefreshError", "Unauthorized"):
            return "set GOOGLE_APPLICATION_CREDENTIALS or BIGQUERY_CREDENTIALS_BASE64 (see README, BigQuery)"
        return "check the network to BigQuery (or BIGQUERY_EMULATOR_HOST), BIGQUERY_PROJECT and the credentials"

    with contextlib.ExitStack() as stack:
        engines: list[BigQueryWarehouse] = []
        staged: list[str] = []

        def connect() -> str:
            engines.append(stack.enter_context(io_manager.open_warehouse(deadline=WAREHOUSE_TIMEOUT_SECONDS)))
            engines[0].ensure_dataset()
            emulator = f" (emulator at {resource.emulator_host})" if resource.emulator_host else ""
            return f"dataset {resource.project}.{name} exists or was created{emulator}"

        def load() -> str:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="esputnik-doctor-")))
            pl.DataFrame({SCRATCH_COLUMN.name: [0, 1, 2]}, schema={SCRATCH_COLUMN.name: pl.Int64}).write_parquet(
                folder / "scratch.parquet"
            )
            spooled = SpooledDataset(scratch.name, [folder / "scratch.parquet"], 3, None, "UTC")
            staged.append(engines[0].stage(scratch, spooled))  # expires by itself if the drop never runs
            return f"load job into scratch table {staged[0].split('.', 1)[1]} succeeded"

        def query() -> str:
            try:
                [row] = engines[0].query(f"SELECT COUNT(*) AS n FROM raw.{bq_quote(staged[0].rsplit('.', 1)[1])}")
                if row["n"] != 3:
                    raise RuntimeError(f"loaded 3 rows, queried {row['n']}")
            finally:
                engines[0].drop(staged[0])
            return "query job read the scratch table back (3 rows); scratch table dropped"

        return _run_steps(
            [("warehouse connection", connect), ("warehouse load", load), ("warehouse query", query)], explain
        )


def check_table_sources(io_manager: WarehouseIOManager, datasets: Sequence[str], incoming: str) -> Check:
    """Tables whose recorded source (demo or live) is not this account's: the export refuses to write into them."""
    with io_manager.open_warehouse() as warehouse:
        existing = [name for name in datasets if warehouse.stored_columns(name)]
        other = {name: source for name in existing if (source := warehouse.source_of(name)) not in (None, incoming)}
    where = io_manager.location()
    if not other:
        found = f"{len(existing)} of {len(datasets)} table(s) exist in {where}"
        return Check("warehouse tables", Status.OK, f"{found}; none holds rows of another account")
    held = ", ".join(f"{name} ({source})" for name, source in sorted(other.items()))
    return Check(
        "warehouse tables", Status.WARN,
        f"{where} holds tables of the {'/'.join(sorted(set(other.values())))} account: {held}; this {incoming} "
        "account's export refuses to write into them",
        "use another DuckDB file or dataset for this account (ESPUTNIK_DUCKDB_PATH / ESPUTNIK_DATASET), or drop "
        "these tables if their rows should go",
    )  # fmt: skip


# ----- the whole preflight ----------------------------------------------------------------------------------


def run_checks(settings: Settings, esputnik: EsputnikResource, io_manager: WarehouseIOManager) -> list[Check]:
    """Every item, in the order an operator fixes them: account and key, endpoints, time zone, costs, warehouse."""
    datasets, timezone = settings.datasets, settings.timezone
    account = [*check_account(esputnik, datasets, timezone), check_timezone(timezone, esputnik.demo_account),
               check_costs(settings.cost_per_message, esputnik.demo_account)]
    warehouse = check_warehouse(io_manager)
    if not blocked(warehouse):
        warehouse.append(check_table_sources(io_manager, datasets, "demo" if esputnik.demo_account else "live"))
    return [for_account(check, settings) for check in account + warehouse]


def for_account(check: Check, settings: Settings) -> Check:
    """A check of an account of the accounts file says what to fix in terms of that file: its field, its variable."""
    if settings.account is None:
        return check
    fields = {
        "ESPUTNIK_API_KEY": f"{settings.api_key_variable} (api_key_env of account {settings.account})",
        "ESPUTNIK_API_URL": f"api_url of account {settings.account}",
        "ESPUTNIK_TIMEZONE": f"timezone of account {settings.account}",
        "ESPUTNIK_DEMO=true": "demo: true",
    }
    action = check.action
    for variable, field_name in fields.items():
        action = action.replace(variable, field_name)
    return replace(check, action=action)


def report(checks: Sequence[Check]) -> Iterator[str]:
    yield from (check.line() for check in checks)
    yield summary(checks)


def markdown(checks: Sequence[Check]) -> str:
    """The same lines as a table, for the run's metadata in the UI."""
    rows = [f"| {c.status.value} | {c.item} | {c.detail} | {c.action} |".replace("\n", " ") for c in checks]
    return "\n".join(["| status | item | found | to do |", "|---|---|---|---|", *rows, "", summary(checks)])


def build_doctor_job(settings: Settings, names: AccountNames = SINGLE_ACCOUNT) -> dg.JobDefinition:
    """The preflight of one account as a job, so the UI can run it: its op logs every line and fails when something
    blocks."""
    esputnik_key, io_manager_key = names.resource("esputnik"), names.resource(IO_MANAGER_KEY)

    @dg.op(name=names.named("esputnik_preflight"), required_resource_keys={esputnik_key, io_manager_key},
           out=dg.Out(dg.Nothing))  # fmt: skip
    def esputnik_doctor(context: dg.OpExecutionContext) -> Iterator[dg.Output]:
        resources = context.resources
        checks = run_checks(settings, getattr(resources, esputnik_key), getattr(resources, io_manager_key))
        for check in checks:
            {Status.FAIL: context.log.error, Status.WARN: context.log.warning}.get(check.status, context.log.info)(
                check.line()
            )
        table = dg.MetadataValue.md(markdown(checks))
        if blocked(checks):
            raise dg.Failure(description=summary(checks), metadata={"report": table}, allow_retries=False)
        yield dg.Output(None, metadata={"report": table})

    @dg.job(
        name=names.named(DOCTOR_JOB),
        description="Preflight: the key, each dataset's endpoint, the time zone and the warehouse's permissions "
        "(the same checks as `esputnik-assets doctor`); fails when something blocks the export.",
        tags={"esputnik/kind": "preflight", "dagster/max_retries": "0", **names.run_tags},  # blocked is an answer
    )
    def doctor_job() -> None:
        esputnik_doctor()

    return doctor_job
