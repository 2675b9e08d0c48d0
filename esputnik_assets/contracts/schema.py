"""Column contracts of the nine export tables, loaded from the packaged copy of the spec's datasets.csv."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import polars as pl

from esputnik_assets.column_types import COLUMN_TYPES

DATASET_NAMES: tuple[str, ...] = (
    "broadcasts",
    "contactActivities",
    "contacts",
    "devices",
    "events",
    "messages",
    "orderItems",
    "orders",
    "revenue",
)

# Contract columns whose values are several ints (the export keeps every segment id of a broadcast).
REPEATED_COLUMNS: frozenset[tuple[str, str]] = frozenset({("broadcasts", "groupId")})


@dataclass(frozen=True)
class Column:
    """One export column exactly as datasets.csv states it."""

    dataset: str
    name: str
    type: str
    repeated: bool
    deprecated_alias_of: str | None
    allowed_values: tuple[str, ...]
    description: str

    @property
    def polars_type(self) -> pl.DataType:
        base = COLUMN_TYPES[self.type].polars
        return pl.List(base) if self.repeated else base


@dataclass(frozen=True)
class DatasetContract:
    """The ordered columns of one export table."""

    name: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.polars_type for c in self.columns})

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


def _read_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def load_contracts() -> dict[str, DatasetContract]:
    """All nine contracts, columns in datasets.csv order."""
    text = resources.files("esputnik_assets.contracts").joinpath("datasets.csv").read_text("utf-8")
    by_dataset: dict[str, list[Column]] = {name: [] for name in DATASET_NAMES}
    for row in _read_rows(text):
        dataset = row["dataset"]
        if dataset not in by_dataset:
            raise ValueError(f"datasets.csv names an unknown dataset {dataset!r}")
        if row["type"] not in COLUMN_TYPES:
            raise ValueError(f"datasets.csv: {dataset}.{row['column']} has unknown type {row['type']!r}")
        by_dataset[dataset].append(
            Column(
                dataset=dataset,
                name=row["column"],
                type=row["type"],
                repeated=(dataset, row["column"]) in REPEATED_COLUMNS,
                deprecated_alias_of=row["deprecated_alias_of"] or None,
                allowed_values=tuple(v for v in row["allowed_values"].split("|") if v),
                description=row["description"],
            )
        )
    return {name: DatasetContract(name, tuple(cols)) for name, cols in by_dataset.items()}
