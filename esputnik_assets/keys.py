"""The names the raw and metric tables go by in Dagster, in one neutral place every layer may import (assets, doctor,
metrics): one `AccountNames` per account, so several accounts live side by side in one code location."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

RAW_GROUP = "esputnik"
RAW_KEY_PREFIX = "esputnik"
IO_MANAGER_KEY = "warehouse_io_manager"
ACCOUNT_TAG = "esputnik/account"  # on each account's runs and read steps: a tag concurrency limit can key on it


@dataclass(frozen=True)
class AccountNames:
    """Every Dagster name of one account: asset keys and groups, job, schedule, sensor and op names, resource keys
    and the API pool. The single account of the plain environment keeps the names it always had (`esputnik/<table>`);
    account `shop_ua` of an accounts file is `esputnik_shop_ua/<table>`, its metrics `esputnik_shop_ua_metrics/...`."""

    account: str | None = None  # None: the single account of ESPUTNIK_API_KEY & co

    @property
    def raw_prefix(self) -> str:
        """The raw tables' key prefix, group and (for an account of the file) schema / dataset."""
        return RAW_KEY_PREFIX if self.account is None else f"{RAW_KEY_PREFIX}_{self.account}"

    @property
    def raw_group(self) -> str:
        return RAW_GROUP if self.account is None else self.raw_prefix

    @property
    def metrics_prefix(self) -> str:
        """The metric tables' key prefix and group: `esputnik_metrics`, or `esputnik_<name>_metrics`."""
        return f"{self.raw_prefix}_metrics"

    @property
    def label(self) -> str:
        """How messages name the account."""
        return "the account" if self.account is None else f"account {self.account}"

    def raw(self, dataset: str) -> dg.AssetKey:
        """The asset key of a raw table."""
        return dg.AssetKey([self.raw_prefix, dataset])

    def metric(self, name: str) -> dg.AssetKey:
        """The asset key of a metric table."""
        return dg.AssetKey([self.metrics_prefix, name])

    def named(self, base: str) -> str:
        """A job, schedule, sensor or op name of this account: `esputnik_daily` -> `esputnik_shop_ua_daily`."""
        return self.raw_prefix + base.removeprefix(RAW_KEY_PREFIX)

    def resource(self, base: str) -> str:
        """A resource key (or pool) of this account: `esputnik` -> `esputnik_shop_ua`; the single account's as is."""
        return base if self.account is None else f"{base}_{self.account}"

    @property
    def run_tags(self) -> dict[str, str]:
        return {} if self.account is None else {ACCOUNT_TAG: self.account}


SINGLE_ACCOUNT = AccountNames()


def raw_asset_key(dataset: str) -> dg.AssetKey:
    """The asset key of a raw table of the single account: `esputnik/<dataset>`."""
    return SINGLE_ACCOUNT.raw(dataset)
