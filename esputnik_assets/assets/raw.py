"""One asset factory for the nine raw tables: a multi-asset per eSputnik source, an output per table it feeds."""

import hashlib
from collections.abc import Iterator, Sequence

import dagster as dg

from esputnik_assets.checks.raw import VOLUME, CheckContext, CheckThresholds, checks_for, refused_volume
from esputnik_assets.checks.freshness import PARTITION_ON_TIME, Freshness
from esputnik_assets.checks.read import READ_REPORT, READ_REPORT_DESCRIPTION, read_report
from esputnik_assets.contracts import DatasetContract, load_contracts
from esputnik_assets.keys import IO_MANAGER_KEY, SINGLE_ACCOUNT, AccountNames
from esputnik_assets.source.extract import extract
from esputnik_assets.spool import SpooledDataset
from esputnik_assets.source.resource import EsputnikResource
from esputnik_assets.source.spool_dirs import spool_dir
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.step_errors import redacted_errors
from esputnik_assets.specs import DATASETS, DatasetSpec, SourceSpec, WriteMode
from esputnik_assets.run_policy import NOT_RETRYABLE, final_failure
from esputnik_assets.warehouse.base import RefusedDaysError, day_bounds, spooled_repeats
from esputnik_assets.warehouse.io_manager import WarehouseIOManager

API_POOL = "esputnik_api"  # every step that reads the account (`esputnik_api_<name>` per account of the file);
# limit it when runs are spread over machines, so one account's reads never wait on another's


class RawReadConfig(dg.Config):
    """Per-run options of a raw read: confirmations of writes the warehouse refuses by default."""

    allow_empty_days: bool = False  # confirm that days which held rows are really empty now
    allow_smaller_days: bool = False  # confirm that days which held rows really shrank (ESPUTNIK_CHECK_MAX_DAY_DROP)


def column_schema(contract: DatasetContract) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=f"{c.type}[]" if c.repeated else c.type,
                description=c.description
                + (f" Allowed: {', '.join(c.allowed_values)}." if c.allowed_values else ""),
            )
            for c in contract.columns
        ]
    )


def code_version(spec: DatasetSpec) -> str:
    """Changes when what a table holds could change (its columns, source, key or write mode), so the UI marks its
    partitions stale after an upgrade that touches them."""
    contract = load_contracts()[spec.name]
    parts = [spec.source.path, spec.write_mode.value, ",".join(spec.key), *(f"{c.name}:{c.type}" for c in contract.columns)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def _out(
    spec: DatasetSpec, freshness: Freshness | None, warehouse: str, owners: Sequence[str], names: AccountNames
) -> dg.AssetOut:
    source = spec.source
    semantics = (
        f"Each run replaces whole local days of `{spec.partition_column}`, atomically."
        if spec.write_mode is WriteMode.REPLACE_DAYS
        else f"Upserted by ({', '.join(spec.key)}): one row per key, the latest read wins."
    )
    return dg.AssetOut(
        key=names.raw(spec.name),
        description=f"{spec.description}\n\nSource: GET {source.path} ({source.status}). {semantics}",
        io_manager_key=names.resource(IO_MANAGER_KEY),
        is_required=False,
        group_name=names.raw_group,
        kinds={"polars", warehouse},
        owners=list(owners),
        tags={"esputnik/layer": "raw", "esputnik/write_mode": spec.write_mode.value},
        code_version=code_version(spec),
        freshness_policy=freshness.policy() if freshness else None,
        metadata={
            "dagster/column_schema": column_schema(load_contracts()[spec.name]),
            "endpoint": source.path,
            "endpoint_status": source.status,
            "write_mode": spec.write_mode.value,
            "key": ", ".join(spec.key),
            **({"partition_column": spec.partition_column} if spec.partition_column else {}),
        },
    )


def _local_window(context: dg.AssetExecutionContext) -> LocalWindow:
    """The local days of the run's partition range (one day, or many in a backfill run)."""
    window = context.partition_time_window
    return LocalWindow.for_days(window.start.date(), window.end.date())


def _check_specs(
    specs: Sequence[DatasetSpec], freshness: Freshness | None, names: AccountNames
) -> list[dg.AssetCheckSpec]:
    out = []
    for spec in specs:
        key = names.raw(spec.name)
        out += [
            dg.AssetCheckSpec(c.name, asset=key, description=c.description, blocking=c.blocking)
            for c in checks_for(spec.name)
        ]
        out.append(dg.AssetCheckSpec(READ_REPORT, asset=key, description=READ_REPORT_DESCRIPTION))
        if freshness:
            out.append(dg.AssetCheckSpec(PARTITION_ON_TIME, asset=key, description=freshness.description))
    return out


def build_source_asset(
    source: SourceSpec,
    specs: Sequence[DatasetSpec],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    backfill_policy: dg.BackfillPolicy,
    freshness: Freshness | None = None,
    warehouse: str = "duckdb",
    owners: Sequence[str] = (),
    names: AccountNames = SINGLE_ACCOUNT,
) -> dg.AssetsDefinition:
    timezone = partitions_def.timezone  # the one zone of the read, the days it replaces and the checks
    esputnik_key, io_manager_key = names.resource("esputnik"), names.resource(IO_MANAGER_KEY)

    @dg.multi_asset(
        name=names.named(f"esputnik_{source.name}"),
        outs={spec.name: _out(spec, freshness, warehouse, owners, names) for spec in specs},
        check_specs=_check_specs(specs, freshness, names),
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        op_tags={"esputnik/source": source.name, **names.run_tags},
        pool=names.resource(API_POOL),
        required_resource_keys={esputnik_key, io_manager_key, "check_thresholds"},
    )
    @redacted_errors
    def read_source(
        context: dg.AssetExecutionContext, config: RawReadConfig
    ) -> Iterator[dg.Output | dg.AssetCheckEvaluation]:
        check_thresholds: CheckThresholds = context.resources.check_thresholds
        esputnik: EsputnikResource = getattr(context.resources, esputnik_key)
        warehouse_io_manager: WarehouseIOManager = getattr(context.resources, io_manager_key)
        selected = [s for s in specs if names.raw(s.name) in context.selected_asset_keys]
        window = _local_window(context)
        read: dict[str, SpooledDataset] = {}
        if selected:
            with spool_dir(source.name, context.log, esputnik.spool_folder) as folder:
                try:
                    with esputnik.open(context.log, context.run.run_id) as api:
                        spooled = extract(
                            api.client,
                            source,
                            selected,
                            window=window if source.date_window else None,
                            timezone=timezone,
                            spool_dir=folder,
                            path=esputnik.path_for(source),
                            windowing=esputnik.windowing(),
                            batch_rows=esputnik.spool_batch_rows,
                        )
                        stats, label = api.client.stats, api.source_label
                except NOT_RETRYABLE as exc:
                    raise final_failure(context.instance, context.run.run_id, str(exc)) from exc
                for item in spooled:
                    item.allow_empty_days, item.allow_smaller_days = config.allow_empty_days, config.allow_smaller_days
                    item.max_day_drop = check_thresholds.max_day_drop
                    item.source = "demo" if api.is_demo else "live"
                    item.read |= {"http_retries": stats.retries, "http_429": stats.by_status.get(429, 0),
                                  "duplicates_dropped": spooled_repeats(item, DATASETS[item.dataset].dedupe_key)}  # fmt: skip
                    read[item.dataset] = item
                refusals = _refusals(spooled, warehouse_io_manager)
                if refusals:  # nothing of this read is written; the checks describe the tables as they stand
                    yield from _all_checks(context, specs, read, window, timezone, warehouse_io_manager,
                                           check_thresholds, freshness, refusals, names)  # fmt: skip
                    findings = "\n\n".join(str(refusal) for refusal in refusals.values())
                    raise final_failure(context.instance, context.run.run_id, findings)
                for item in spooled:
                    yield dg.Output(
                        item,
                        output_name=item.dataset,
                        metadata={  # the whole read's figures: the same on every partition of a range run
                            "source": label,
                            "window": f"{window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d} (local, end exclusive)"
                            if source.date_window
                            else "full scan",
                            "run_rows_read": item.rows,
                            "run_http_requests": stats.requests,
                            "run_http_retries": stats.retries,
                            "run_http_429": stats.by_status.get(429, 0),
                            "run_bytes_fetched": stats.bytes_received,
                            "run_pages": item.read.get("pages", 0),
                            "run_windows_split": item.read.get("windows_split", 0),
                            **{f"run_{k}": v for k, v in item.read.items() if k.startswith("seconds_")},
                        },
                    )
        yield from _all_checks(
            context, specs, read, window, timezone, warehouse_io_manager, check_thresholds, freshness, {}, names
        )

    return read_source


def _refusals(spooled: Sequence[SpooledDataset], io_manager: WarehouseIOManager) -> dict[str, Exception]:
    """What the warehouse would refuse to write, by dataset, judged before any of the read is written (a source's
    tables are written together or not at all)."""
    refusals: dict[str, Exception] = {}
    for item in spooled:
        try:
            io_manager.judge(item)
        except NOT_RETRYABLE as refusal:
            refusals[item.dataset] = refusal
    return refusals


def _all_checks(
    context: dg.AssetExecutionContext,
    specs: Sequence[DatasetSpec],
    read: dict[str, SpooledDataset],
    window: LocalWindow,
    timezone: str,
    io_manager: WarehouseIOManager,
    thresholds: CheckThresholds,
    freshness: Freshness | None,
    refusals: dict[str, Exception],
    names: AccountNames,
) -> Iterator[dg.AssetCheckEvaluation]:
    """Every selected check of these tables, once per partition of the run: the warehouse checks, then freshness."""
    yield from evaluate_raw_checks(context, specs, read, window, timezone, io_manager, thresholds, refusals, names)
    if freshness:
        now, covered = freshness.clock(), context.partition_keys if read and not refusals else []
        for key in (names.raw(spec.name) for spec in specs):
            if dg.AssetCheckKey(key, PARTITION_ON_TIME) in context.selected_asset_check_keys:
                outcome = freshness.evaluate(context.instance, key, now, covered)
                yield from outcome.per_partition(key, PARTITION_ON_TIME, False, context.partition_keys)


def evaluate_raw_checks(
    context: dg.AssetExecutionContext,
    specs: Sequence[DatasetSpec],
    read: dict[str, SpooledDataset],
    window: LocalWindow,
    timezone: str,
    io_manager: WarehouseIOManager,
    thresholds: CheckThresholds,
    refusals: dict[str, Exception],
    names: AccountNames = SINGLE_ACCOUNT,
) -> Iterator[dg.AssetCheckEvaluation]:
    """The selected checks of these tables, on the days of the run, as queries in the warehouse. A table whose write
    was refused fails `volume` with the refusal's finding; its other checks describe the table as it stands."""
    wanted, partitions = context.selected_asset_check_keys, context.partition_keys
    with io_manager.open_warehouse() as warehouse:
        for spec in specs:
            key = names.raw(spec.name)
            checks = [c for c in checks_for(spec.name) if dg.AssetCheckKey(key, c.name) in wanted]
            if not checks and dg.AssetCheckKey(key, READ_REPORT) not in wanted:
                continue
            days = day_bounds(window, timezone)
            ctx = CheckContext(warehouse, spec, load_contracts()[spec.name], days, timezone, thresholds)
            refusal = refusals.get(spec.name)
            for check in checks:
                if check.name == VOLUME and isinstance(refusal, RefusedDaysError):
                    outcome = refused_volume(refusal)
                else:
                    outcome = check.evaluate(ctx)
                yield from outcome.per_partition(key, check.name, check.blocking, partitions)
            if dg.AssetCheckKey(key, READ_REPORT) in wanted:
                report = read_report(read.get(spec.name), thresholds)
                yield from report.per_partition(key, READ_REPORT, False, partitions)


def build_raw_assets(
    datasets: Sequence[str],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    backfill_policy: dg.BackfillPolicy,
    freshness: Freshness | None = None,
    warehouse: str = "duckdb",
    owners: Sequence[str] = (),
    names: AccountNames = SINGLE_ACCOUNT,
) -> list[dg.AssetsDefinition]:
    """The raw assets for the chosen datasets (the export's "check the boxes"), one multi-asset per source."""
    by_source: dict[str, list[DatasetSpec]] = {}
    for name in datasets:
        by_source.setdefault(DATASETS[name].source.name, []).append(DATASETS[name])
    return [
        build_source_asset(specs[0].source, specs, partitions_def, backfill_policy, freshness, warehouse, owners, names)
        for specs in by_source.values()
    ]
