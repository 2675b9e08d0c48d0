"""The demo account plugged into the eSputnik resource: the code location uses this resource when it is loaded for
the demo (ESPUTNIK_DEMO), so `source/` never imports the demo and a live account's runs never load it."""

from __future__ import annotations

import contextlib

from pydantic import Field

from esputnik_assets.demo.account import DemoAccount
from esputnik_assets.demo.server import DemoServer
from esputnik_assets.demo.shared import run_demo_server
from esputnik_assets.source.resource import EsputnikResource


class DemoEsputnikResource(EsputnikResource):
    """EsputnikResource that can serve the built-in synthetic account (chosen with `demo_account: true`)."""

    demo_contacts: int = 2_000
    demo_activities_per_day: int = 5_000
    demo_orders_per_day: int = 120
    demo_events_per_day: int = 1_500
    demo_broken_days: list[str] = Field(
        default_factory=list,
        description="Demo days served broken to see the checks fail, e.g. ['2026-11-20=empty'] (ESPUTNIK_DEMO_BROKEN_DAYS)",
    )

    def demo(self) -> DemoAccount:
        """The account these settings describe (deterministic: the same settings serve the same rows)."""
        return DemoAccount(
            contacts=self.demo_contacts,
            activities_per_day=self.demo_activities_per_day,
            orders_per_day=self.demo_orders_per_day,
            events_per_day=self.demo_events_per_day,
            broken_days=tuple(tuple(day.split("=", 1)) for day in self.demo_broken_days),
        )

    def demo_endpoint(self, run_id: str | None, stack: contextlib.ExitStack) -> tuple[str, str, bool]:
        """The run's shared demo server when `run_id` is given (started by its first step); outside a run (a script,
        the doctor) a server for the caller's block only."""
        if run_id is None:
            server = stack.enter_context(DemoServer(self.demo()))
            return server.url, server.api_key, True
        return run_demo_server(self.demo(), run_id, self.spool_folder)
