"""A loopback HTTP server whose answers a test scripts, for the ugly cases a real account produces now and then."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    """One answer; by default sent whole with its Content-Length, or shaped by one of the hostile options."""

    status: int = 200
    body: bytes | list | str = b"[]"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    trickle: float = 0.0  # seconds between the body's bytes, sent one at a time
    trickle_head: float = 0.0  # seconds between the bytes of the status line and headers, sent one at a time
    cut_after: int | None = None  # send only this many bytes of the body (Content-Length says all), then close
    chunked: bool = False  # `Transfer-Encoding: chunked`; the body is sent as given, framing (or its faults) included


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    password: str | None
    authorization: str = ""  # the request's Authorization header as sent, for servers that echo it


class ScriptedServer:
    """Answers each GET with `script(seen_request)`; records every request."""

    def __init__(self, script: Callable[[Seen], Reply]) -> None:
        self.script, self.seen = script, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                password = base64.b64decode(auth[6:]).decode().split(":", 1)[1] if auth.startswith("Basic ") else None
                seen = Seen(url.path, dict(parse_qsl(url.query)), password, auth)
                owner.seen.append(seen)
                reply = owner.script(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                if isinstance(body, list):
                    body = json.dumps(body).encode()
                elif isinstance(body, str):
                    body = body.encode()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    if reply.chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                    else:
                        self.send_header("Content-Length", str(len(body)))
                    if reply.trickle_head:
                        head, self._headers_buffer = b"".join(self._headers_buffer) + b"\r\n", []
                        for i in range(len(head)):
                            self.wfile.write(head[i : i + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle_head)
                    else:
                        self.end_headers()
                    if reply.trickle:
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(body if reply.cut_after is None else body[: reply.cut_after])
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll keeps __exit__ fast (shutdown waits for the loop's next poll): tests start many servers.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def sequence(*replies: Reply) -> Callable[[Seen], Reply]:
    """Replies in order; the last one repeats."""
    queue = list(replies)

    def script(_: Seen) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return script
