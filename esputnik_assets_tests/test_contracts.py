"""The packaged contract is the spec's datasets.csv, and every table's column list follows from it."""

from pathlib import Path

import polars as pl
import pytest

from esputnik_assets.contracts import DATASET_NAMES, load_contracts
from esputnik_assets.specs import DATASETS

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "datasets.csv"


@pytest.mark.skipif(not SPEC.exists(), reason="shared/spec is not beside this checkout")
def test_packaged_contract_is_the_spec():
    packaged = Path(__file__).resolve().parents[1] / "esputnik_assets" / "contracts" / "datasets.csv"
    assert packaged.read_bytes() == SPEC.read_bytes()


def test_nine_tables_132_columns():
    contracts = load_contracts()
    assert tuple(contracts) == DATASET_NAMES
    assert sum(len(c.columns) for c in contracts.values()) == 132
    assert set(DATASETS) == set(DATASET_NAMES)


def test_contract_types_and_odd_names():
    contracts = load_contracts()
    assert contracts["orders"].polars_schema["Phone"] == pl.String
    assert contracts["orders"].polars_schema["Status"] == pl.String
    assert contracts["events"].polars_schema["occured"] == pl.Datetime("us", "UTC")
    assert contracts["events"].column("paramsJson").type == "json"
    assert contracts["broadcasts"].polars_schema["groupId"] == pl.List(pl.Int64)
    assert contracts["revenue"].polars_schema["workflowId"] == pl.Int64
    assert contracts["contactActivities"].polars_schema["workflowId"] == pl.String
    assert contracts["contactActivities"].column("activity").deprecated_alias_of == "activityStatus"
    assert "RECEIVED" in contracts["contactActivities"].column("activityStatus").allowed_values


def test_every_key_and_partition_column_exists():
    contracts = load_contracts()
    for spec in DATASETS.values():
        names = contracts[spec.name].column_names
        assert all(k in names or k.startswith("_") for k in spec.key), spec.name
        if spec.partition_column:
            assert contracts[spec.name].column(spec.partition_column).type == "timestamp"
