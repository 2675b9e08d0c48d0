"""A run imports only what it uses: loading the definitions for DuckDB and the demo account leaves the heavy
libraries of other paths (the churn model's scikit-learn) unloaded, so every step process starts lighter."""

import os
import subprocess
import sys

NOT_IMPORTED = ("sklearn", "scipy")
PROBE = f"""
import sys
from esputnik_assets.definitions import build_definitions
defs = build_definitions({{"ESPUTNIK_DEMO": "true", "ESPUTNIK_DUCKDB_PATH": "unused.duckdb"}})
defs.get_repository_def()
print(",".join(name for name in {NOT_IMPORTED!r} if name in sys.modules))
"""


def test_loading_the_duckdb_demo_definitions_does_not_import_the_churn_models_library(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESPUTNIK_", "BIGQUERY_"))}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=True
    )
    assert probe.stdout.strip() == ""
