"""Smoke test of the local BigQuery emulator with the project's real google-cloud-bigquery client.

Covers what the BigQuery warehouse relies on: DDL with JSON / REPEATED / DAY partitioning /
clustering / descriptions, Parquet loads written by polars, Arrow reads without the Storage
API, a parameterised multi-statement transaction, MERGE, ALTER TABLE ADD COLUMN, table
metadata and QUALIFY.

Skipped when the emulator is not installed (``bash .ci/install-bigquery-emulator``), unless
``ESPUTNIK_REQUIRE_BQ_EMULATOR=1``, which turns the skip into a failure (for CI).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from esputnik_assets_tests.bigquery_emulator import BigQueryEmulator

bigquery = pytest.importorskip("google.cloud.bigquery")
pytestmark = pytest.mark.slow  # the emulator's own features: the fast tier's BigQuery smoke tests go through them

UTC = dt.timezone.utc
DATASET = "smoke"
_names = itertools.count()


@pytest.fixture(scope="module")
def client(bq_emulator: BigQueryEmulator):
    client = bq_emulator.client()
    client.create_dataset(DATASET, exists_ok=True)
    yield client
    client.close()


def _schema() -> list:
    return [
        bigquery.SchemaField("id", "INT64", mode="REQUIRED", description="contact id"),
        bigquery.SchemaField("name", "STRING", description="display name"),
        bigquery.SchemaField("amount", "FLOAT64"),
        bigquery.SchemaField("ts", "TIMESTAMP", mode="REQUIRED", description="event time"),
        bigquery.SchemaField("payload", "JSON"),
        bigquery.SchemaField("tags", "INT64", mode="REPEATED"),
    ]


def _new_table(client, prefix: str = "events") -> str:
    table_id = f"{client.project}.{DATASET}.{prefix}_{next(_names)}"
    table = bigquery.Table(table_id, schema=_schema())
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="ts")
    table.clustering_fields = ["name", "id"]
    client.create_table(table)
    return table_id


def _frame(ids: list[int], day: int = 1) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "id": ids,
            "name": [f"n{i}" if i % 2 else None for i in ids],
            "amount": [i * 1.5 for i in ids],
            "ts": [dt.datetime(2026, 1, day + k, 10, 30, tzinfo=UTC) for k in range(n)],
            "payload": [json.dumps({"id": i, "tags": [i, i + 1]}) for i in ids],
            "tags": [list(range(i % 3)) for i in ids],
        },
        schema={
            "id": pl.Int64,
            "name": pl.String,
            "amount": pl.Float64,
            "ts": pl.Datetime("us", "UTC"),
            "payload": pl.String,  # a plain Parquet string loads into the JSON column
            "tags": pl.List(pl.Int64),
        },
    )


def _load(client, frame: pl.DataFrame, table_id: str, tmp_path: Path) -> int:
    path = tmp_path / f"load_{next(_names)}.parquet"
    frame.write_parquet(path)
    job_config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
    )
    # The emulator loads List(Int64) into REPEATED INT64 with or without this; real
    # BigQuery needs it, or the Parquet LIST arrives as a RECORD `list.element`.
    parquet_options = bigquery.ParquetOptions()
    parquet_options.enable_list_inference = True
    job_config.parquet_options = parquet_options
    with path.open("rb") as handle:
        job = client.load_table_from_file(handle, table_id, job_config=job_config)
    job.result(timeout=60)
    return job.output_rows


def _arrow(client, sql: str, params: list | None = None) -> pa.Table:
    job_config = bigquery.QueryJobConfig(query_parameters=params or [])
    return client.query(sql, job_config=job_config).to_arrow(create_bqstorage_client=False)


def test_ddl_and_table_metadata(client) -> None:
    table_id = _new_table(client)
    table = client.get_table(table_id)
    fields = {f.name: (f.field_type, f.mode, f.description) for f in table.schema}
    assert fields == {
        "id": ("INTEGER", "REQUIRED", "contact id"),
        "name": ("STRING", "NULLABLE", "display name"),
        "amount": ("FLOAT", "NULLABLE", None),
        "ts": ("TIMESTAMP", "REQUIRED", "event time"),
        "payload": ("JSON", "NULLABLE", None),
        "tags": ("INTEGER", "REPEATED", None),
    }
    assert table.time_partitioning.type_ == "DAY"
    assert table.time_partitioning.field == "ts"
    assert table.clustering_fields == ["name", "id"]

    # the same through GoogleSQL DDL
    client.query(
        f"CREATE TABLE `{client.project}.{DATASET}.ddl_{next(_names)}` ("
        " id INT64 NOT NULL OPTIONS(description='contact id'), ts TIMESTAMP, payload JSON, tags ARRAY<INT64>"
        ") PARTITION BY DATE(ts) CLUSTER BY id"
    ).result()


def test_parquet_load_and_arrow_read(client, tmp_path: Path) -> None:
    table_id = _new_table(client)
    assert _load(client, _frame([1, 2, 3]), table_id, tmp_path) == 3
    assert _load(client, _frame([4]), table_id, tmp_path) == 1  # WRITE_APPEND

    result = _arrow(client, f"SELECT * FROM `{table_id}` ORDER BY id")
    assert result.column_names == ["id", "name", "amount", "ts", "payload", "tags"]
    types = {f.name: f.type for f in result.schema}
    assert types["id"] == pa.int64()
    assert types["name"] == pa.string()
    assert types["amount"] == pa.float64()
    assert types["ts"] == pa.timestamp("us", tz="UTC")
    assert types["payload"] == pa.string()  # JSON comes back as text (extension google:sqlType:json)
    assert types["tags"] == pa.list_(pa.int64())
    rows = result.to_pylist()
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["name"] == "n1" and rows[1]["name"] is None
    assert rows[2]["amount"] == 4.5
    assert rows[1]["ts"] == dt.datetime(2026, 1, 2, 10, 30, tzinfo=UTC)
    assert json.loads(rows[2]["payload"]) == {"id": 3, "tags": [3, 4]}
    assert [r["tags"] for r in rows] == [[0], [0, 1], [], [0]]
    assert client.get_table(table_id).num_rows == 4

    # JSON is queryable as JSON, not just stored text
    jv = _arrow(client, f"SELECT JSON_VALUE(payload, '$.id') AS v FROM `{table_id}` WHERE id = 2")
    assert jv.to_pylist() == [{"v": "2"}]


def test_parameterised_transaction_replaces_a_window(client, tmp_path: Path) -> None:
    table_id = _new_table(client)
    staging_id = _new_table(client, "staging")
    _load(client, _frame([1, 2, 3], day=1), table_id, tmp_path)  # days 1, 2, 3
    _load(client, _frame([20, 30], day=2), staging_id, tmp_path)  # days 2, 3

    job = client.query(
        f"""
        BEGIN TRANSACTION;
        DELETE FROM `{table_id}` WHERE ts >= @a AND ts < @b;
        INSERT INTO `{table_id}` (id, name, amount, ts, payload, tags)
          SELECT id, name, amount, ts, payload, tags FROM `{staging_id}` WHERE ts >= @a AND ts < @b;
        COMMIT TRANSACTION;
        """,
        job_config=bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("a", "TIMESTAMP", dt.datetime(2026, 1, 2, tzinfo=UTC)),
                bigquery.ScalarQueryParameter("b", "TIMESTAMP", dt.datetime(2026, 1, 4, tzinfo=UTC)),
            ]
        ),
    )
    job.result(timeout=60)
    ids = _arrow(client, f"SELECT id FROM `{table_id}` ORDER BY id").column("id").to_pylist()
    assert ids == [1, 20, 30]

    # an error inside the transaction rolls it back
    with pytest.raises(Exception):
        client.query(
            f"BEGIN TRANSACTION; DELETE FROM `{table_id}` WHERE TRUE; SELECT ERROR('boom'); COMMIT TRANSACTION;"
        ).result(timeout=60)
    assert _arrow(client, f"SELECT COUNT(*) AS n FROM `{table_id}`").to_pylist() == [{"n": 3}]


def test_merge(client, tmp_path: Path) -> None:
    table_id = _new_table(client)
    staging_id = _new_table(client, "staging")
    _load(client, _frame([1, 2]), table_id, tmp_path)
    _load(client, _frame([2, 3]), staging_id, tmp_path)
    job = client.query(
        f"""
        MERGE `{table_id}` T USING `{staging_id}` S ON T.id = S.id
        WHEN MATCHED THEN UPDATE SET name = 'updated', amount = S.amount + @bump
        WHEN NOT MATCHED THEN INSERT (id, name, amount, ts, payload, tags)
          VALUES (S.id, S.name, S.amount, S.ts, S.payload, S.tags)
        """,
        job_config=bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("bump", "FLOAT64", 1.0)]),
    )
    job.result(timeout=60)
    assert job.num_dml_affected_rows == 2
    rows = _arrow(client, f"SELECT id, name, amount FROM `{table_id}` ORDER BY id").to_pylist()
    assert rows == [
        {"id": 1, "name": "n1", "amount": 1.5},
        {"id": 2, "name": "updated", "amount": 4.0},  # 2 * 1.5 + @bump
        {"id": 3, "name": "n3", "amount": 4.5},
    ]


def test_alter_table_add_column(client, tmp_path: Path) -> None:
    table_id = _new_table(client)
    _load(client, _frame([1]), table_id, tmp_path)
    client.query(
        f"ALTER TABLE `{table_id}` ADD COLUMN IF NOT EXISTS source STRING, ADD COLUMN labels ARRAY<STRING>"
    ).result()
    # OPTIONS(description=...) in ADD COLUMN is dropped by the emulator: set it separately
    client.query(f"ALTER TABLE `{table_id}` ALTER COLUMN source SET OPTIONS (description='origin')").result()
    table = client.get_table(table_id)
    fields = {f.name: (f.field_type, f.mode, f.description) for f in table.schema}
    assert fields["source"] == ("STRING", "NULLABLE", "origin")
    assert fields["labels"] == ("STRING", "REPEATED", None)
    assert table.time_partitioning.field == "ts" and table.clustering_fields == ["name", "id"]
    rows = _arrow(client, f"SELECT id, source, labels FROM `{table_id}`").to_pylist()
    assert rows == [{"id": 1, "source": None, "labels": []}]


def test_qualify_row_number(client, tmp_path: Path) -> None:
    table_id = _new_table(client)
    _load(client, _frame([1, 2]), table_id, tmp_path)
    _load(client, _frame([1, 2], day=5), table_id, tmp_path)  # later duplicates
    rows = _arrow(
        client,
        f"SELECT id, ts FROM `{table_id}` QUALIFY ROW_NUMBER() OVER (PARTITION BY id ORDER BY ts DESC) = 1 ORDER BY id",
    ).to_pylist()
    assert rows == [
        {"id": 1, "ts": dt.datetime(2026, 1, 5, 10, 30, tzinfo=UTC)},
        {"id": 2, "ts": dt.datetime(2026, 1, 6, 10, 30, tzinfo=UTC)},
    ]


def test_bigquery_emulator_host_env_is_honoured(bq_emulator: BigQueryEmulator, monkeypatch) -> None:
    # google-cloud-bigquery reads BIGQUERY_EMULATOR_HOST when no api_endpoint is given;
    # credentials must still be passed (it does not skip google.auth.default()).
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bq_emulator.host)
    client = bigquery.Client(project=bq_emulator.project, credentials=AnonymousCredentials())
    assert client._connection.API_BASE_URL == bq_emulator.host
    assert client.query_and_wait("SELECT 1 AS one").to_arrow(create_bqstorage_client=False).to_pylist() == [
        {"one": 1}
    ]
