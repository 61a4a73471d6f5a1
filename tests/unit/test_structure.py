"""The shape of the tree, kept by tests: small modules and functions, and each outside system reached from
one place per stage (docs/architecture.md, "The folder map").

- No first-party module over 400 lines, no function over 60 (physical lines, `def` to its end).
- faust is imported only under processors/worker/ (the worker deployable).
- Per stage folder, at most one module imports confluent-kafka and at most one clickhouse-connect; the
  folders of pure decisions (processors/lineage, processors/health) and the CLI and local stack import
  neither (they go through the stage's one module).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "producers", "processors", "sinks", "upriver")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
CLIENTS = {"confluent_kafka", "clickhouse_connect"}
# folders that decide or drive and must reach Kafka and ClickHouse only through another folder's module
NO_CLIENTS = {"processors/lineage", "processors/health", "upriver/cli", "upriver/local"}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _folder(path: Path) -> str:
    """The stage a module belongs to: its top-level package, or for processors/ and upriver/ the sub-package."""
    parts = path.relative_to(ROOT).parts
    if parts[0] in ("processors", "upriver") and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0]


def _imported(path: Path) -> set[str]:
    """Top-level names of everything the module imports, at any depth (function-level imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_is_over_400_lines() -> None:
    over = {
        str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert over == {}


def test_no_function_is_over_60_lines() -> None:
    over = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    over.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert over == []


def test_only_the_worker_package_imports_faust() -> None:
    users = sorted(str(p.relative_to(ROOT)) for p in _modules() if {"faust", "mode"} & _imported(p))
    assert users and all(u.startswith("processors/worker/") for u in users), users


def test_each_stage_reaches_kafka_and_clickhouse_from_one_module() -> None:
    users: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in _modules():
        for client in CLIENTS & _imported(path):
            users[(_folder(path), client)].append(str(path.relative_to(ROOT)))
    several = {f"{folder} -> {client}": mods for (folder, client), mods in users.items() if len(mods) > 1}
    assert several == {}
    forbidden = {f"{folder} -> {client}": mods for (folder, client), mods in users.items() if folder in NO_CLIENTS}
    assert forbidden == {}
    # the guard sees what it guards: the stages that talk to Kafka and ClickHouse are found
    assert ("sinks", "confluent_kafka") in users and ("sinks", "clickhouse_connect") in users
    assert ("processors/worker", "confluent_kafka") in users and ("upriver/deploy", "confluent_kafka") in users


def test_the_guard_counts_nested_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f() -> None:\n    from confluent_kafka.admin import AdminClient\n")
    assert "confluent_kafka" in _imported(module)
