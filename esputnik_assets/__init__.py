"""eSputnik's "Export to BigQuery" datasets as a Dagster asset graph (see README.md).

`defs` is loaded on first access (PEP 562), so that the pipeline's building blocks (client, shaping, warehouse,
demo account) import without Dagster and its integrations; Dagster finds it through `dir()` as usual.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "defs":
        from esputnik_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'esputnik_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return ["defs"]
