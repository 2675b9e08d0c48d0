"""A local BigQuery emulator for tests: PyPI's ``local-bigquery`` run as a subprocess.

The emulator lives in its own virtualenv (it needs Python 3.13 and brings
``google-cloud-bigquery-storage``, which must stay out of the project's .venv), made by
``bash .ci/install-bigquery-emulator``. Tests talk to it with the project's real
``google-cloud-bigquery`` client over REST.

Usage::

    from esputnik_assets_tests.bigquery_emulator import BigQueryEmulator, emulator_available

    reason = emulator_available()          # None, or why it cannot run (-> pytest.skip)
    with BigQueryEmulator(project="esputnik-test") as emu:
        client = emu.client()              # bigquery.Client at emu.host, anonymous
        client.query("SELECT 1").to_arrow(create_bqstorage_client=False)
        env = emu.env()                    # os.environ + BIGQUERY_EMULATOR_HOST, for subprocesses

About ``BIGQUERY_EMULATOR_HOST``: google-cloud-bigquery (3.47 included) honours it --
``Client()`` built with no ``client_options.api_endpoint`` sends its REST calls to
``$BIGQUERY_EMULATOR_HOST`` (a full base URL with scheme, e.g. ``http://127.0.0.1:9050``,
exactly :attr:`BigQueryEmulator.host`). It does NOT change credentials: a plain
``bigquery.Client(project=...)`` still calls ``google.auth.default()`` and fails without
Application Default Credentials, so code under test must also be given
``credentials=AnonymousCredentials()`` (or build its client through an injectable
factory). An explicit ``client_options={"api_endpoint": ...}`` wins over the variable.

Reads: always ``to_arrow(create_bqstorage_client=False)`` / ``to_dataframe(...)`` with
the same flag; the emulator does serve a Storage Read API over plain gRPC
(:attr:`BigQueryEmulator.grpc_address`), but the project's venv has no storage client.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from google.cloud import bigquery

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = REPO_ROOT / ".ci" / "install-bigquery-emulator"
DEFAULT_PROJECT = "esputnik-test"
STAMP_NAME = ".esputnik-bq-emulator-installed"  # written by the install script when done

# local-bigquery reads its settings from these unprefixed environment variables; a stray
# one (DATA_DIR, GROUPS, ...) in the caller's environment must not leak into the emulator.
_EMULATOR_SETTING_VARS = (
    "BIGQUERY_PORT", "BIGQUERY_HOST", "GRPC_PORT", "DATA_DIR", "DEFAULT_PROJECT_ID",
    "DEFAULT_DATASET_ID", "CALLER", "GROUPS", "POSTGRES_CONNECTION_ID", "GCS_LOCAL_ROOT",
    "STORAGE_EMULATOR_HOST", "POSTGRES_URI",
)


def emulator_venv() -> Path:
    """The emulator's virtualenv (same default as .ci/install-bigquery-emulator)."""
    configured = os.environ.get("BIGQUERY_EMULATOR_VENV")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "esputnik-bq-emulator" / "venv"


def emulator_command() -> Path:
    return emulator_venv() / "bin" / "local-bigquery"


def emulator_available() -> str | None:
    """None when the emulator is installed, else the reason (for ``pytest.skip``)."""
    venv = emulator_venv()
    if not emulator_command().is_file():
        return (
            f"BigQuery emulator not installed (no {emulator_command()}); "
            f"run: bash {INSTALL_SCRIPT.relative_to(REPO_ROOT)}"
        )
    if not (venv / STAMP_NAME).is_file():
        return (
            f"BigQuery emulator install in {venv} is incomplete; "
            f"run: bash {INSTALL_SCRIPT.relative_to(REPO_ROOT)}"
        )
    return None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class BigQueryEmulator:
    """Start ``local-bigquery`` on free loopback ports with a fresh data dir.

    ``start()``/``stop()`` or use as a context manager. Attributes once started:
    ``host`` ("http://127.0.0.1:PORT"), ``port``, ``grpc_address``, ``project``,
    ``data_dir``, ``startup_seconds``.
    """

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        *,
        startup_timeout: float = 60.0,
        bind: str = "127.0.0.1",
        venv: str | os.PathLike[str] | None = None,
    ) -> None:
        self.project = project
        self.startup_timeout = startup_timeout
        self.bind = bind
        self._command = (Path(venv) if venv else emulator_venv()) / "bin" / "local-bigquery"
        self.port: int | None = None
        self.grpc_port: int | None = None
        self.data_dir: Path | None = None
        self.startup_seconds: float | None = None
        self._tmp: Path | None = None
        self._log_path: Path | None = None
        self._log_file: Any = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses ------------------------------------------------------------------
    @property
    def host(self) -> str:
        if self.port is None:
            raise RuntimeError("BigQueryEmulator is not started")
        return f"http://{self.bind}:{self.port}"

    @property
    def grpc_address(self) -> str:
        return f"{self.bind}:{self.grpc_port}"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a subprocess under test: ``BIGQUERY_EMULATOR_HOST`` set."""
        env = dict(os.environ if base is None else base)
        env["BIGQUERY_EMULATOR_HOST"] = self.host
        return env

    def client(self, **kwargs: Any) -> bigquery.Client:
        """A real ``google.cloud.bigquery.Client`` pointed at the emulator."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        kwargs.setdefault("project", self.project)
        kwargs.setdefault("credentials", AnonymousCredentials())
        kwargs.setdefault("client_options", {"api_endpoint": self.host})
        return bigquery.Client(**kwargs)

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> BigQueryEmulator:
        if self._proc is not None:
            return self
        if not self._command.is_file():
            raise RuntimeError(
                f"no BigQuery emulator at {self._command}; "
                f"run: bash {INSTALL_SCRIPT.relative_to(REPO_ROOT)}"
            )
        self._tmp = Path(tempfile.mkdtemp(prefix="esputnik-bq-emulator-"))
        self.data_dir = self._tmp / "data"
        self._log_path = self._tmp / "emulator.log"
        self.port = _free_port(self.bind)
        self.grpc_port = _free_port(self.bind)
        env = {k: v for k, v in os.environ.items() if k not in _EMULATOR_SETTING_VARS}
        env["PYTHONUNBUFFERED"] = "1"
        cmd = [
            str(self._command), "serve",
            "--host", self.bind,
            "--port", str(self.port),
            "--grpc-port", str(self.grpc_port),
            "--project", self.project,
            "--data-dir", str(self.data_dir),
        ]
        began = time.monotonic()
        self._log_file = open(self._log_path, "wb")
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self._tmp,
                start_new_session=True,  # its own process group, so stop() gets all of it
            )
            self._wait_ready(began)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait_ready(self, began: float) -> None:
        # A real API call: list the project's datasets. Before the app is up the port
        # refuses; while the engine fails (e.g. a missing duckdb extension) it answers 400.
        url = f"{self.host}/bigquery/v2/projects/{self.project}/datasets"
        last = "no answer yet"
        while True:
            assert self._proc is not None
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"BigQuery emulator exited with code {code} during startup.\n"
                    f"command: {self._proc.args}\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as err:
                body = err.read(600)
                last = f"HTTP {err.code}: {body!r}"
                if b"extension" in body:  # duckdb cannot load icu/ducklake/spatial: permanent
                    raise RuntimeError(
                        "BigQuery emulator's duckdb is missing an extension (it cannot download "
                        f"one here); re-run: bash {INSTALL_SCRIPT.relative_to(REPO_ROOT)}\n"
                        f"last answer from {url}: {last}\n{self.log_tail()}"
                    ) from None
            except (urllib.error.URLError, OSError) as err:
                last = repr(err)
            if time.monotonic() - began > self.startup_timeout:
                raise RuntimeError(
                    f"BigQuery emulator not ready after {self.startup_timeout:.0f}s "
                    f"(last answer from {url}: {last}).\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def log_tail(self, max_chars: int = 4000) -> str:
        """The end of the emulator's combined stdout/stderr."""
        if self._log_path is None or not self._log_path.exists():
            return "(no emulator log)"
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.flush()
        text = self._log_path.read_bytes()[-max_chars:].decode("utf-8", "replace")
        return f"--- emulator log tail ({self._log_path}) ---\n{text}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            self._log_path = None

    def __enter__(self) -> BigQueryEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort; stop() is the contract
        if self._proc is not None:
            try:
                self.stop()
            except Exception:
                pass
