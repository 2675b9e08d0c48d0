"""Data-quality and KPI checks of the raw tables, each one query (or a few) run inside the warehouse.

Every check is described once here (name, what it means, blocking or not, which tables it applies to) and the raw
asset factory attaches the applicable ones to each table. A check looks at the local days the run wrote (facts) or
the whole table (entities), and only bounded results (counts, a few examples, a day's figures) reach Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg

from esputnik_assets.contracts import DatasetContract, load_contracts
from esputnik_assets.redaction import redact, redact_metadata
from esputnik_assets.specs import DATASETS, DatasetSpec, WriteMode
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.warehouse.base import DayBounds, RefusedDaysError, Warehouse, day_bounds
from esputnik_assets.warehouse.sql import RAW, bq_quote

WARN, ERROR = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR
HISTORY_DAYS = 7
EXAMPLES = 5
VOLUME = "volume"

# Values the API contract (esputnik-api.md) passes through although datasets.csv, eSputnik's own column list, does
# not list them. The csv stays a faithful copy of eSputnik's description; the check accepts these documented values
# and still reports any other new value.
CONTRACT_EXTENSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("contactActivities", "activityStatus"): ("SENT",),
    ("revenue", "activityStatus"): ("SENT",),
    ("orders", "Status"): ("ABANDONED_SHOPPING_CART",),
    ("messages", "mediaType"): ("Telegram",),
    ("broadcasts", "mediaType"): ("In-App", "Telegram"),
}

# (child column, parent table, parent column): rows whose reference the parent does not know.
REFERENCES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "contactActivities": (
        ("contactId", "contacts", "contactId"),
        ("broadcastId", "broadcasts", "id"),
        ("messageId", "messages", "messageId"),
    ),
    "orderItems": (("orderId", "orders", "orderId"),),
    "revenue": (("orderId", "orders", "orderId"),),
}


class CheckThresholds(dg.ConfigurableResource):
    """The thresholds of the checks and alerts (README, "Checks"); each has an ESPUTNIK_CHECK_* variable."""

    volume_min_ratio: float = 0.5  # a day with fewer rows than this share of its trailing mean fails
    max_day_drop: float = 0.5  # a re-read day this far below its stored rows and their trailing mean is not written
    kpi_max_drop: float = 0.3  # a KPI this far (relative) below its trailing 7-day mean is flagged
    duplicate_warn_share: float = 0.1  # repeated rows beyond this share of a read are a warning


@dataclass
class CheckContext:
    """What a check needs: the table, the days the run wrote, the thresholds, and figures shared between checks."""

    warehouse: Warehouse
    spec: DatasetSpec
    contract: DatasetContract
    days: Sequence[DayBounds]
    timezone: str
    thresholds: CheckThresholds
    memo: dict[str, object] = field(default_factory=dict)

    def shared(self, name: str, compute: Callable[[], object]) -> object:
        """Figures several checks use (the daily counts) are queried once per run."""
        if name not in self.memo:
            self.memo[name] = compute()
        return self.memo[name]

    @property
    def table(self) -> str:
        """The table in project SQL (BigQuery's dialect, see `warehouse.sql`)."""
        return f"{RAW}.{bq_quote(self.spec.name)}"

    def scope(self) -> tuple[str, dict[str, object]]:
        """WHERE clause and parameters: the run's days for a fact table, everything for an entity table."""
        if self.spec.write_mode is WriteMode.UPSERT or not self.days:
            return "TRUE", {}
        column = bq_quote(self.spec.partition_column)
        return f"{column} >= @start AND {column} < @end", {"start": self.days[0].start, "end": self.days[-1].end}


@dataclass(frozen=True)
class Outcome:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)
    severity: dg.AssetCheckSeverity = ERROR

    def result(self, key: dg.AssetKey, name: str) -> dg.AssetCheckResult:
        """As the step that checked it reports it."""
        return dg.AssetCheckResult(asset_key=key, check_name=name, passed=self.passed, severity=self.severity,
                                   description=redact(self.description), metadata=redact_metadata(self.metadata))  # fmt: skip

    def evaluation(
        self, key: dg.AssetKey, name: str, blocking: bool = False, partition: str | None = None
    ) -> dg.AssetCheckEvaluation:
        """As a sensor records it between runs, or a step for one partition of its run."""
        return dg.AssetCheckEvaluation(asset_key=key, check_name=name, passed=self.passed, severity=self.severity,
                                       description=redact(self.description), metadata=redact_metadata(self.metadata),
                                       blocking=blocking, partition=partition)  # fmt: skip

    def per_partition(
        self, key: dg.AssetKey, name: str, blocking: bool, partitions: Sequence[str]
    ) -> list[dg.AssetCheckEvaluation]:
        """As the step that checked it reports it: one evaluation per partition of the run. Dagster plans a check of
        a partitioned run once per partition; a result naming no partition would leave each plan "Skipped"."""
        return [self.evaluation(key, name, blocking, partition) for partition in partitions or [None]]


@dataclass(frozen=True)
class RawCheck:
    """One check, described once; `applies` says which tables get it."""

    name: str
    description: str
    blocking: bool
    applies: Callable[[DatasetSpec], bool]
    evaluate: Callable[[CheckContext], Outcome]  # the outcome carries its severity


# -- schema -----------------------------------------------------------------------------------------------------


def _schema_contract(ctx: CheckContext) -> Outcome:
    expected = [(c.name, ctx.warehouse.column_type(c)) for c in ctx.contract.columns]
    stored = [(name, kind.upper()) for name, kind in ctx.warehouse.stored_columns(ctx.spec.name)]
    if stored == expected:
        return Outcome(True, f"{len(stored)} columns in contract order and types")
    wanted, found = dict(expected), dict(stored)
    missing = [n for n, _ in expected if n not in found]
    unexpected = [n for n, _ in stored if n not in wanted]
    changed = [f"{n}: {found[n]} (contract {wanted[n]})" for n, _ in expected if n in found and found[n] != wanted[n]]
    misplaced = [] if missing or unexpected else [n for (n, _), (m, _) in zip(expected, stored) if n != m]
    problems = [
        *(f"missing column {n}" for n in missing),
        *(f"unexpected column {n}" for n in unexpected),
        *(f"changed type {c}" for c in changed),
        *(f"column {n} out of contract order" for n in misplaced[:1]),
    ]
    return Outcome(
        False,
        f"{ctx.spec.name} differs from datasets.csv: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
        {"missing": ", ".join(missing), "unexpected": ", ".join(unexpected), "changed_types": "; ".join(changed)},
    )


# -- keys -------------------------------------------------------------------------------------------------------


def _stored_key(spec: DatasetSpec) -> tuple[str, ...]:
    """The table's key when it is made of export columns; none for contactActivities and orderItems, whose keys
    (the activity's `iid`, an item's place in its order) are read but not stored."""
    return () if any(c.startswith("_") for c in spec.key) else spec.key


def _keys(ctx: CheckContext) -> Outcome:
    where, params = ctx.scope()
    key = _stored_key(ctx.spec)
    columns = ", ".join(bq_quote(c) for c in key)
    required = [c for c in key if c in ctx.spec.required_key]
    nulls = " OR ".join(f"{bq_quote(c)} IS NULL" for c in required) or "FALSE"
    [counts] = ctx.warehouse.query(
        f"SELECT COUNT(*) AS n_rows, COUNT(CASE WHEN {nulls} THEN 1 END) AS null_keys FROM {ctx.table} WHERE {where}",
        params,
    )
    repeats = ctx.warehouse.query(
        f"SELECT {columns}, COUNT(*) AS copies FROM {ctx.table} WHERE {where} GROUP BY {columns} "
        f"HAVING COUNT(*) > 1 ORDER BY copies DESC LIMIT {EXAMPLES}",
        params,
    )
    [total] = ctx.warehouse.query(
        f"SELECT COUNT(*) AS n FROM (SELECT {columns} FROM {ctx.table} WHERE {where} GROUP BY {columns} "
        "HAVING COUNT(*) > 1) AS repeated",
        params,
    )
    null_keys, repeated = int(counts["null_keys"] or 0), int(total["n"] or 0)
    metadata = {"rows": int(counts["n_rows"] or 0), "null_keys": null_keys, "repeated_keys": repeated,
                "examples": "; ".join(", ".join(f"{c}={r[c]}" for c in key) + f" x{r['copies']}" for r in repeats)}  # fmt: skip
    if null_keys or repeated:
        return Outcome(False, f"key ({', '.join(key)}): {null_keys} null, {repeated} repeated", metadata)
    return Outcome(True, f"key ({', '.join(key)}) not null and unique over {metadata['rows']} rows", metadata)


# -- accepted values --------------------------------------------------------------------------------------------


def _enumerated(spec: DatasetSpec) -> list[tuple[str, tuple[str, ...]]]:
    contract = load_contracts()[spec.name]
    return [
        (c.name, c.allowed_values + CONTRACT_EXTENSIONS.get((spec.name, c.name), ()))
        for c in contract.columns
        if c.allowed_values and not c.deprecated_alias_of
    ]


def _accepted_values(ctx: CheckContext) -> Outcome:
    where, params = ctx.scope()
    unknown: dict[str, int] = {}
    for column, allowed in _enumerated(ctx.spec):
        rows = ctx.warehouse.query(
            f"SELECT {bq_quote(column)} AS value, COUNT(*) AS n FROM {ctx.table} WHERE {where} "
            f"AND {bq_quote(column)} IS NOT NULL GROUP BY {bq_quote(column)} ORDER BY n DESC LIMIT 1000",
            params,
        )
        unknown |= {f"{column}={r['value']}": int(r["n"]) for r in rows if r["value"] not in allowed}
    metadata: dict[str, object] = {"unknown_values": dict(sorted(unknown.items(), key=lambda kv: -kv[1]))}
    if unknown:
        listed = ", ".join(f"{name} ({count} rows)" for name, count in list(metadata["unknown_values"].items())[:EXAMPLES])
        return Outcome(False, f"values outside datasets.csv: {listed}", metadata, WARN)
    return Outcome(True, "every enumerated column holds allowed values", metadata, WARN)


# -- references -------------------------------------------------------------------------------------------------


def _referential(ctx: CheckContext) -> Outcome:
    where, params = ctx.scope()
    metadata: dict[str, object] = {}
    orphans: list[str] = []
    for column, parent, parent_column in REFERENCES[ctx.spec.name]:
        if not ctx.warehouse.stored_columns(parent):
            metadata[f"{column}_skipped"] = f"no {parent} table (dataset not exported)"
            continue
        unknown = (
            f"FROM {ctx.table} AS t WHERE {where} AND t.{bq_quote(column)} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {RAW}.{bq_quote(parent)} AS p WHERE p.{bq_quote(parent_column)} = t.{bq_quote(column)})"
        )
        [count] = ctx.warehouse.query(f"SELECT COUNT(*) AS n {unknown}", params)
        n = int(count["n"] or 0)
        metadata[f"{column}_unknown_to_{parent}"] = n
        if n:
            examples = ctx.warehouse.query(
                f"SELECT DISTINCT t.{bq_quote(column)} AS value {unknown} ORDER BY value LIMIT {EXAMPLES}", params
            )
            metadata[f"{column}_examples"] = ", ".join(str(r["value"]) for r in examples)
            orphans.append(f"{n} rows with {column} unknown to {parent}")
    if orphans:
        return Outcome(False, "; ".join(orphans), metadata, WARN)
    return Outcome(True, "every reference is known to its table", metadata, WARN)


# -- volume and KPIs --------------------------------------------------------------------------------------------


def _with_history(ctx: CheckContext) -> list[DayBounds]:
    """The run's days and the HISTORY_DAYS before the first one, each with its UTC bounds (DST-exact)."""
    first = ctx.days[0].day
    earlier = LocalWindow.for_days(first - timedelta(days=HISTORY_DAYS), first)
    return [*day_bounds(earlier, ctx.timezone), *ctx.days]


def _by_local_day(column: str, days: Sequence[DayBounds]) -> tuple[str, str, dict[str, object]]:
    """A day-number expression, a WHERE clause and parameters that place each row on its local day.

    The bounds come from Python's zoneinfo, so both engines agree without either's time zone functions.
    """
    quoted = bq_quote(column)
    branches = " ".join(f"WHEN {quoted} < @e{i} THEN {i}" for i in range(len(days)))
    params: dict[str, object] = {f"e{i}": d.end for i, d in enumerate(days)}
    params["first_start"] = days[0].start
    return f"CASE {branches} END", f"{quoted} >= @first_start AND {quoted} < @e{len(days) - 1}", params


def _per_day(ctx: CheckContext, column: str, figures: str) -> dict[date, dict[str, object]]:
    """`figures` (aggregate expressions) for each local day of the run and its history, in one scan."""
    days = _with_history(ctx)
    day_number, where, params = _by_local_day(column, days)
    rows = ctx.warehouse.query(
        f"SELECT {day_number} AS day_number, {figures} FROM {ctx.table} WHERE {where} GROUP BY day_number", params
    )
    return {days[int(r.pop("day_number"))].day: r for r in rows}


def _daily_counts(ctx: CheckContext) -> dict[date, int]:
    return {day: int(r["n"]) for day, r in _per_day(ctx, ctx.spec.partition_column, "COUNT(*) AS n").items()}


def _trailing(series: dict[date, float | None], day: date) -> float | None:
    """Mean of the HISTORY_DAYS before `day`, over the days that have a value (days never loaded are unknown)."""
    values = [series[d] for d in (day - timedelta(days=i) for i in range(1, HISTORY_DAYS + 1)) if series.get(d) is not None]
    return sum(values) / len(values) if values else None


def _volume(ctx: CheckContext) -> Outcome:
    counts = ctx.shared("daily_counts", lambda: _daily_counts(ctx))
    ratio = ctx.thresholds.volume_min_ratio
    per_day, failed = [], []
    for bounds in ctx.days:
        n, mean = counts.get(bounds.day, 0), _trailing({d: float(c) for d, c in counts.items() if c}, bounds.day)
        per_day.append({"day": bounds.day.isoformat(), "rows": n, "trailing_mean": None if mean is None else round(mean, 1)})
        if mean is not None and (n == 0 or n < ratio * mean):
            failed.append(f"{bounds.day}: {n} rows against a trailing {HISTORY_DAYS}-day mean of {mean:.0f}")
    metadata = {"days": per_day, "min_ratio": ratio}
    if failed:
        return Outcome(False, "sharply smaller day: " + "; ".join(failed), metadata)
    return Outcome(True, f"every day holds at least {ratio:.0%} of its trailing mean (or has no history yet)", metadata)


def refused_volume(refusal: RefusedDaysError) -> Outcome:
    """The volume check of a read that was not written: the refusal's finding, per day stored, read, trailing mean
    and the fewest rows it had to bring."""
    metadata: dict[str, object] = {"days": [v.as_metadata() for v in refusal.verdicts], "written": False}
    return Outcome(False, str(refusal), metadata | ({"kept_at": refusal.kept_at} if refusal.kept_at else {}))


@dataclass(frozen=True)
class Kpi:
    name: str
    dataset: str
    label: str
    severity: dg.AssetCheckSeverity


KPIS = (
    Kpi("delivery_rate", "contactActivities", "delivered / (delivered + undelivered)", ERROR),
    Kpi("open_rate", "contactActivities", "opened (RECEIVED) / delivered", WARN),
    Kpi("click_rate", "contactActivities", "clicked / delivered", WARN),
    Kpi("revenue", "orders", "sum of totalCost of orders not canceled", WARN),
)


def _distinct_contacts(status: str) -> str:
    return f"COUNT(DISTINCT CASE WHEN `activityStatus` = '{status}' THEN `contactId` END)"


def _daily_kpis(ctx: CheckContext) -> dict[date, dict[str, float | None]]:
    if ctx.spec.name == "orders":
        revenue = "SUM(CASE WHEN `Status` IS NULL OR `Status` <> 'CANCELED' THEN `totalCost` END) AS revenue"
        return {day: {"revenue": float(r["revenue"] or 0)} for day, r in _per_day(ctx, "orderDate", revenue).items()}
    figures = (
        f"{_distinct_contacts('DELIVERED')} AS delivered, {_distinct_contacts('UNDELIVERED')} AS undelivered, "
        f"{_distinct_contacts('RECEIVED')} AS opened, {_distinct_contacts('CLICKED')} AS clicked"
    )

    def rate(numerator: object, denominator: object) -> float | None:
        return int(numerator) / int(denominator) if denominator else None

    return {
        day: {
            "delivery_rate": rate(r["delivered"], int(r["delivered"]) + int(r["undelivered"])),
            "open_rate": rate(r["opened"], r["delivered"]),
            "click_rate": rate(r["clicked"], r["delivered"]),
        }
        for day, r in _per_day(ctx, "activityDateTime", figures).items()
    }


def _kpi_check(kpi: Kpi) -> Callable[[CheckContext], Outcome]:
    def evaluate(ctx: CheckContext) -> Outcome:
        daily = ctx.shared("daily_kpis", lambda: _daily_kpis(ctx))
        series = {day: values.get(kpi.name) for day, values in daily.items()}
        drop = ctx.thresholds.kpi_max_drop
        per_day, failed = [], []
        for bounds in ctx.days:
            value, mean = series.get(bounds.day), _trailing(series, bounds.day)
            per_day.append({"day": bounds.day.isoformat(), "value": value, "trailing_mean": mean})
            if value is not None and mean and value < (1 - drop) * mean:
                failed.append(f"{bounds.day}: {value:.4g} against a trailing {HISTORY_DAYS}-day mean of {mean:.4g}")
        metadata = {"kpi": kpi.label, "days": per_day, "max_drop": drop}
        if failed:
            return Outcome(False, f"{kpi.name} fell more than {drop:.0%}: " + "; ".join(failed), metadata, kpi.severity)
        return Outcome(True, f"{kpi.name} within {drop:.0%} of its trailing mean (or no history yet)", metadata, kpi.severity)

    return evaluate


def _is_fact(spec: DatasetSpec) -> bool:
    return spec.write_mode is WriteMode.REPLACE_DAYS


RAW_CHECKS: tuple[RawCheck, ...] = (
    RawCheck("schema_contract", "The stored table's columns, order and types equal datasets.csv.", True,
             lambda s: True, _schema_contract),
    RawCheck("keys", "Key columns are not null and unique (facts: on the days the run wrote).", True,
             lambda s: bool(_stored_key(s)), _keys),
    RawCheck("accepted_values", "Enumerated columns hold the values datasets.csv lists (plus the API contract's "
             "documented additions); other values are reported with their counts.", False,
             lambda s: bool(_enumerated(s)), _accepted_values),
    RawCheck("referential", "References to other tables (contacts, broadcasts, messages, orders) are known there.",
             False, lambda s: s.name in REFERENCES, _referential),
    RawCheck(VOLUME, f"Each day's rows against its trailing {HISTORY_DAYS}-day mean: an empty or sharply smaller "
             "day fails (an API that quietly answers nothing is not a quiet day).", True, _is_fact, _volume),
    *(
        RawCheck(f"kpi_{kpi.name}", f"{kpi.label}, per day, against its trailing {HISTORY_DAYS}-day mean.", False,
                 lambda s, kpi=kpi: s.name == kpi.dataset, _kpi_check(kpi))
        for kpi in KPIS
    ),
)  # fmt: skip


def checks_for(dataset: str) -> list[RawCheck]:
    return [check for check in RAW_CHECKS if check.applies(DATASETS[dataset])]
