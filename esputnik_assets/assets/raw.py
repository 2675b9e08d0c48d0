"""One asset factory for the nine raw tables: a multi-asset per eSputnik source, an output per table it feeds."""

from collections.abc import Iterator, Sequence

import dagster as dg

from esputnik_assets.contracts import DatasetContract, load_contracts
from esputnik_assets.source.extract import extract
from esputnik_assets.source.resource import EsputnikResource
from esputnik_assets.source.spool_dirs import spool_dir
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.specs import DATASETS, DatasetSpec, SourceSpec, WriteMode

GROUP = "esputnik"
KEY_PREFIX = "esputnik"
IO_MANAGER_KEY = "warehouse_io_manager"


class RawReadConfig(dg.Config):
    """Per-run options of a raw read."""

    allow_empty_days: bool = False  # confirm that days which held rows are really empty now


def asset_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey([KEY_PREFIX, dataset])


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


def _out(spec: DatasetSpec) -> dg.AssetOut:
    source = spec.source
    semantics = (
        f"Each run replaces whole local days of `{spec.partition_column}`, atomically."
        if spec.write_mode is WriteMode.REPLACE_DAYS
        else f"Upserted by ({', '.join(spec.key)}): one row per key, the latest read wins."
    )
    return dg.AssetOut(
        key=asset_key(spec.name),
        description=f"{spec.description}\n\nSource: GET {source.path} ({source.status}). {semantics}",
        io_manager_key=IO_MANAGER_KEY,
        is_required=False,
        group_name=GROUP,
        kinds={"polars"},
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


def build_source_asset(
    source: SourceSpec,
    specs: Sequence[DatasetSpec],
    partitions_def: dg.PartitionsDefinition,
    backfill_policy: dg.BackfillPolicy,
) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=f"esputnik_{source.name}",
        outs={spec.name: _out(spec) for spec in specs},
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        op_tags={"esputnik/source": source.name},
    )
    def read_source(
        context: dg.AssetExecutionContext, config: RawReadConfig, esputnik: EsputnikResource
    ) -> Iterator[dg.Output]:
        selected = [s for s in specs if asset_key(s.name) in context.selected_asset_keys]
        window = _local_window(context)
        with spool_dir(source.name, context.log, esputnik.spool_folder) as folder:
            with esputnik.open(context.log) as api:
                spooled = extract(
                    api.client,
                    source,
                    selected,
                    window=window if source.date_window else None,
                    timezone=esputnik.timezone,
                    spool_dir=folder,
                    path=esputnik.path_for(source),
                    windowing=esputnik.windowing(),
                    batch_rows=esputnik.spool_batch_rows,
                )
                stats, label = api.client.stats, api.source_label
            for item in spooled:
                item.allow_empty_days = config.allow_empty_days
                item.source = "demo" if api.is_demo else "live"
                yield dg.Output(
                    item,
                    output_name=item.dataset,
                    metadata={
                        "source": label,
                        "window": f"{window.start:%Y-%m-%d} .. {window.end:%Y-%m-%d} (local, end exclusive)"
                        if source.date_window
                        else "full scan",
                        "rows_read": item.rows,
                        "http_requests": stats.requests,
                        "http_retries": stats.retries,
                        "pages": item.read.get("pages", 0),
                        "windows_split": item.read.get("windows_split", 0),
                    },
                )

    return read_source


def build_raw_assets(
    datasets: Sequence[str], partitions_def: dg.PartitionsDefinition, backfill_policy: dg.BackfillPolicy
) -> list[dg.AssetsDefinition]:
    """The raw assets for the chosen datasets (the export's "check the boxes"), one multi-asset per source."""
    by_source: dict[str, list[DatasetSpec]] = {}
    for name in datasets:
        by_source.setdefault(DATASETS[name].source.name, []).append(DATASETS[name])
    return [
        build_source_asset(specs[0].source, specs, partitions_def, backfill_policy) for specs in by_source.values()
    ]
