"""The package's import structure: layers that only import downward, and a source that never knows the demo.

Imports are read with `ast` from every module of the package, those inside functions included (a lazy import is
still a dependency), so the test holds without importing anything.
"""

import ast
from pathlib import Path

import pytest

import esputnik_assets

PACKAGE = Path(esputnik_assets.__file__).parent
# Bottom to top; a module belongs to the layer of the longest unit naming it (a package or one of its modules).
# A module may import its own layer and those below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("processes", "redaction", "keys", "home", "column_types", "contracts", "shaping", "specs", "source.windows",
     "spool"),  # fmt: skip
    ("source",),
    ("warehouse", "run_policy", "step_errors"),
    ("checks", "schedules"),
    ("assets", "metrics"),
    ("demo",),  # plugs itself into the source's resource
    ("settings", "metrics.wiring", "doctor", "executor", "definitions", "quickstart", "cli", ""),  # the wiring
)


def _modules() -> dict[str, Path]:
    """Each module's dotted name below the package ("" for the package itself) and its file."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path) -> set[str]:
    """The package's modules a file imports (relative to the package), at any depth of the file."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        imported |= {name.removeprefix("esputnik_assets.") for name in names if name.startswith("esputnik_assets.")}
    return imported


def _layer(module: str) -> int:
    """The layer of the longest unit that is the module or one of its parents."""
    units = {unit: level for level, layer in enumerate(LAYERS) for unit in layer}
    parts = module.split(".")
    for end in range(len(parts), -1, -1):
        unit = ".".join(parts[:end])
        if unit in units and (unit or not module):
            return units[unit]
    raise AssertionError(f"esputnik_assets.{module} is in no layer: add it to LAYERS")


def test_every_import_points_to_its_own_layer_or_below():
    upward = [
        f"{module or 'esputnik_assets'} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, path in sorted(_modules().items())
        for target in sorted(_imports(path))
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_the_source_never_imports_the_demo():
    """The demo plugs in from the wiring (`demo.resource`); the source's code names no module of it."""
    source = {module: path for module, path in _modules().items() if module.startswith("source")}
    assert source  # the package's reader is found where the test looks
    assert {module: sorted(t for t in _imports(path) if t.startswith("demo")) for module, path in source.items()} == {
        module: [] for module in source
    }


def test_the_layer_test_sees_an_upward_import():
    """The rule itself: the source importing the demo, or the spool importing the warehouse, would be upward; the
    metric wiring sits with the settings it reads, above the metric engine."""
    assert _layer("demo.account") > _layer("source.resource")
    assert _layer("warehouse.base") > _layer("spool") == _layer("source.windows") < _layer("source.extract")
    assert _layer("metrics.wiring") == _layer("settings") > _layer("metrics.engine")


def test_the_wiring_plugs_the_demo_in_only_for_the_demo(tmp_path):
    """A code location loaded for the demo serves it; one loaded for a live account refuses `demo_account: true`
    (as the launchpad may set it) and says how to load the demo, instead of importing it."""
    from esputnik_assets.definitions import build_definitions
    from esputnik_assets.demo.resource import DemoEsputnikResource
    from esputnik_assets.settings import Settings
    from esputnik_assets.source.errors import AccountNotConfiguredError
    from esputnik_assets.source.resource import DEMO_NOT_WIRED, EsputnikResource

    path = str(tmp_path / "warehouse.duckdb")
    demo = build_definitions(Settings.from_environ({"ESPUTNIK_DEMO": "true", "ESPUTNIK_DUCKDB_PATH": path}))
    live = build_definitions(Settings.from_environ({"ESPUTNIK_API_KEY": "k", "ESPUTNIK_DUCKDB_PATH": path}))
    assert type(demo.resources["esputnik"]) is DemoEsputnikResource
    assert type(live.resources["esputnik"]) is EsputnikResource
    chosen = EsputnikResource(demo_account=True)  # the live location's resource with the launchpad's choice
    with pytest.raises(AccountNotConfiguredError) as refused, chosen.open():
        pass
    assert str(refused.value) == DEMO_NOT_WIRED
