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


def doctor(env: Mapping[str, str], account: str | None = None) -> int:
    """Check every variable, then run every preflight check with the resources Definitions builds from them, for
    each account (or only `account`), one block each; 1 when something blocks (a variable Definitions would refuse,
    too)."""
    from esputnik_assets.definitions import build_definitions
    from esputnik_assets.doctor import Check, Status, blocked, report, run_checks
    from esputnik_assets.keys import IO_MANAGER_KEY, AccountNames
    from esputnik_assets.settings import Settings, SettingsError

    try:
        settings = Settings.from_environ(env)
    except SettingsError as exc:
        checks = [
            Check(f"setting {problem.variable}", Status.FAIL, problem.message, "fix it (README, Configuration)")
            for problem in exc.problems
        ]
        print("\n".join(report(checks)), flush=True)
        return 1
    accounts = [s for s in settings.per_account() if account in (None, s.account)]
    if not accounts:
        known = ", ".join(a.name for a in settings.accounts) or "none: ESPUTNIK_ACCOUNTS_FILE is not set"
        print(f"No account {account!r} (accounts: {known})", file=sys.stderr, flush=True)
        return 2
    resources = build_definitions(settings).resources
    failed = False
    for one in accounts:
        names = AccountNames(one.account)
        source = "the built-in demo account" if one.demo_account else "a live account"
        checks = [Check("settings", Status.OK, f"{source}, warehouse {one.warehouse}, {len(one.datasets)} "
                        f"dataset(s): {', '.join(one.datasets)}")]  # fmt: skip
        mine = {key: resources[key] for key in (names.resource("esputnik"), names.resource(IO_MANAGER_KEY))}
        with dg.build_resources(mine) as ready:
            checks += run_checks(one, *(getattr(ready, key) for key in mine))
        if one.account is not None:
            print(f"== account {one.account} ({one.timezone}, schemas {one.dataset}, {one.metrics_dataset}) ==")
        print("\n".join(report(checks)), flush=True)
        failed |= blocked(checks)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="esputnik-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    doctor_command = commands.add_parser(
        "doctor", help="check the key, each dataset's endpoint, the time zone and the warehouse; exit 1 if blocked"
    )
    doctor_command.add_argument(
        "--account", help="only this account of ESPUTNIK_ACCOUNTS_FILE (default: every account, one block each)"
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
    return doctor(os.environ, args.account)


if __name__ == "__main__":
    sys.exit(main())
