"""What the tests that start Dagster's own processes (a dev server, a deployment) share: a free loopback port, a
clean environment for them, and the webserver's GraphQL."""

from __future__ import annotations

import json
import os
import socket
import urllib.request


def free_port() -> int:
    """A loopback port free at the time of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """This machine's environment minus anything that would pick an account, a warehouse or a Dagster home."""
    return {
        k: v for k, v in os.environ.items()
        if not k.startswith(("ESPUTNIK_", "BIGQUERY_", "DAGSTER_PG_")) and k != "DAGSTER_HOME"
    }  # fmt: skip


def graphql(url: str, query: str, variables: dict | None = None, timeout: float = 120) -> dict:
    """The webserver at `url` asked one GraphQL query: its data, or an AssertionError with its errors."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        reply = json.load(answer)
    if "errors" in reply:
        raise AssertionError(f"GraphQL errors: {reply['errors']}")
    return reply["data"]
