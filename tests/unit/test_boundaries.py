"""Stages meet only at the contract: producers/, processors/, sinks/ never import each other,
schemas/ imports no stage, and only processors/app.py imports faust."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES = {"producers", "processors", "sinks"}
FORBIDDEN = {
    "schemas": STAGES | {"upriver"},
    "producers": (STAGES - {"producers"}) | {"upriver"},
    "processors": (STAGES - {"processors"}) | {"upriver"},
    "sinks": (STAGES - {"sinks"}) | {"upriver"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_stages_import_only_the_contract() -> None:
    offences = []
    for package, forbidden in FORBIDDEN.items():
        for path in (ROOT / package).rglob("*.py"):
            bad = _imports(path) & forbidden
            if bad:
                offences.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offences == []


def test_only_the_wiring_module_imports_faust() -> None:
    users = sorted(
        str(p.relative_to(ROOT))
        for pkg in ("schemas", "producers", "processors", "sinks", "upriver")
        for p in (ROOT / pkg).rglob("*.py")
        if "faust" in _imports(p)
    )
    assert users == ["processors/app.py"]


def test_every_module_opens_with_a_docstring() -> None:
    missing = [
        str(p.relative_to(ROOT))
        for pkg in ("schemas", "producers", "processors", "sinks", "upriver")
        for p in (ROOT / pkg).rglob("*.py")
        if ast.get_docstring(ast.parse(p.read_text())) is None and p.name != "__main__.py"
    ]
    assert missing == []
