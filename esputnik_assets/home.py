"""The project-local Dagster home: `.dagster_home/` in the working folder, shared by the quick start and the UI.

Without DAGSTER_HOME, `dagster dev` keeps its runs in a temporary folder deleted on exit and a run made in-process
leaves no history, so a new user's first run never shows in the UI. Both `esputnik-demo-run` and
`esputnik-assets dev` therefore use `.dagster_home/` when DAGSTER_HOME is unset; a DAGSTER_HOME the user set wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import NoReturn

LOCAL_HOME = ".dagster_home"
# Run retries are an instance setting: a run that fails (a worker crash, or an asset failing after its own
# retries) is retried from the failure up to twice. Written only into a home this project creates.
INSTANCE_CONFIG = """\
# Written by esputnik-assets for the project-local Dagster home; edit freely, it is not overwritten.
run_retries:
  enabled: true
  max_retries: 2
"""


def ensure_dagster_home(env: MutableMapping[str, str], cwd: Path | None = None) -> Path:
    """DAGSTER_HOME if set, else `<cwd>/.dagster_home` (created, with run retries on), exported into `env`."""
    if env.get("DAGSTER_HOME"):
        return Path(env["DAGSTER_HOME"])
    home = (cwd or Path.cwd()).resolve() / LOCAL_HOME
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_CONFIG)
    env["DAGSTER_HOME"] = str(home)
    return home


def dagster_executable(name: str = "dagster") -> str:
    """The Dagster command installed next to this interpreter (the project's virtualenv), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def exec_dagster_dev(args: list[str]) -> NoReturn:
    """Replace this process with `dagster dev` on the project-local home (so Ctrl-C reaches Dagster directly)."""
    home = ensure_dagster_home(os.environ)
    print(f"Dagster home (runs, schedules, backfills): {home}", file=sys.stderr, flush=True)
    executable = dagster_executable()
    os.execvp(executable, [executable, "dev", *args])
