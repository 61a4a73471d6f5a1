"""The read-side HTTP API, served by the process that owns ClickHouse (with chDB, only it can open it).

Stdlib `ThreadingHTTPServer`; JSON in, JSON out; errors are JSON with a message. It only reads.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from upriver.lineage import LineageGraph, LineageReader, NodeNotFound, kind_of, parse_time, to_json

log = logging.getLogger(__name__)

MAX_DEPTH = 50
MAX_IMPACT_NODES = 100_000


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TextBody:
    """A non-JSON answer (CSV export)."""

    content_type: str
    text: str


def _int(params: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, [str(default)])[0]
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, got {value}")
    return value


def _depth(params: dict[str, list[str]]) -> int:
    return _int(params, "depth", 10, 1, MAX_DEPTH)


def _as_of(params: dict[str, list[str]]) -> int | None:
    raw = params.get("as_of", [""])[0]
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise ApiError(400, f"as_of: {exc}") from None


def _required(params: dict[str, list[str]], name: str, example: str) -> str:
    value = params.get(name, [""])[0]
    if not value:
        raise ApiError(400, f"query parameter '{name}' is required, e.g. {name}={example}")
    return value


def _node(reader: LineageReader, params: dict[str, list[str]], name: str = "node") -> str:
    return reader.resolve(_required(params, name, "model:registry/churn_model"))


def _kinds(params: dict[str, list[str]]) -> set[str]:
    return {k.strip().lower() for raw in params.get("kind", []) for k in raw.split(",") if k.strip()}


def _filtered(graph: LineageGraph, kinds: set[str]) -> dict[str, Any]:
    doc = to_json(graph)
    if kinds:
        keep = {n for n in graph.nodes if n == graph.root or kind_of(n) in kinds}
        doc["nodes"] = [n for n in doc["nodes"] if n["id"] in keep]
        doc["edges"] = [e for e in doc["edges"] if e["src"] in keep and e["dst"] in keep]
        doc["kinds"] = sorted(kinds)
    return doc


def handle(reader: LineageReader, path: str, query: str) -> dict[str, Any] | TextBody:
    """Route one GET request to the read side; raises ApiError with the HTTP status to answer."""
    params = parse_qs(query)
    if path == "/healthz":
        return {"status": "ok"}
    try:
        return _route(reader, path, params)
    except NodeNotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc


def _route(reader: LineageReader, path: str, params: dict[str, list[str]]) -> dict[str, Any] | TextBody:
    if path in ("/api/v1/upstream", "/api/v1/downstream"):
        node = _node(reader, params)
        walk = reader.upstream if path.endswith("upstream") else reader.downstream
        return _filtered(walk(node, depth=_depth(params), as_of=_as_of(params)), _kinds(params))
    if path == "/api/v1/impact":
        node = _node(reader, params)
        cap = _int(params, "max_nodes", 10_000, 1, MAX_IMPACT_NODES)
        impact = reader.impact(node, depth=_depth(params), as_of=_as_of(params), max_nodes=cap)
        if params.get("format", ["json"])[0] == "csv":
            return TextBody("text/csv; charset=utf-8", impact.to_csv())
        return impact.to_json()
    if path == "/api/v1/path":
        src, dst = _node(reader, params, "from"), _node(reader, params, "to")
        edges = reader.path(src, dst, as_of=_as_of(params), max_depth=_int(params, "max_depth", 20, 1, MAX_DEPTH))
        return {
            "from": src,
            "to": dst,
            "found": edges is not None,
            "edges": [{"src": s, "dst": d, "edge_type": t} for s, d, t in edges or []],
        }
    if path == "/api/v1/provenance":
        node = _node(reader, params)
        version = params.get("version", [""])[0] or None
        return reader.provenance(node, version, as_of=_as_of(params)).to_json()
    if path == "/api/v1/node":
        node = _node(reader, params)
        return {**reader.node(node), "versions": reader.versions(node)}
    if path == "/api/v1/health":
        namespace = params.get("namespace", [""])[0] or None
        try:
            return reader.health.health(namespace)
        except LookupError as exc:
            raise ApiError(404, str(exc)) from exc
    if path == "/api/v1/alerts":
        open_only = params.get("open", ["false"])[0].lower() in ("1", "true", "yes")
        return {
            "alerts": reader.health.alerts(
                open_only=open_only,
                kind=(params.get("kind", [""])[0] or None),
                namespace=(params.get("namespace", [""])[0] or None),
                limit=_int(params, "limit", 1000, 1, 100_000),
            )
        }
    if path == "/api/v1/drift-impact":
        return reader.health.drift_impact(_node(reader, params))
    if path == "/api/v1/search":
        text = _required(params, "q", "churn")
        return {"query": text, "nodes": reader.search(text, limit=_int(params, "limit", 20, 1, 1000))}
    raise ApiError(404, f"no such endpoint {path!r}")


class ApiServer:
    """Serves `handle` on host:port in a daemon thread; `stop()` shuts it down."""

    def __init__(self, reader: LineageReader, host: str, port: int) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/metrics":  # this process's Prometheus metrics (the sink's, here)
                    self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                    return
                try:
                    status, body = 200, handle(outer.reader, url.path, url.query)
                except ApiError as exc:
                    status, body = exc.status, {"error": str(exc)}
                except Exception as exc:
                    log.exception("API request %s failed", self.path)
                    status, body = 500, {"error": f"internal error: {type(exc).__name__}"}
                if isinstance(body, TextBody):
                    self._send(status, body.text.encode(), body.content_type)
                else:
                    self._send(status, json.dumps(body).encode(), "application/json")

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self.reader = reader
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="upriver-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
