"""The route table (upriver/http/routes.py) and the OpenAPI document generated from it: every route is in
the document and nothing else is, the document is valid OpenAPI 3, declared parameters are what the
handlers read, and upriver/http/ keeps to its size and import limits."""

from __future__ import annotations

import ast
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from upriver.http import routes
from upriver.http.api import ApiError
from upriver.http.openapi import openapi
from upriver.http.server import _KNOWN_ROUTES, ApiServer
from upriver.http.spec import Param, Query

HTTP_DIR = Path(__file__).resolve().parents[2] / "upriver" / "http"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def test_every_route_is_in_the_document_and_nothing_else() -> None:
    doc = openapi()
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    declared = {(r.method, r.path) for r in routes.ROUTES}
    assert documented == declared
    tables = {(m, p) for m, table in routes.TABLES.items() for p in table}
    templated = {(m, r.path) for m, found in routes.TEMPLATED.items() for r in found}
    assert tables | templated == declared and not tables & templated
    for route in routes.ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        assert [p["name"] for p in op.get("parameters", [])] == [*route.path_names, *(p.name for p in route.params)]
        assert op["operationId"] == route.name and op["summary"] == route.summary


def test_the_document_is_valid_openapi_3() -> None:
    doc = json.loads(json.dumps(openapi()))  # it is served as JSON
    validate(doc)  # openapi-spec-validator: the whole document against the OpenAPI 3.0 schema


def test_the_parts_the_document_uses_are_well_formed() -> None:
    """The same checked by hand for paths, parameters and responses (what a client generator reads)."""
    doc = openapi()
    assert doc["openapi"].startswith("3.0.") and doc["info"]["title"] and doc["info"]["version"]
    operation_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith(("/api/v1/", "/api/v2beta/")) and set(item) <= METHODS
        for op in item.values():
            operation_ids.append(op["operationId"])
            names = [(p["name"], p["in"]) for p in op.get("parameters", [])]
            assert len(names) == len(set(names)), f"{path}: a parameter twice"
            for p in op.get("parameters", []):
                assert p["in"] in ("query", "path") and isinstance(p["schema"], dict) and "type" in p["schema"]
                assert p["in"] == "query" or p["required"] is True
                assert p.get("required", False) in (True, False)
            assert op["responses"] and all(code.isdigit() and r["description"] for code, r in op["responses"].items())
            for r in op["responses"].values():
                for media in r.get("content", {}).values():
                    assert "schema" in media
            if "requestBody" in op:
                assert "application/json" in op["requestBody"]["content"]
    assert len(operation_ids) == len(set(operation_ids))
    for ref in _refs(doc):
        if ref.startswith("#/"):
            target: Any = doc
            for part in ref[2:].split("/"):
                target = target[part]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_defaults_and_ranges_in_the_document_are_the_handlers() -> None:
    upstream = {p["name"]: p for p in openapi()["paths"]["/api/v1/upstream"]["get"]["parameters"]}
    assert upstream["depth"]["schema"] == {"type": "integer", "minimum": 1, "maximum": routes.MAX_DEPTH, "default": 10}
    assert upstream["node"]["required"] is True and "required" not in upstream["as_of"]
    lineage = {p["name"]: p for p in openapi()["paths"]["/api/v1/lineage"]["get"]["parameters"]}
    assert lineage["depth"]["schema"]["default"] == 20


class _Echo:
    """A read side whose resolve answers what it is given; nothing else may be called (a required
    parameter is checked before the read side is asked)."""

    def resolve(self, text: str) -> str:
        return text

    def __getattr__(self, name: str) -> Any:
        if name == "health":
            return _Echo()

        def called(*args: Any, **kwargs: Any) -> None:
            raise AssertionError(f"{name} called before the required parameters were checked")

        return called


@pytest.mark.parametrize(("path", "param"), [(r.path, p) for r in routes.GET.values() for p in r.params if p.required])
def test_every_required_parameter_is_enforced(path: str, param: Param) -> None:
    others = [p.name for p in routes.GET[path].params if p.required and p.name != param.name]
    with pytest.raises(ApiError) as info:
        routes.handle(_Echo(), path, "&".join(f"{name}=x" for name in others))  # type: ignore[arg-type]
    # a Marquez route answers as Dropwizard answers a missing @NotNull (or @NotBlank) parameter
    marquez = (f"query param {param.name} must not be null", f"query param {param.name} must not be blank")
    said = marquez if routes.GET[path].marquez else (f"'{param.name}' is required",)
    assert info.value.status == 400 and any(s in str(info.value) for s in said)


def test_a_handler_cannot_read_an_undeclared_parameter() -> None:
    query = Query({"depth": Param("depth", "integer", default=10, minimum=1, maximum=50)}, {"limit": ["5"]})
    assert query.integer("depth") == 10
    with pytest.raises(RuntimeError, match="not declared"):
        query.integer("limit")
    with pytest.raises(RuntimeError, match="not declared"):
        query.text("depth")  # declared, but as an integer


def test_a_route_is_declared_once() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        routes.get("/api/v1/upstream", "again")(routes.upstream)
    assert sum(r.path == "/api/v1/upstream" for r in routes.ROUTES) == 1


def test_every_route_has_its_own_request_metrics_label() -> None:
    assert {r.path for r in routes.ROUTES} | {"/healthz", "/metrics", "/"} <= _KNOWN_ROUTES


def test_the_server_answers_the_document_and_the_table_decides_the_methods() -> None:
    api = ApiServer(object(), "127.0.0.1", 0).start()  # type: ignore[arg-type]
    try:
        with urllib.request.urlopen(api.url + "/api/v1/openapi.json", timeout=10) as resp:
            assert json.loads(resp.read()) == openapi()
        request = urllib.request.Request(api.url + "/api/v1/upstream", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 404 and "no such endpoint" in json.loads(info.value.read())["error"]
    finally:
        api.stop()


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    return (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def test_the_http_package_keeps_its_limits() -> None:
    """No module over 400 lines or function over 60, a docstring each, one confluent-kafka user (ingest)."""
    kafka_users, too_long = [], []
    for path in sorted(HTTP_DIR.glob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        assert ast.get_docstring(tree), path.name
        assert len(text.splitlines()) <= 400, path.name
        too_long += [f"{path.name}:{f.name}" for f in _functions(tree) if f.end_lineno - f.lineno + 1 > 60]
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m.startswith("clickhouse_connect") for m in imported), path.name
        if any(m.startswith("confluent_kafka") for m in imported):
            kafka_users.append(path.name)
    assert too_long == []
    assert kafka_users == ["ingest.py"]
