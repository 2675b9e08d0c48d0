"""A table made by an older contract gains the new column without losing rows; a changed type stops the write."""

from esputnik_assets.warehouse.io_manager import DuckDBIOManager
from esputnik_assets_tests.conftest import failure_text


def alter(pipeline, statements: list[str]) -> None:
    """Run DDL on the pipeline's own table `orders`, in the warehouse's dialect."""
    with pipeline.io_manager.open_warehouse() as warehouse:
        table = warehouse.table("orders")
        for statement in statements:
            sql = statement.format(table=table, q="\"" if isinstance(pipeline.io_manager, DuckDBIOManager) else "`")
            if isinstance(pipeline.io_manager, DuckDBIOManager):
                with warehouse.connect() as con:
                    con.execute(sql)
            else:
                warehouse._run(sql)


def test_a_new_contract_column_is_added_to_an_existing_table(pipeline):
    pipeline.run("2026-11-20", selection=["orders"])
    first_day = pipeline.table("orders")
    alter(pipeline, ["ALTER TABLE {table} DROP COLUMN {q}totalCost{q}"])  # the table as an older contract made it
    assert pipeline.run("2026-11-21", selection=["orders"]).success
    after = pipeline.table("orders")
    assert after.columns == first_day.columns  # back in place, in contract order
    kept = after.join(first_day.select("orderId"), on="orderId", how="semi")
    assert kept.height == first_day.height and kept["totalCost"].null_count() == kept.height
    assert kept.drop("totalCost").sort("orderId").equals(first_day.drop("totalCost").sort("orderId"))
    new_day = after.join(first_day.select("orderId"), on="orderId", how="anti")
    assert new_day.height > 0 and new_day["totalCost"].null_count() == 0


def test_a_column_whose_type_would_change_stops_the_write(pipeline):
    pipeline.run("2026-11-20", selection=["orders"])
    alter(pipeline, [
        "ALTER TABLE {table} DROP COLUMN {q}discount{q}",
        "ALTER TABLE {table} ADD COLUMN {q}discount{q} " + ("VARCHAR" if isinstance(pipeline.io_manager, DuckDBIOManager) else "STRING"),
    ])  # fmt: skip
    with pipeline.io_manager.open_warehouse() as warehouse:
        rows_before = warehouse.row_count("orders")
    result = pipeline.run("2026-11-21", selection=["orders"], raise_on_error=False)
    text = failure_text(result)
    assert "orders.discount is" in text and "the table was not changed" in text
    assert "DagsterExecutionHandleOutputError" not in text  # refused before the write, with the finding itself
    with pipeline.io_manager.open_warehouse() as warehouse:
        assert warehouse.row_count("orders") == rows_before
