"""A read waiting in Parquet files for the warehouse: what the source writes and every warehouse loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from esputnik_assets.source.windows import LocalWindow

SEQ_COLUMN = "_seq"  # arrival order: among rows with equal keys the latest read wins


@dataclass
class SpooledDataset:
    """One table's rows for one read, waiting in a Parquet file for the warehouse."""

    dataset: str
    parts: list[Path]  # Parquet files of one schema, in arrival order; empty when the read found no rows
    rows: int
    window: LocalWindow | None  # the local days it replaces (facts), None for a full scan (entities)
    timezone: str  # the zone of those local days and of the answer's times: the partitions' zone
    out_of_window_rows: int = 0
    read: dict[str, float] = field(default_factory=dict)  # the read's counts and seconds per phase
    allow_empty_days: bool = False  # a run may confirm that days which held rows are empty now
    allow_smaller_days: bool = False  # ... or that they really shrank beyond `max_day_drop`
    max_day_drop: float = 0.5  # how far below the stored day (and its trailing mean) a re-read day may come
    source: str = "live"  # "demo" for the built-in demo account: the warehouse keeps the two apart

    def discard(self) -> None:
        """Remove the spool files as soon as the table is written (the read's folder goes when the read ends)."""
        for part in self.parts:
            part.unlink(missing_ok=True)
