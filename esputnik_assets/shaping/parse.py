"""Vectorised, checked parsing of API pages: JSON bytes straight into polars, then strict typed casts."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from datetime import timedelta

import polars as pl
import polars.exceptions as plx

from esputnik_assets.shaping.errors import AnswerFormatError, BadValueError

# Answer date-times: `YYYY-MM-DDTHH:mm:ss`, sometimes with milliseconds.
ANSWER_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.f"
TEXT_LABEL = "text (a NUL character, or a lone UTF-16 surrogate escape such as \\ud800 read as one, is not text)"


def read_page(body: bytes, dataset: str, answer_schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Parse one answer page; scalar fields arrive as text so that a wrong type is reported, not coerced."""
    head = body.lstrip()[:1]
    if head != b"[":
        preview = body[:80].decode("utf-8", errors="replace")
        raise AnswerFormatError(dataset, f"expected '[' but the answer starts with {preview!r}")
    try:
        frame = pl.read_json(io.BytesIO(body), schema=dict(answer_schema))
    except (plx.ComputeError, plx.PolarsError, ValueError) as exc:
        raise AnswerFormatError(dataset, str(exc).splitlines()[0]) from exc
    _refuse_nul_characters(frame, dataset)
    return frame


def string_values(frame: pl.DataFrame) -> Iterator[tuple[str, pl.Series]]:
    """Every text value of a page as one flat series per field (`items.name` for nested ones), for checks that must
    see all text a server sent, however deep it sits."""
    for column in frame.get_columns():
        yield from _strings_of(column.name, column)


def _strings_of(name: str, values: pl.Series) -> Iterator[tuple[str, pl.Series]]:
    dtype = values.dtype
    if dtype == pl.String():
        yield name, values
    elif isinstance(dtype, pl.List):
        yield from _strings_of(name, values.explode())
    elif isinstance(dtype, pl.Struct):
        for inner in dtype.fields:
            yield from _strings_of(f"{name}.{inner.name}", values.struct.field(inner.name))


def _refuse_nul_characters(frame: pl.DataFrame, dataset: str) -> None:
    """NUL is no character of real text, and a lone UTF-16 surrogate escape (`"\\ud800"`) is read as one: either
    would be stored as a silently different value, so both are bad values."""
    for field, values in string_values(frame):
        holds_nul = values.str.contains("\x00", literal=True)
        bad = int(holds_nul.sum())
        if bad:
            raise BadValueError(dataset, field, values.filter(holds_nul)[0], TEXT_LABEL, bad)


def _first_failure(raw: pl.Series, parsed: pl.Series) -> tuple[object, int] | None:
    failed = raw.is_not_null() & parsed.is_null()
    bad = int(failed.sum())
    if bad == 0:
        return None
    return raw.filter(failed)[0], bad


def cast_checked(frame: pl.DataFrame, dataset: str, field: str, dtype: pl.DataType, timezone: str) -> pl.Series:
    """Cast one text column to its contract type; the first value that fails is named in the error."""
    raw = frame.get_column(field)
    base = dtype.inner if isinstance(dtype, pl.List) else dtype
    if isinstance(dtype, pl.List):
        parsed = raw.cast(pl.List(base), strict=False)
        exploded_raw, exploded = raw.explode(), parsed.explode()
        failure = _first_failure(exploded_raw, exploded)
    elif isinstance(base, pl.Datetime):
        parsed = parse_local_datetimes(raw, timezone)
        failure = _first_failure(raw, parsed)
    else:
        parsed = raw if base == pl.String() else raw.cast(base, strict=False)
        if base == pl.Float64():  # "NaN", "Infinity" and "1e400" cast to numbers no warehouse sum survives
            parsed = pl.select(pl.when(parsed.is_finite()).then(parsed)).to_series()
        failure = _first_failure(raw, parsed)
    if failure is not None:
        value, bad_rows = failure
        raise BadValueError(dataset, field, value, _type_label(dtype, timezone), bad_rows)
    return parsed.alias(field)


def parse_local_datetimes(raw: pl.Series, timezone: str) -> pl.Series:
    """Naive account-local answer times -> true UTC instants, read as Python's zoneinfo reads them (PEP 495, fold=0).

    A repeated hour (clocks going back) is its first occurrence; a skipped hour (clocks going forward) keeps the
    offset from before the jump, so 03:30 on a spring-forward night is 04:30 on the new clock.
    """
    naive = raw.str.strptime(pl.Datetime("us"), ANSWER_DATETIME_FORMAT, strict=False)
    local = naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
    skipped = local.is_null() & naive.is_not_null()
    if not skipped.any():
        return local
    before_jump = (naive - timedelta(hours=3)).dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    offset = before_jump.dt.base_utc_offset() + before_jump.dt.dst_offset()
    shifted = (naive - offset).dt.replace_time_zone("UTC")
    return pl.select(pl.when(skipped).then(shifted).otherwise(local)).to_series().alias(raw.name)


def _type_label(dtype: pl.DataType, timezone: str) -> str:
    if isinstance(dtype, pl.List):
        return f"list of {_type_label(dtype.inner, timezone)}"
    if isinstance(dtype, pl.Datetime):
        return f"date-time YYYY-MM-DDTHH:mm:ss[.fff] in time zone {timezone}"
    return {pl.Int64(): "integer", pl.Float64(): "finite number"}.get(dtype, str(dtype))
