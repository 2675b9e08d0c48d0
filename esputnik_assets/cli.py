"""`esputnik-assets`: the operator's commands: `doctor`, the preflight; `dev`, `dagster dev` on the project's home."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

import dagster as dg

# `dagster dev` warns on start that `dg dev` supersedes it; this project is no `dg` project, so the hint cannot be
# followed. Dagster emits it before any of our code runs, so exactly that warning is ignored through the environment.
DG_DEV_HINT_FILTER = "ignore:Function `dev_command` is superseded:FutureWarning"


def doctor(env: Mapping[str, str]) -> int:
    """Check every variable, then run every preflight check with the resources Definitions builds from them; 1 when
    something blocks (a variable Definitions would refuse, too)."""
    from esputnik_assets.definitions import build_definitions
    from esputnik_assets.doctor import Check, Status, blocked, report, run_checks
    from esputnik_assets.keys import IO_MANAGER_KEY
    from esputnik_assets.settings import Settings, SettingsError

    try:
        settings = Settings.from_environ(env)
    except SettingsError as exc:
        checks = [
            Check(f"setting {problem.variable}", Status.FAIL, problem.message, "fix it (README, Configuration)")
            for problem in exc.problems
        ]
    else:
        account = "the built-in demo account" if settings.demo_account else "a live account"
        checks = [Check("settings", Status.OK, f"{account}, warehouse {settings.warehouse}, "
                        f"{len(settings.datasets)} dataset(s): {', '.join(settings.datasets)}")]  # fmt: skip
        with dg.build_resources(build_definitions(settings).resources) as ready:
            checks += run_checks(settings, ready.esputnik, getattr(ready, IO_MANAGER_KEY))
    print("\n".join(report(checks)), flush=True)
    return 1 if blocked(checks) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="esputnik-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "doctor", help="check the key, each dataset's endpoint, the time zone and the warehouse; exit 1 if blocked"
    )
    commands.add_parser(  # every option (-h host, -p port, ...) is dagster dev's own
        "dev", add_help=False, help="dagster dev with DAGSTER_HOME defaulting to ./.dagster_home; options pass through"
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "dev":
        from esputnik_assets.home import exec_dagster_dev

        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, (os.environ.get("PYTHONWARNINGS"), DG_DEV_HINT_FILTER)))
        exec_dagster_dev(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return doctor(os.environ)


if __name__ == "__main__":
    sys.exit(main())
