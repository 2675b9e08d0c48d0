"""One demo server per run: the steps of a run (separate processes under Dagster's default executor) share it.

The first step of a run starts `esputnik-sandbox` as its own process, which writes its address to a file named after
the run and the account's knobs, and stops by itself after a quiet spell; later steps find the file and reuse the
server. So the demo account starts, and is announced in the log, once per run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from esputnik_assets.demo.account import DemoAccount
from esputnik_assets.processes import process_alive

IDLE_EXIT_SECONDS = 120  # a run's steps follow each other closely; a server idle this long has no run left
START_TIMEOUT_SECONDS = 60


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _arguments(account: DemoAccount) -> list[str]:
    args = [
        "--seed", str(account.seed), "--contacts", str(account.contacts),
        "--activities-per-day", str(account.activities_per_day), "--orders-per-day", str(account.orders_per_day),
        "--events-per-day", str(account.events_per_day), "--devices", str(account.devices),
        "--revision", str(account.revision),
    ]  # fmt: skip
    for day, mode in account.broken_days:
        args += ["--broken-day", f"{day}={mode}"]
    return args


def run_demo_server(account: DemoAccount, run_id: str, folder: str | None = None) -> tuple[str, str, bool]:
    """(url, api key, started now) of the run's demo server, starting it if this is the run's first step."""
    root = Path(folder or tempfile.gettempdir()) / "esputnik-assets-demo"
    root.mkdir(parents=True, exist_ok=True)
    knobs = hashlib.sha256(" ".join(_arguments(account)).encode()).hexdigest()[:12]
    ready = root / f"{run_id}-{knobs}.json"
    with _locked(root / f"{run_id}.lock"):
        if ready.is_file():
            found = json.loads(ready.read_text())
            if process_alive(found["pid"]):
                return found["url"], found["api_key"], False
            ready.unlink()
        api_key = f"demo-{run_id[:8]}"
        process = subprocess.Popen(
            [sys.executable, "-m", "esputnik_assets.demo.cli", "--port", "0", "--api-key", api_key,
             "--idle-exit", str(IDLE_EXIT_SECONDS), "--ready-file", str(ready), *_arguments(account)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready.is_file():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the demo account's server did not start (exit code {process.poll()})")
            time.sleep(0.05)
        return json.loads(ready.read_text())["url"], api_key, True
