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
    """Run every preflight check with the resources Definitions builds from `env`; 1 when something blocks."""
    from esputnik_assets.definitions import Settings, SettingsError, build_resources
    from esputnik_assets.doctor import Check, Status, blocked, report, run_checks
    from esputnik_assets.keys import IO_MANAGER_KEY

    try:
        settings = Settings.from_environ(env)
        resources = build_resources(env, settings)
    except SettingsError as exc:
        checks = [Check("settings", Status.FAIL, str(exc), "fix the variable named above (README, Configuration)")]
    else:
        account = "the built-in demo account" if settings.demo_account else "a live account"
        checks = [Check("settings", Status.OK, f"{account}, warehouse {settings.warehouse}, "
                        f"{len(settings.datasets)} dataset(s): {', '.join(settings.datasets)}")]  # fmt: skip
        with dg.build_resources(resources) as ready:
            checks += run_checks(ready.esputnik, getattr(ready, IO_MANAGER_KEY), settings.datasets)
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
