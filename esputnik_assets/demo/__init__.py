"""The synthetic demo source: a deterministic fake eSputnik account served over HTTP on loopback.

Clearly separate from the pipeline: it exists for tests, benchmarks and the `esputnik-sandbox` command, and is
never used against (or mixed with) a live eSputnik account.
"""

from esputnik_assets.demo.account import DemoAccount
from esputnik_assets.demo.server import DemoServer, FaultPlan

__all__ = ["DemoAccount", "DemoServer", "FaultPlan"]
