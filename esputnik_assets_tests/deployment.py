"""A production deployment of esputnik-assets on this machine, for the deployment test and the scale benchmark: a
throwaway PostgreSQL cluster, DAGSTER_HOME with deploy/dagster.yaml copied unchanged, the code location served over
gRPC, `dagster-daemon` and `dagster-webserver` against a workspace built from deploy/workspace.yaml (host and port
differ), and GraphQL to drive it. Every process runs in its own process group with its log kept to a file."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from esputnik_assets_tests.services import clean_env, free_port, graphql

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
LOCATION = "esputnik_assets"  # deploy/workspace.yaml's location_name
DATABASE = "dagster"
REQUIRE_VARIABLE = "ESPUTNIK_REQUIRE_POSTGRES"

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on PartitionSetNotFoundError { message }
  }
}"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
}"""
BACKFILL_RUNS = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status creationTime startTime endTime tags { key value } } }
  }
}"""
LOCATION_STATUS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"  # noqa: E501
MATERIALIZATIONS = """
query Materializations($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) { ... on Asset { assetMaterializations { partition runId } } }
}"""
FINISHED_BACKFILL = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server's binaries on this machine (Debian's `postgresql` package puts them here)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def postgres_unavailable() -> str | None:
    """Why a throwaway cluster cannot start here, or None."""
    if postgres_bin() is None:
        return "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the cluster as (initdb refuses root)"
    return None


@dataclass
class PostgresCluster:
    """One throwaway cluster: loopback only, trust auth, its socket in its own folder; run as `postgres` when this
    process is root (initdb and the server refuse root)."""

    folder: Path
    port: int
    bin: Path

    @property
    def env(self) -> dict[str, str]:
        """The connection variables deploy/dagster.yaml reads."""
        return {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": "postgres",
                "DAGSTER_PG_PASSWORD": "unused-trust-auth", "DAGSTER_PG_DB": DATABASE}  # fmt: skip

    def command(self, *args: str) -> list[str]:
        return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + list(args)

    def run(self, *args: str) -> None:
        result = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}\n{self.log()}")

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text()[-4000:] if path.exists() else ""


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """initdb, start on a free loopback port, create the database; stop and remove everything at the end."""
    import psycopg

    binaries = postgres_bin()
    assert binaries is not None, postgres_unavailable()
    folder = Path(tempfile.mkdtemp(prefix="esputnik-pg-"))  # in /tmp: the postgres user can reach it
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = PostgresCluster(folder, free_port(), binaries)
    data = folder / "data"
    started = False
    try:
        cluster.run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--no-sync")  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {cluster.port} -c unix_socket_directories={folder} -c fsync=off"
        cluster.run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"),
                    "-w", "-t", "60", "start")  # fmt: skip
        started = True
        with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres",
                             autocommit=True) as con:  # fmt: skip
            con.execute(f"CREATE DATABASE {DATABASE}")
        yield cluster
    finally:
        if started:
            cluster.run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Service:
    """One long-running process of the deployment, in a process group of its own, its output kept in a file."""

    name: str
    args: list[str]
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self, env: Mapping[str, str], cwd: Path) -> None:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(self.args, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole group: a crash, not a shutdown."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM to the group (the code server's run workers included), SIGKILL if it lingers."""
        if not self.running():
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        try:  # run workers left in the group after its leader exited
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""


@dataclass
class Deployment:
    """The code server, the daemon and the webserver on one PostgreSQL instance; `graphql` speaks to the webserver."""

    home: Path
    env: dict[str, str]
    services: dict[str, Service] = field(default_factory=dict)
    url: str = ""

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return graphql(self.url, query, variables)

    def logs(self) -> str:
        """Every process's log tail, for a failure message."""
        return "\n".join(f"===== {s.name} ({s.log_path})\n{s.log()}" for s in self.services.values())

    def kill_daemon(self) -> None:
        self.services["daemon"].kill()

    def start_daemon(self) -> None:
        self.services["daemon"].start(self.env, self.home)

    def launch_backfill(self, asset_paths: Sequence[Sequence[str]], days: Sequence[str], tags: Mapping[str, str],
                        title: str) -> str:  # fmt: skip
        """An asset backfill through GraphQL, as the UI's launcher sends it; its id."""
        params = {
            "assetSelection": [{"path": list(p)} for p in asset_paths], "partitionNames": list(days),
            "tags": [{"key": k, "value": v} for k, v in tags.items()], "title": title,
        }  # fmt: skip
        answer = self.graphql(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert answer["__typename"] == "LaunchBackfillSuccess", answer
        return answer["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        return self.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]

    def backfill_runs(self, backfill_id: str) -> list[dict]:
        """The backfill's runs from the run storage: status, creation/start/end times (s since 1970) and tags."""
        runs = self.graphql(BACKFILL_RUNS, {"id": backfill_id})["runsOrError"]["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return runs

    def wait_for_backfills(self, backfill_ids: Sequence[str], timeout: float = 900) -> dict[str, str]:
        """Each backfill's final status; fails with every process's log if one is still going after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = {b: self.backfill_status(b) for b in backfill_ids}
            if all(s in FINISHED_BACKFILL for s in statuses.values()):
                return statuses
            if time.monotonic() > deadline:
                raise AssertionError(f"backfills still going after {timeout:.0f} s: {statuses}\n{self.logs()}")
            time.sleep(2)

    def materializations(self, path: Sequence[str]) -> list[dict]:
        """Every materialization event of an asset (partition and run), from the event log."""
        found = self.graphql(MATERIALIZATIONS, {"key": {"path": list(path)}})["assetOrError"]
        return found.get("assetMaterializations", [])


def workspace_for(code_port: int) -> dict:
    """deploy/workspace.yaml with the code server's loopback host and free port: nothing else differs."""
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    [entry] = workspace["load_from"]
    entry["grpc_server"].update(host="127.0.0.1", port=code_port)
    return workspace


@contextmanager
def deployment(cluster: PostgresCluster, folder: Path, accounts_file: Path, duckdb_path: Path,
               extra_env: Mapping[str, str] | None = None, timeout: float = 300) -> Iterator[Deployment]:  # fmt: skip
    """The three services on `cluster`, in `folder`, up and with the code location loaded; all stopped at the end."""
    home, logs = folder / "dagster_home", folder / "logs"
    home.mkdir(parents=True)
    logs.mkdir()
    shutil.copyfile(DEPLOY / "dagster.yaml", home / "dagster.yaml")  # unchanged: the connection is in the env
    code_port, web_port = free_port(), free_port()
    (folder / "workspace.yaml").write_text(yaml.safe_dump(workspace_for(code_port)))
    env = clean_env() | cluster.env | {
        "DAGSTER_HOME": str(home), "ESPUTNIK_ACCOUNTS_FILE": str(accounts_file),
        "ESPUTNIK_DUCKDB_PATH": str(duckdb_path), **(extra_env or {}),
    }  # fmt: skip
    workspace = str(folder / "workspace.yaml")
    deployed = Deployment(home, env, url=f"http://127.0.0.1:{web_port}")
    deployed.services = {
        "code-server": Service("code-server", [str(BIN / "dagster"), "code-server", "start", "-m", LOCATION, "-h",
                                               "127.0.0.1", "-p", str(code_port)], logs / "code-server.log"),
        "daemon": Service("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], logs / "daemon.log"),
        "webserver": Service("webserver", [str(BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p",
                                           str(web_port)], logs / "webserver.log"),
    }  # fmt: skip
    with ExitStack() as stack:
        for service in deployed.services.values():
            stack.callback(service.stop)
        try:
            # the code server first, as a deployment starts it: the webserver keeps a location it could not reach
            # as an error until someone reloads it
            deployed.services["code-server"].start(env, folder)
            _wait_until_serving(deployed, code_port, timeout)
            deployed.services["daemon"].start(env, folder)
            deployed.services["webserver"].start(env, folder)
            _wait_until_loaded(deployed, timeout)
            yield deployed
        except BaseException as failure:
            failure.add_note(deployed.logs())
            raise


def _wait_until_serving(deployed: Deployment, port: int, timeout: float) -> None:
    """The code server answers `dagster api grpc-health-check` (its definitions loaded)."""
    deadline = time.monotonic() + timeout
    check = [str(BIN / "dagster"), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(port)]
    while subprocess.run(check, env=deployed.env, capture_output=True, timeout=60).returncode:
        assert deployed.services["code-server"].running(), "the code server exited during start-up"
        assert time.monotonic() < deadline, f"the code server was not serving within {timeout:.0f} s"
        time.sleep(1)


def _wait_until_loaded(deployed: Deployment, timeout: float) -> None:
    """The webserver answers and reports the gRPC code location LOADED (not an error)."""
    deadline = time.monotonic() + timeout
    while True:
        dead = [s.name for s in deployed.services.values() if not s.running()]
        assert not dead, f"{', '.join(dead)} exited during start-up"
        try:
            entries = deployed.graphql(LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
            [entry] = [e for e in entries if e["name"] == LOCATION]
            if entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"]
                assert loaded["__typename"] == "RepositoryLocation", loaded
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"the code location did not load within {timeout:.0f} s"
        time.sleep(1)


def max_parallel(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at the same instant)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, step in edges:
        open_now += step
        most = max(most, open_now)
    return most


def instance_limits() -> tuple[int, dict]:
    """deploy/dagster.yaml's run-queue limits: max_concurrent_runs and the tag limit on the account tag."""
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["concurrency"]["runs"]
    return config["max_concurrent_runs"], {limit["key"]: limit for limit in config["tag_concurrency_limits"]}
