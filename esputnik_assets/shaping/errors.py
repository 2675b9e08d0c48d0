"""Errors that name the dataset, field and value, so a person can find the bad row at the source."""

from __future__ import annotations


class ShapingError(ValueError):
    """An answer that cannot become export rows."""


class BadValueError(ShapingError):
    """A value that does not parse as its contract type (a bad date, a string where an int belongs)."""

    def __init__(self, dataset: str, field: str, value: object, expected: str, bad_rows: int) -> None:
        self.dataset, self.field, self.value, self.expected, self.bad_rows = dataset, field, value, expected, bad_rows
        more = f" ({bad_rows - 1} more bad value(s) in the same batch)" if bad_rows > 1 else ""
        super().__init__(f"{dataset}: field {field!r} has value {value!r}, which is not a valid {expected}{more}")


class MissingKeyError(ShapingError):
    """Rows whose key field is null or missing: stored, they would merge into one row, so the read stops instead."""

    def __init__(self, dataset: str, field: str, bad_rows: int, rows: int) -> None:
        self.dataset, self.field, self.bad_rows = dataset, field, bad_rows
        super().__init__(
            f"{dataset}: key field {field!r} is null or missing in {bad_rows} of {rows} row(s) of the batch; rows "
            "without their key cannot be told apart (they would be merged into one), so nothing of this read was written"
        )


class AnswerFormatError(ShapingError):
    """An answer that is not a JSON array of objects."""

    def __init__(self, dataset: str, detail: str) -> None:
        self.dataset, self.detail = dataset, detail
        super().__init__(f"{dataset}: the API answer is not a JSON array of rows: {detail}")
