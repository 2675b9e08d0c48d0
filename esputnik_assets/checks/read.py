"""What the read itself learned (repeated rows, rows outside the window, re-read windows, retries), as a check result
of the step that read it: visible at a glance in the UI instead of buried in run metadata."""

from __future__ import annotations

from esputnik_assets.checks.raw import WARN, CheckThresholds, Outcome
from esputnik_assets.spool import SpooledDataset

READ_REPORT = "read_report"
READ_REPORT_DESCRIPTION = (
    "What the read met: repeated rows dropped by key, rows outside the asked window, activity windows re-read, "
    "retries and 429s. Warns when rows fell outside the window or repeats exceed the configured share."
)


def read_report(item: SpooledDataset | None, thresholds: CheckThresholds) -> Outcome:
    """The read's own figures; a run that only executes checks has nothing to report and says so."""
    if item is None:
        return Outcome(True, "no read in this run (checks only)", {}, WARN)
    duplicates = int(item.read.get("duplicates_dropped", 0))
    metadata: dict[str, object] = {
        "rows_read": item.rows,
        "duplicates_dropped": duplicates,
        "out_of_window_rows": item.out_of_window_rows,
        "windows_split": item.read.get("windows_split", 0),
        "http_retries": item.read.get("http_retries", 0),
        "http_429": item.read.get("http_429", 0),
    }
    problems = []
    if item.out_of_window_rows:
        problems.append(f"{item.out_of_window_rows} row(s) answered outside the asked window (left for their own day)")
    if item.rows and duplicates / item.rows > thresholds.duplicate_warn_share:
        problems.append(f"{duplicates} of {item.rows} rows read were repeats (over {thresholds.duplicate_warn_share:.0%})")
    if problems:
        return Outcome(False, "; ".join(problems), metadata, WARN)
    return Outcome(True, f"{item.rows} rows read, {duplicates} repeats dropped", metadata, WARN)

