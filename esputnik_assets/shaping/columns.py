"""Typed access to a parsed page, and the final step that fixes a frame to its contract's columns and order."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_plus

import polars as pl

from esputnik_assets.contracts import DatasetContract
from esputnik_assets.shaping.errors import ShapingError
from esputnik_assets.shaping.parse import cast_checked

UTC = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class ShapeContext:
    """What shaping needs besides the page: whose data it is and the account's time zone."""

    dataset: str
    timezone: str


class TypedPage:
    """Columns of one parsed page, cast strictly to export types; errors name dataset, field and value."""

    def __init__(self, raw: pl.DataFrame, context: ShapeContext) -> None:
        self.raw = raw
        self.context = context

    def _cast(self, field: str, dtype: pl.DataType) -> pl.Series:
        if field not in self.raw.columns:
            return pl.Series(field, [None] * self.raw.height, dtype=dtype)
        return cast_checked(self.raw, self.context.dataset, field, dtype, self.context.timezone)

    def int(self, field: str) -> pl.Series:
        return self._cast(field, pl.Int64())

    def float(self, field: str) -> pl.Series:
        return self._cast(field, pl.Float64())

    def str(self, field: str) -> pl.Series:
        return self._cast(field, pl.String())

    def timestamp(self, field: str) -> pl.Series:
        return self._cast(field, UTC)

    def int_list(self, field: str) -> pl.Series:
        return self._cast(field, pl.List(pl.Int64()))


def utm_campaign(links: pl.Series) -> pl.Series:
    """The `utm_campaign` query parameter of each link (percent-decoded), else null."""
    encoded = links.str.extract(r"[?&]utm_campaign=([^&#]*)", 1).replace("", None)
    needs_decoding = encoded.str.contains(r"[%+]").fill_null(False)
    if not needs_decoding.any():
        return encoded.alias("utmCampaign")
    decoded = [unquote_plus(v) if flag else v for v, flag in zip(encoded.to_list(), needs_decoding.to_list())]
    return pl.Series("utmCampaign", decoded, dtype=pl.String())


def conform(columns: dict[str, pl.Series], contract: DatasetContract, private: dict[str, pl.Series]) -> pl.DataFrame:
    """Exactly the contract's columns in its order and types, then private (`_`-prefixed) bookkeeping columns."""
    missing = [name for name in contract.column_names if name not in columns]
    extra = [name for name in columns if name not in contract.column_names]
    if missing or extra:
        raise ShapingError(f"{contract.name}: shaping produced missing {missing} / unexpected {extra} columns")
    frame = pl.DataFrame(
        [columns[c.name].alias(c.name).cast(c.polars_type) for c in contract.columns]
        + [series.alias(name) for name, series in private.items()]
    )
    return frame
