"""A lighter run: loading the definitions imports only what a DuckDB run uses, a one-step run needs no step
process, and a longer run forks its steps from a server that imported the definitions once."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from dagster._config import process_config

from esputnik_assets.demo.account import BROADCAST_COUNT
from esputnik_assets.executor import PRELOADED_MODULES, OneStepInProcessExecutor, run_executor

BIN = Path(sys.executable).parent
PROBE = """
import sys
from esputnik_assets.definitions import build_definitions
from esputnik_assets.settings import Settings
build_definitions(Settings.from_environ({environment!r})).get_repository_def()
print(",".join(name for name in {heavy!r} if name in sys.modules))
"""


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ESPUTNIK_", "BIGQUERY_"))}


@pytest.mark.parametrize(
    ("environment", "not_imported"),
    [
        ({"ESPUTNIK_DEMO": "true"}, ("sklearn", "scipy")),
        ({"ESPUTNIK_API_KEY": "placeholder-key"}, ("sklearn", "scipy", "esputnik_assets.demo")),
    ],
    ids=["demo account", "configured account"],
)
def test_loading_the_duckdb_definitions_imports_neither_the_churn_models_library_nor_an_unused_demo(
    environment, not_imported, tmp_path
):
    probe = PROBE.format(environment=environment | {"ESPUTNIK_DUCKDB_PATH": "unused.duckdb"}, heavy=not_imported)
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=300,
        check=True,
    )  # fmt: skip
    assert loaded.stdout.strip() == ""


def _executor(run_config: dict) -> OneStepInProcessExecutor:
    processed = process_config(run_executor.config_schema.config_type, run_config)
    assert processed.success, processed.errors
    return run_executor.executor_creation_fn(SimpleNamespace(executor_config=processed.value))


def test_steps_fork_from_a_preloaded_server_unless_the_run_config_chooses_another_start_method():
    default = _executor({})
    assert (default._start_method, default._explicit_forkserver_preload) == ("forkserver", list(PRELOADED_MODULES))
    chosen = _executor({"start_method": {"spawn": {}}, "max_concurrent": 3})
    assert (chosen._start_method, chosen._max_concurrent) == ("spawn", 3)


def test_a_one_step_run_through_the_cli_works_in_the_runs_own_process(tmp_path):
    home, path = tmp_path / "dagster_home", tmp_path / "warehouse.duckdb"
    home.mkdir()
    args = ["asset", "materialize", "-m", "esputnik_assets", "--select", "esputnik/broadcasts", "--partition",
            "2026-11-20"]  # fmt: skip
    env = _clean_env() | {"DAGSTER_HOME": str(home), "ESPUTNIK_DUCKDB_PATH": str(path)}
    result = subprocess.run(
        [str(BIN / "dagster"), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Executing steps in process" in result.stderr and "Launching subprocess" not in result.stderr
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute('SELECT count(*) FROM esputnik."broadcasts"').fetchone()[0] == BROADCAST_COUNT  # an entity table: every broadcast


BIGQUERY_STACK = ("google.cloud.bigquery", "dagster_gcp", "pandas")
DAY_RUN = """
import sys
import dagster as dg
from esputnik_assets.definitions import build_definitions
from esputnik_assets.settings import Settings
defs = build_definitions(Settings.from_environ({environment!r}))
job = defs.resolve_implicit_global_asset_job_def()
selection = [dg.AssetKey(["esputnik", "broadcasts"]), dg.AssetKey(["esputnik", "orders"])]
instance = dg.DagsterInstance.ephemeral()
assert job.execute_in_process(partition_key="2026-11-20", asset_selection=selection, instance=instance).success
print(",".join(name for name in {heavy!r} if name in sys.modules))
"""


def test_a_day_on_duckdb_never_imports_the_bigquery_stack(tmp_path):
    """BigQuery's client, dagster-gcp and pandas (about 80 MiB) load only where BigQuery is configured: not when the
    DuckDB definitions load, nor when they write a day."""
    environment = {"ESPUTNIK_DEMO": "true", "ESPUTNIK_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb")}
    probe = DAY_RUN.format(environment=environment, heavy=BIGQUERY_STACK)
    ran = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.strip() == ""  # none of them was imported
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute('SELECT count(*) FROM esputnik."broadcasts"').fetchone()[0] == BROADCAST_COUNT
