"""`esputnik-sandbox`: serve a demo account in the foreground so the pipeline can be pointed at it by hand."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from esputnik_assets.demo.account import BROKEN_DAY_MODES, DemoAccount
from esputnik_assets.demo.server import DemoServer, FaultPlan


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esputnik-sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--api-key", default="demo-key")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--contacts", type=int, default=2_000)
    parser.add_argument("--activities-per-day", type=int, default=5_000)
    parser.add_argument("--orders-per-day", type=int, default=120)
    parser.add_argument("--events-per-day", type=int, default=1_500)
    parser.add_argument("--devices", type=int, default=600)
    parser.add_argument("--revision", type=int, default=0, help="bump to simulate eSputnik changing past data")
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=None)
    parser.add_argument("--rate-5xx", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept before each answer")
    parser.add_argument("--activity-duplicate-rate", type=float, default=0.0)
    parser.add_argument("--activity-cursor-depth", type=int, default=50_000)
    parser.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS", help="stop after this long without requests")
    parser.add_argument("--ready-file", default=None, help="write {url, pid, api_key} as JSON here once serving")
    parser.add_argument(
        "--broken-day", action="append", default=[], metavar="DAY=MODE",
        help=f"serve DAY broken so the checks fail; MODE one of {', '.join(BROKEN_DAY_MODES)} (repeatable)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    account = DemoAccount(
        seed=args.seed, contacts=args.contacts, activities_per_day=args.activities_per_day,
        orders_per_day=args.orders_per_day, events_per_day=args.events_per_day, devices=args.devices,
        revision=args.revision, broken_days=tuple(tuple(b.split("=", 1)) for b in args.broken_day),
    )
    faults = FaultPlan(
        seed=args.seed, rate_429=args.rate_429, retry_after=args.retry_after, rate_5xx=args.rate_5xx,
        latency=args.latency, activity_duplicate_rate=args.activity_duplicate_rate,
        activity_cursor_depth=args.activity_cursor_depth,
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with DemoServer(account, host=args.host, port=args.port, api_key=args.api_key, faults=faults) as server:
        print(f"eSputnik demo account serving at {server.url}", flush=True)
        print(f"Point the pipeline at it: ESPUTNIK_API_URL={server.url} ESPUTNIK_API_KEY={server.api_key}", flush=True)
        print("Ctrl-C to stop.", flush=True)
        if args.ready_file:  # written whole, then renamed: a reader never sees half a file
            partial = Path(args.ready_file).with_suffix(".partial")
            partial.write_text(json.dumps({"url": server.url, "pid": os.getpid(), "api_key": server.api_key}))
            partial.rename(args.ready_file)
        try:
            while not stopping.wait(0.5):
                if args.idle_exit and time.monotonic() - server.last_request > args.idle_exit:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            if args.ready_file:
                Path(args.ready_file).unlink(missing_ok=True)
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
