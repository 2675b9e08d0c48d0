"""Time windows in the account's local wall-clock time, which is how eSputnik reads dateFrom/dateTo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

QUERY_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True, order=True)
class LocalWindow:
    """`start <= t < end` in naive account-local time (whole seconds)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty window {self.start} .. {self.end}")

    def __str__(self) -> str:  # as logs and errors show it: the query's own form
        return f"{self.start.strftime(QUERY_FORMAT)} .. {self.end.strftime(QUERY_FORMAT)}"

    @classmethod
    def for_days(cls, first: date, last_exclusive: date) -> LocalWindow:
        return cls(datetime.combine(first, time()), datetime.combine(last_exclusive, time()))

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def query(self) -> dict[str, str]:
        return {"dateFrom": self.start.strftime(QUERY_FORMAT), "dateTo": self.end.strftime(QUERY_FORMAT)}

    def split(self, parts: int = 2) -> list[LocalWindow]:
        """Equal parts on whole seconds; a one-second window cannot be split."""
        seconds = int(self.length.total_seconds())
        if seconds < 2:
            raise ValueError(f"window {self.start} .. {self.end} is too short to split")
        parts = min(parts, seconds)
        cuts = [self.start + timedelta(seconds=seconds * i // parts) for i in range(parts + 1)]
        return [LocalWindow(a, b) for a, b in zip(cuts, cuts[1:])]

    def chunks(self, size: timedelta) -> list[LocalWindow]:
        """Consecutive windows of at most `size` covering this one."""
        out, cursor = [], self.start
        while cursor < self.end:
            nxt = min(self.end, cursor + size)
            out.append(LocalWindow(cursor, nxt))
            cursor = nxt
        return out

    def days(self) -> list[date]:
        first, day = self.start.date(), []
        while datetime.combine(first, time()) < self.end:
            day.append(first)
            first += timedelta(days=1)
        return day

    def utc_bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """The instants this local window covers (an hour that does not exist locally maps to the next real one)."""
        zone = ZoneInfo(timezone)
        return (
            self.start.replace(tzinfo=zone).astimezone(ZoneInfo("UTC")),
            self.end.replace(tzinfo=zone).astimezone(ZoneInfo("UTC")),
        )
