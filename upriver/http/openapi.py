"""The OpenAPI 3 document of the API, generated from the route table (upriver/http/routes.py).

Every declared route is a path operation here, with its parameters (types, defaults, ranges), request
body and answers, so a new route appears in the document by being declared. `GET /api/v1/openapi.json`
answers it; docs/openlineage.md and docs/operations.md describe the same routes in prose.
"""

from __future__ import annotations

from typing import Any

from upriver.http.routes import ROUTES
from upriver.http.spec import Param, Reply, Route

ERRORS = {
    400: "a bad parameter or body (the error says which)",
    401: "missing or wrong bearer token (when the server has one)",
    404: "no such node, run or namespace",
    413: "the body (or an event in it) is over the limit",
    415: "not JSON: Content-Type or Content-Encoding not supported",
    503: "OpenLineage ingest is not enabled, or Kafka did not acknowledge the events",
}
ERROR = {"$ref": "#/components/schemas/Error"}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3 document of this server, one path operation per route of `routes.ROUTES`."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Upriver",
            "version": "1",
            "description": "Lineage queries, lineage health and OpenLineage ingest (docs/openlineage.md)",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def operation(route: Route) -> dict[str, Any]:
    """One route's Operation Object."""
    op: dict[str, Any] = {"operationId": route.name, "summary": route.summary}
    in_path = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in route.path_names]
    if route.params or in_path:
        op["parameters"] = in_path + [parameter(p) for p in route.params]
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": dict(route.body)}}}
    responses = {str(r.status): response(r) for r in route.replies}
    for status in route.errors:
        responses.setdefault(str(status), {"description": ERRORS[status],
                                           "content": {"application/json": {"schema": ERROR}}})  # fmt: skip
    op["responses"] = responses
    return op


def response(reply: Reply) -> dict[str, Any]:
    """A success Response Object: JSON with the reply's schema, text as a string, or no body."""
    out: dict[str, Any] = {"description": reply.description}
    if reply.media:
        out["content"] = {
            media: {"schema": dict(reply.schema) if media == "application/json" else {"type": "string"}}
            for media in reply.media
        }
    return out


def parameter(param: Param) -> dict[str, Any]:
    """A query Parameter Object."""
    out: dict[str, Any] = {"name": param.name, "in": "query"}
    if param.required:
        out["required"] = True
    if param.description:
        out["description"] = param.description
    out["schema"] = schema(param)
    if param.type == "words":
        out["style"], out["explode"] = "form", True
    return out


def schema(param: Param) -> dict[str, Any]:
    """The Schema Object of a parameter's value."""
    if param.type == "words":
        return {"type": "array", "items": {"type": "string"}}
    if param.type == "integer":
        out: dict[str, Any] = {"type": "integer", "minimum": param.minimum, "maximum": param.maximum}
    elif param.type == "boolean":
        out = {"type": "boolean"}
    elif param.type == "time":
        out = {"type": "string", "example": "2026-03-01T10:00:00Z"}
    else:
        out = {"type": "string"}
        if param.enum:
            out["enum"] = list(param.enum)
    if param.default is not None:
        out["default"] = param.default
    return out
