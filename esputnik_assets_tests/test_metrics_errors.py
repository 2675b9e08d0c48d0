"""Errors that leave a step hold no form of a registered key: the guard itself, and a metric asset failing for real."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from esputnik_assets import redaction
from esputnik_assets.metrics.assets import build_metric_assets
from esputnik_assets.metrics.resource import DuckDBMetricsWarehouse
from esputnik_assets.metrics.wiring import ALL_METRICS
from esputnik_assets.step_errors import redacted_errors

KEY = "fake-key-7Qx9+step=errors"
BASIC = base64.b64encode(f":{KEY}".encode()).decode()  # the Basic-auth header's form


@pytest.fixture(autouse=True)
def registered_key() -> None:
    redaction.register_secret(KEY)


def _forms(text: str) -> list[str]:
    return [form for form in redaction.secret_forms(KEY) if form in text]


def _assert_clean_and_unchained(failure: BaseException) -> None:
    assert isinstance(failure, dg.Failure)
    text = f"{failure.description}\n{failure.metadata['error'].value}"
    assert _forms(text) == [] and redaction.MASK in text
    assert (failure.__cause__, failure.__context__, failure.__suppress_context__) == (None, None, True)


def test_an_error_holding_a_key_form_leaves_as_a_redacted_unchained_failure() -> None:
    @redacted_errors
    def compute() -> None:
        try:
            raise ConnectionError(f"server echoed Authorization: Basic {BASIC}")
        except ConnectionError as cause:
            raise RuntimeError("the warehouse refused the rows") from cause  # the key is only in the cause

    with pytest.raises(dg.Failure) as caught:
        compute()
    _assert_clean_and_unchained(caught.value)
    assert caught.value.description == "RuntimeError: the warehouse refused the rows"
    assert "ConnectionError: server echoed Authorization: Basic ***" in caught.value.metadata["error"].value


def test_a_generator_asset_function_is_guarded_too_and_keeps_what_it_yielded() -> None:
    @redacted_errors
    def compute() -> Iterator[int]:
        yield 1
        raise ValueError(f"bad value {KEY!r} in column status")

    produced = []
    with pytest.raises(dg.Failure) as caught:
        for item in compute():
            produced.append(item)
    assert produced == [1]
    _assert_clean_and_unchained(caught.value)
    assert caught.value.description == "ValueError: bad value '***' in column status"


def test_an_error_without_a_key_form_leaves_untouched() -> None:
    error = KeyError("orders.totalCost")

    @redacted_errors
    def compute() -> None:
        raise error

    with pytest.raises(KeyError) as caught:
        compute()
    assert caught.value is error


def test_a_failing_metric_asset_reports_the_engines_error_redacted(tmp_path: Path) -> None:
    """A real DuckDB error quoting a path that holds the key (a folder where the file should be) leaves redacted."""
    path = tmp_path / f"warehouse-{KEY}"
    path.mkdir()
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01")
    daily_sales = [m for m in ALL_METRICS if m.name == "daily_sales"]
    reads = ("orders", "orderItems", "revenue")
    assets = build_metric_assets(daily_sales, reads, partitions, dg.BackfillPolicy.single_run())
    result = dg.materialize(
        assets, partition_key="2026-03-02", raise_on_error=False,
        resources={"metrics_warehouse": DuckDBMetricsWarehouse(path=str(path))},
    )  # fmt: skip
    assert not result.success
    [event] = result.get_step_failure_events()
    error, texts = event.event_specific_data.error, []
    while error is not None:
        texts.append(error.to_string())
        error = error.cause or error.context
    failure = event.event_specific_data.user_failure_data  # what the UI shows as the failure's description
    texts += [failure.description, str(failure.metadata)] if failure else []
    everything = "\n".join(texts)
    assert "Is a directory" in everything and _forms(everything) == []
    assert failure is not None and redaction.MASK in failure.description
    assert not result.get_asset_materialization_events()
