"""Stages meet only at the contract: producers/, processors/, sinks/ never import each other,
schemas/ imports no stage, and only processors/worker/app.py imports faust.

Only the worker process loads faust and the processor's metrics (processors/metrics.py): a module
that imports them at import time is reached only from `upriver worker`, so the sink's and the API's
/metrics export no `upriver_processor_*` or `upriver_health_*` series (alert UpriverHealthBehind).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "producers", "processors", "sinks", "upriver")
STAGES = {"producers", "processors", "sinks"}
WORKER_METRICS = ("upriver_processor_", "upriver_health_")
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
    assert users == ["processors/worker/app.py"]


def test_every_module_opens_with_a_docstring() -> None:
    missing = [
        str(p.relative_to(ROOT))
        for pkg in ("schemas", "producers", "processors", "sinks", "upriver")
        for p in (ROOT / pkg).rglob("*.py")
        if ast.get_docstring(ast.parse(p.read_text())) is None and p.name != "__main__.py"
    ]
    assert missing == []


# -- what each process loads ------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(node: ast.Import | ast.ImportFrom, modules: set[str]) -> set[str]:
    """Dotted names an import statement loads: the module, its parent packages, `from pkg import submodule`."""
    if isinstance(node, ast.Import):
        names = {a.name for a in node.names}
    elif node.module is None or node.level:
        return set()
    else:
        names = {node.module} | {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
    return {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 2)}


def _load_time_imports(body: list[ast.stmt], modules: set[str]) -> set[str]:
    """Imports that run when the module is imported: not those in function bodies or `if TYPE_CHECKING:`."""
    found: set[str] = set()
    for stmt in body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            found |= _imported(stmt, modules)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            found |= _load_time_imports(stmt.orelse, modules)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list):
                    stmts = [s for h in inner for s in h.body] if field == "handlers" else inner
                    found |= _load_time_imports(stmts, modules)
    return found


def _import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    modules = set(paths)
    return {name: _load_time_imports(ast.parse(path.read_text()).body, modules) for name, path in paths.items()}


def _loads(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module importing `start` loads, first-party or not (by name)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, ()))
    return seen


def test_only_the_worker_wiring_loads_faust_and_the_processor_metrics() -> None:
    graph = _import_graph()
    loading_faust = sorted(m for m in graph if "faust" in _loads(graph, m))
    assert loading_faust == ["processors.worker.app", "processors.worker.health"]
    # processors.metrics registers the worker's series; outside processors/ nothing may load it on import
    loading_metrics = sorted(
        m for m in graph if "processors.metrics" in _loads(graph, m) and m.split(".")[0] != "processors"
    )
    assert loading_metrics == []


def _cli_imports(command: str) -> list[str]:
    """The modules `upriver <command>` imports inside its function (upriver/cli/run.py, send.py, read.py)."""
    functions = [n for p in sorted((ROOT / "upriver" / "cli").glob("*.py")) for n in ast.parse(p.read_text()).body]
    fn = next(n for n in functions if isinstance(n, ast.FunctionDef) and n.name == f"cmd_{command}")
    return sorted(
        {n.module for n in ast.walk(fn) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        | {a.name for n in ast.walk(fn) if isinstance(n, ast.Import) for a in n.names}
    )


def _loaded_in_a_fresh_process(modules: list[str]) -> tuple[bool, list[str]]:
    """Whether importing `modules` in a new interpreter loads faust, and the metric names then registered
    (families and samples: a labelled metric has no sample before its first label values)."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "from prometheus_client import REGISTRY\n"
        "names = sorted({n for m in REGISTRY.collect() for n in [m.name, *(s.name for s in m.samples)]})\n"
        "print(json.dumps({'faust': 'faust' in sys.modules, 'metrics': names}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return bool(result["faust"]), list(result["metrics"])


def test_the_sink_and_api_process_loads_neither_faust_nor_the_worker_metrics() -> None:
    """`upriver sink` and `upriver up` (the sink, lag monitor and API in the controlling process)."""
    sink_side = ["upriver.cli.main", "upriver.cli.run", *_cli_imports("sink"), *_cli_imports("up")]
    sink_side += ["upriver.deploy.components", "upriver.http.server", "upriver.http.routes"]
    sink_side += ["upriver.local.stack", "upriver.deploy.lag", "upriver.readside.health"]
    assert "upriver.deploy.components" in _cli_imports("sink") and "upriver.local.stack" in _cli_imports("up")
    faust_loaded, names = _loaded_in_a_fresh_process(sink_side)
    assert not faust_loaded
    assert [n for n in names if n.startswith(WORKER_METRICS)] == []
    assert "upriver_stage_up" in names and "upriver_consumer_lag" in names  # its own series are there


def test_the_worker_process_loads_faust_and_registers_the_worker_metrics() -> None:
    worker_side = ["upriver.cli.main", "upriver.cli.run", *_cli_imports("worker")]
    assert "processors.worker.app" in worker_side
    faust_loaded, names = _loaded_in_a_fresh_process(worker_side)
    assert faust_loaded
    assert "upriver_processor_events_total" in names
    assert "upriver_health_settled_time_seconds" in names
