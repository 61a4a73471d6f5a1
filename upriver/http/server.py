"""The HTTP server of the API, run by the process that owns ClickHouse (with chDB, only it can open it).

Stdlib `ThreadingHTTPServer`, a thread per connection; JSON in, JSON out; errors are JSON with a message.
GET and POST are dispatched through the route table (upriver/http/routes.py); this module adds what is
HTTP's own: the bearer token, Content-Length, Content-Type and body limits of POSTs, /healthz, /metrics,
the web UI's files (upriver/http/ui/, docs/ui.md), 405 for other methods and the request metrics.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from upriver import metrics
from upriver.http import routes
from upriver.http.api import Answer, ApiError, HealthCheck, TextBody
from upriver.http.ingest import MAX_BODY_BYTES, IngestError, OpenLineageIngest, body_bytes
from upriver.http.spec import Query, Route, Writes
from upriver.readside.lineage import LineageReader

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0

UI_DIR = Path(__file__).parent / "ui"
UI_FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
            "/ui/app.css": ("app.css", "text/css; charset=utf-8")}  # fmt: skip


class ApiServer:
    """Serves the read API (`routes.handle`), OpenLineage ingest (POST, when `ingest` is given) and /metrics
    on host:port in daemon threads; `stop()` shuts it down. With `token`, every /api/ request needs
    `Authorization: Bearer <token>` (the OpenLineage transports' api_key); /healthz and /metrics do not.
    With `health` (a supervisor's HealthCheck) /healthz answers its body, 503 unless its status is ok."""

    def __init__(
        self,
        reader: LineageReader,
        host: str,
        port: int,
        ingest: OpenLineageIngest | None = None,
        token: str = "",
        read_timeout_s: float = READ_TIMEOUT_S,
        health: HealthCheck | None = None,
        writes: Writes | None = None,
    ) -> None:
        self.reader = reader
        self.ingest = ingest
        self.writes = writes  # the Marquez tag writes' publisher (None: they answer 503)
        self.token = token
        self.read_timeout_s = read_timeout_s  # a client that stops sending (a body shorter than its length) is let go
        self.health = health
        self._server = _Server((host, port), self)
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
        if self.ingest is not None:
            self.ingest.close()


class _Server(ThreadingHTTPServer):
    """A thread per connection (keep-alive), a real listen backlog: the stdlib's 5 reset about half of the
    new connections of 64 concurrent clients; Marquez (4096) took them all."""

    request_queue_size = 1024
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: ApiServer) -> None:
        self.api = api
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """One connection's requests (HTTP/1.1 keep-alive), answered for the server's ApiServer."""

    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY the second waits for the client's delayed ACK
    # (Nagle), ~25-40 ms a request; batches of 100 went 3,790 -> 4,833 events/s (benchmarks/http_frameworks.py)
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        self.api = self.server.api
        self.request.settimeout(self.api.read_timeout_s)
        super().setup()

    def do_GET(self) -> None:
        url = urlparse(self.path)
        started = time.perf_counter()
        if url.path == "/metrics":  # this process's Prometheus metrics (the sink's, here)
            self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            return
        if url.path == "/" or url.path.startswith("/ui/"):  # the web UI (docs/ui.md), packaged files
            asset = ui_asset(url.path)
            if asset is None:
                self._send(404, b'{"error": "no such file"}', "application/json")
            else:
                self._send(200, asset[0], asset[1], extra={"Cache-Control": "no-cache"})
            return
        if not self._authorized(url.path):
            return
        body: Answer
        try:
            if url.path == "/healthz" and self.api.health is not None:  # the stages' state (stack.py)
                body = self.api.health()
                status = 200 if body.get("status") == "ok" else 503
            else:
                status, body = 200, routes.handle(self.api.reader, url.path, url.query)
        except ApiError as exc:
            status, body = exc.status, exc.body()
        except Exception as exc:
            log.exception("API request %s failed", url.path)
            status, body = 500, {"error": f"internal error: {type(exc).__name__}"}
        if isinstance(body, TextBody):
            self._send(status, body.text.encode(), body.content_type)
        else:
            self._send(status, json.dumps(body).encode(), "application/json")
        metrics.REQUEST_SECONDS.labels("GET", _route_label(url.path)).observe(time.perf_counter() - started)

    def do_POST(self) -> None:
        url = urlparse(self.path)
        started = time.perf_counter()
        if not self._authorized(url.path):
            return
        try:
            status, body = self._post(url.path, url.query)
        except IngestError as exc:
            status, body = exc.status, {"error": str(exc)}
        except ApiError as exc:
            status, body = exc.status, exc.body()
        except TimeoutError:
            self.close_connection = True
            status, body = 408, {"error": f"the body did not arrive within {self.api.read_timeout_s:g} s"}
        except Exception as exc:
            log.exception("API request %s failed", url.path)
            status, body = 500, {"error": f"internal error: {type(exc).__name__}"}
        self._send(status, b"" if body is None else json.dumps(body).encode(), "application/json")
        metrics.REQUEST_SECONDS.labels(self.command, _route_label(url.path)).observe(time.perf_counter() - started)

    def _put_or_delete(self) -> None:
        """PUT and DELETE: the write routes (the Marquez tag writes); 405 on any other path."""
        if routes.find(self.command, urlparse(self.path).path) is None:
            self._not_allowed()
        else:
            self.do_POST()

    do_PUT = do_DELETE = _put_or_delete  # noqa: N815

    def _post(self, path: str, query: str) -> tuple[int, Any]:
        """A POST/PUT/DELETE route's answer: the body checked (length, type, limit), read, decompressed,
        then handled (OpenLineage ingest, or a write through the server's Writes)."""
        raw = (self.headers.get("Content-Length") or "0").strip()
        if not raw.isdigit():  # abc, -1, 1e3: the body's end is unknown, so the connection ends too
            self.close_connection = True
            return 400, {"error": f"Content-Length must be a non-negative integer, got {raw!r}"}
        length = int(raw)
        found = routes.find(self.command, path)
        if found is None or (found[0].ingest is None and found[0].write is None):
            self._drain(length)
            return 404, {"error": f"no such endpoint {path!r}"}
        route, segments = found
        if route.write is not None:
            return self._write(route, segments, query, length)
        ingest = route.ingest
        assert ingest is not None
        media = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            self._drain(length)
            return 415, {"error": f"Content-Type must be application/json, got {media!r}"}
        if self.api.ingest is None:
            self._drain(length)
            return 503, {"error": "OpenLineage ingest is not enabled on this server"}
        limit = route.body_limit
        if length > limit:
            if length <= 2 * MAX_BODY_BYTES:
                self._drain(length)  # read and drop it, so the client sees the answer
            else:
                self.close_connection = True
            return 413, {"error": f"body is {length:,} bytes; the limit is {limit:,} (docs/openlineage.md)"}
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            return 400, {"error": f"the body ended after {len(data):,} of its {length:,} bytes"}
        return ingest(self.api.ingest, body_bytes(data, self.headers.get("Content-Encoding"), limit))

    def _write(self, route: Route, segments: dict[str, str], query: str, length: int) -> tuple[int, Any]:
        """A write route: its (small, optional) JSON body read, then its handler over the server's Writes."""
        if self.api.writes is None:
            self._drain(length)
            raise routes.refusal(route, ApiError(503, "writes are not enabled on this server"))
        if length > max(route.body_limit, 0):
            self.close_connection = True
            raise routes.refusal(route, ApiError(413, f"body is {length:,} bytes; the limit is {route.body_limit:,}"))
        data = self.rfile.read(length) if length else b""
        handler, writes = route.write, self.api.writes
        assert handler is not None
        try:
            status, body = handler(self.api.reader, writes, Query(route.by_name, parse_qs(query), segments), data)
            return status, body
        except Exception as exc:
            answer = routes.refusal(route, exc)
            if answer is exc:
                raise
            raise answer from exc

    def _drain(self, length: int) -> None:
        left = length
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def _authorized(self, path: str) -> bool:
        token = self.api.token
        if not token or not path.startswith("/api/"):
            return True
        given = self.headers.get("Authorization") or ""
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
        if self.command == "POST":
            self.close_connection = True
        # the header's value is never logged or echoed
        self._send(401, json.dumps({"error": "missing or wrong bearer token"}).encode(), "application/json",
                   extra={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return False

    def _send(self, status: int, data: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _not_allowed(self) -> None:
        body = b"" if self.command == "HEAD" else json.dumps(
            {"error": f"method {self.command} is not allowed; use GET or POST"}).encode()  # fmt: skip
        self.close_connection = True
        self._send(405, body, "application/json", extra={"Allow": "GET, POST"})

    do_PATCH = do_OPTIONS = do_HEAD = _not_allowed  # noqa: N815

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (414 URI too long, 431 headers too large, 400 bad request line,
        501) as JSON like every other answer."""
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        body = b"" if getattr(self, "command", "") == "HEAD" else json.dumps({"error": text}).encode()
        self._send(code, body, "application/json")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


# Request metrics are labelled by route: the route table's paths, the UI's files, /healthz and /metrics.
_KNOWN_ROUTES = frozenset({*(r.path for r in routes.ROUTES), *UI_FILES, "/healthz", "/metrics"})


def _route_label(path: str) -> str:
    """A bounded label for a request path: a known route's path (a templated route's template), else `other`."""
    if path in _KNOWN_ROUTES and "{" not in path:
        return path
    for method in ("GET", "POST", "PUT", "DELETE"):
        found = routes.find(method, path)
        if found is not None:
            return found[0].path
    return "other"


def ui_asset(path: str) -> tuple[bytes, str] | None:
    """A packaged UI file (bytes, content type) by URL path; None for anything else."""
    entry = UI_FILES.get(path)
    if entry is None:
        return None
    return (UI_DIR / entry[0]).read_bytes(), entry[1]
