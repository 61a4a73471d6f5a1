"""The read-side HTTP API, served by the process that owns ClickHouse (with chDB, only it can open it).

Stdlib `ThreadingHTTPServer`; JSON in, JSON out; errors are JSON with a message. It only reads.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from upriver.lineage import LineageReader, NodeNotFound, to_json

log = logging.getLogger(__name__)

MAX_DEPTH = 50


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _depth(params: dict[str, list[str]]) -> int:
    raw = params.get("depth", ["10"])[0]
    try:
        depth = int(raw)
    except ValueError:
        raise ApiError(400, f"depth must be an integer, got {raw!r}") from None
    if not 1 <= depth <= MAX_DEPTH:
        raise ApiError(400, f"depth must be between 1 and {MAX_DEPTH}, got {depth}")
    return depth


def handle(reader: LineageReader, path: str, query: str) -> dict[str, Any]:
    """Route one GET request to the read side; raises ApiError with the HTTP status to answer."""
    params = parse_qs(query)
    if path == "/healthz":
        return {"status": "ok"}
    if path in ("/api/v1/upstream", "/api/v1/downstream"):
        node = params.get("node", [""])[0]
        if not node:
            raise ApiError(400, "query parameter 'node' is required, e.g. node=model:registry/churn_model")
        walk = reader.upstream if path.endswith("upstream") else reader.downstream
        try:
            return to_json(walk(node, depth=_depth(params)))
        except NodeNotFound as exc:
            raise ApiError(404, str(exc)) from exc
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
