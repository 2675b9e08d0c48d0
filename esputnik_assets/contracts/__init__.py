"""The export's table contracts, read from datasets.csv (the single source of truth for columns and types)."""

from esputnik_assets.contracts.schema import (
    DATASET_NAMES,
    Column,
    DatasetContract,
    load_contracts,
)

__all__ = ["DATASET_NAMES", "Column", "DatasetContract", "load_contracts"]
