"""The read-side HTTP API, served by the process that owns ClickHouse (with chDB, only it can open it).

Stdlib `ThreadingHTTPServer`; JSON in, JSON out; errors are JSON with a message. It only reads.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from schemas import identity
from schemas.openlineage import MAX_EVENT_BYTES
from upriver import metrics
from upriver.http.ingest import MAX_BODY_BYTES, IngestError, OpenLineageIngest, body_bytes
from upriver.readside.lineage import LineageGraph, LineageReader, NodeNotFound, kind_of, parse_time, to_json

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
        graph = walk(node, depth=_depth(params), as_of=_as_of(params))
        if params.get("via_jobs", ["false"])[0].lower() in ("1", "true", "yes"):
            graph = reader.with_jobs(graph)
        return _filtered(graph, _kinds(params))
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
    if path == "/api/v1/column-lineage" and "nodeId" in params:
        return marquez_column_lineage(reader, params)
    if path == "/api/v1/column-lineage":
        node = _node(reader, params)
        return {"node": node, "edges": reader.column_lineage(node, as_of=_as_of(params))}
    if path == "/api/v1/run":
        return reader.run(_required(params, "id", "a run id"))
    if path == "/api/v1/health":
        namespace = params.get("namespace", [""])[0] or None
        try:
            return reader.health.health(namespace, as_of=_as_of(params))
        except LookupError as exc:
            raise ApiError(404, str(exc)) from exc
    if path == "/api/v1/alerts":
        open_only = params.get("open", ["false"])[0].lower() in ("1", "true", "yes")
        return {
            "alerts": reader.health.alerts(
                subject=(params.get("subject", [""])[0] or None),
                as_of=_as_of(params),
                open_only=open_only,
                kind=(params.get("kind", [""])[0] or None),
                namespace=(params.get("namespace", [""])[0] or None),
                limit=_int(params, "limit", 1000, 1, 100_000),
            )
        }
    if path == "/api/v1/drift-impact":
        return reader.health.drift_impact(_node(reader, params), as_of=_as_of(params))
    if path == "/api/v1/lineage":
        return marquez_lineage(reader, params)
    if path == "/api/v1/pipeline":
        return pipeline_figures()
    if path == "/api/v1/openapi.json":
        return openapi()
    if path == "/api/v1/search":
        text = _required(params, "q", "churn")
        return {"query": text, "nodes": reader.search(text, limit=_int(params, "limit", 20, 1, 1000))}
    raise ApiError(404, f"no such endpoint {path!r}")


READ_TIMEOUT_S = 30.0

# The /healthz body of a supervising process (upriver.local.stack.LocalStack.health): `status` "ok" answers 200,
# anything else 503 with the body naming the dead stages.
HealthCheck = Callable[[], dict[str, Any]]


class _Server(ThreadingHTTPServer):
    """A thread per connection (keep-alive), a real listen backlog: the stdlib's 5 reset about half of the
    new connections of 64 concurrent clients; Marquez (4096) took them all."""

    request_queue_size = 1024
    daemon_threads = True


class ApiServer:
    """Serves the read API (`handle`), OpenLineage ingest (POST, when `ingest` is given) and /metrics on
    host:port in daemon threads; `stop()` shuts it down. With `token`, every /api/ request needs
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
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = read_timeout_s  # a client that stops sending (a body shorter than its length) is let go

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
                body: dict[str, Any] | TextBody
                try:
                    if url.path == "/healthz" and outer.health is not None:  # the stages' state (stack.py)
                        body = outer.health()
                        status = 200 if body.get("status") == "ok" else 503
                    else:
                        status, body = 200, handle(outer.reader, url.path, url.query)
                except ApiError as exc:
                    status, body = exc.status, {"error": str(exc)}
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
                    status, body = self._post(url.path)
                except IngestError as exc:
                    status, body = exc.status, {"error": str(exc)}
                except TimeoutError:
                    self.close_connection = True
                    status, body = 408, {"error": f"the body did not arrive within {read_timeout_s:g} s"}
                except Exception as exc:
                    log.exception("API request %s failed", url.path)
                    status, body = 500, {"error": f"internal error: {type(exc).__name__}"}
                self._send(status, b"" if body is None else json.dumps(body).encode(), "application/json")
                metrics.REQUEST_SECONDS.labels("POST", _route_label(url.path)).observe(time.perf_counter() - started)

            def _post(self, path: str) -> tuple[int, Any]:
                raw = (self.headers.get("Content-Length") or "0").strip()
                if not raw.isdigit():  # abc, -1, 1e3: the body's end is unknown, so the connection ends too
                    self.close_connection = True
                    return 400, {"error": f"Content-Length must be a non-negative integer, got {raw!r}"}
                length = int(raw)
                if path not in ("/api/v1/lineage", "/api/v1/lineage/batch"):
                    self._drain(length)
                    return 404, {"error": f"no such endpoint {path!r}"}
                media = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
                if media != "application/json" and not media.endswith("+json"):
                    self._drain(length)
                    return 415, {"error": f"Content-Type must be application/json, got {media!r}"}
                if outer.ingest is None:
                    self._drain(length)
                    return 503, {"error": "OpenLineage ingest is not enabled on this server"}
                limit = MAX_BODY_BYTES if path.endswith("/batch") else MAX_EVENT_BYTES
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
                body = body_bytes(data, self.headers.get("Content-Encoding"), limit)
                if path.endswith("/batch"):
                    result = outer.ingest.batch(body)
                    status = 200 if not result.failures else 207 if result.successful else 400
                    return status, result.to_json()
                outer.ingest.one(body)
                return 201, None

            def _drain(self, length: int) -> None:
                left = length
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)

            def _authorized(self, path: str) -> bool:
                if not outer.token or not path.startswith("/api/"):
                    return True
                given = self.headers.get("Authorization") or ""
                if hmac.compare_digest(given.encode(), f"Bearer {outer.token}".encode()):
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

            do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _not_allowed  # noqa: N815

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                """The stdlib's own refusals (414 URI too long, 431 headers too large, 400 bad request line,
                501) as JSON like every other answer."""
                self.close_connection = True
                text = message or HTTPStatus(code).phrase
                body = b"" if getattr(self, "command", "") == "HEAD" else json.dumps({"error": text}).encode()
                self._send(code, body, "application/json")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self.reader = reader
        self.ingest = ingest
        self.token = token
        self.health = health
        self._server = _Server((host, port), Handler)
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


def _route_label(path: str) -> str:
    """A bounded label for a request path: the routes of the OpenAPI document and the UI, else `other`."""
    return path if path in _known_routes() else "other"


@cache
def _known_routes() -> frozenset[str]:
    return frozenset({*openapi()["paths"], *UI_FILES, "/healthz", "/metrics"})


UI_DIR = Path(__file__).parent / "ui"
UI_FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
            "/ui/app.css": ("app.css", "text/css; charset=utf-8")}  # fmt: skip


def ui_asset(path: str) -> tuple[bytes, str] | None:
    """A packaged UI file (bytes, content type) by URL path; None for anything else."""
    entry = UI_FILES.get(path)
    if entry is None:
        return None
    return (UI_DIR / entry[0]).read_bytes(), entry[1]


def pipeline_figures() -> dict[str, Any]:
    """This process's sink and lag figures (the UI's health page computes rates between two polls)."""
    rows: dict[str, float] = {}
    lag: list[dict[str, Any]] = []
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == "upriver_sink_rows_inserted_total":
                rows[sample.labels["table"]] = sample.value
            elif sample.name == "upriver_consumer_lag":
                lag.append({"group": sample.labels["group"], "topic": sample.labels["topic"], "lag": int(sample.value)})
    return {
        "at": int(time.time() * 1000),
        "rows_inserted": rows,
        "consumer_lag": sorted(lag, key=lambda x: (x["group"], x["topic"])),
    }


def marquez_lineage(reader: LineageReader, params: dict[str, list[str]]) -> dict[str, Any]:
    """`GET /api/v1/lineage?nodeId=dataset:ns:name&depth=N` shaped like Marquez's answer: dataset and job
    vertices with their in/out edges. The datasets are the node's valid upstream and downstream; every job
    whose runs read or wrote one of them is a JOB vertex between its inputs and outputs (also jobs that
    only read, such as tests, or only write). Namespaces and names are echoed exactly as sent."""
    raw = params.get("nodeId", [""])[0]
    if not raw:
        raise ApiError(400, "query parameter 'nodeId' is required, e.g. nodeId=dataset:warehouse:orders")
    node = reader.resolve(raw)
    depth = _int(params, "depth", 20, 1, MAX_DEPTH)
    as_of = _as_of(params)
    try:
        up = reader.upstream(node, depth=depth, as_of=as_of)
        down = reader.downstream(node, depth=depth, as_of=as_of)
    except NodeNotFound:
        if not reader.node_exists(node):  # known, but in no edge (e.g. only ever read): the node alone
            raise
        up = LineageGraph(root=node, direction="upstream", depth=depth, nodes={node: 0})
        down = LineageGraph(root=node, direction="downstream", depth=depth, nodes={node: 0})
    datasets = {n for n in (node, *up.nodes, *down.nodes) if "#" not in n and kind_of(n) != "job"}
    jobs = reader.jobs_touching(sorted(datasets))
    graph: dict[str, dict[str, Any]] = {}

    def vertex(ref: identity.NodeRef, data: dict[str, Any]) -> str:
        vid = identity.marquez_id(ref)
        vtype = "JOB" if ref.kind == identity.JOB else "DATASET"
        base = {"id": {"namespace": ref.namespace, "name": ref.name}, "namespace": ref.namespace, "name": ref.name}
        graph.setdefault(vid, {"id": vid, "type": vtype, "data": {**base, **data}, "inEdges": [], "outEdges": []})
        return vid

    def dataset(nid: str) -> str:
        ref = identity.parse(nid)
        return vertex(ref, {"kind": ref.kind, "upriverId": nid})

    for n in sorted(datasets):
        dataset(n)
    if kind_of(node) == "job" and node not in jobs:
        jobs[node] = {**reader.job(node), "inputs": set(), "outputs": set(), "status": None}
    edges: set[tuple[str, str]] = set()
    for job, info in sorted(jobs.items()):
        jid = vertex(identity.parse(job), {"upriverId": job, "latestRunState": info["status"]})
        edges.update((dataset(i), jid) for i in info["inputs"])
        edges.update((jid, dataset(o)) for o in info["outputs"])
    for origin, destination in sorted(edges):
        edge = {"origin": origin, "destination": destination}
        graph[origin]["outEdges"].append(edge)
        graph[destination]["inEdges"].append(edge)
    return {"graph": list(graph.values())}


def marquez_column_lineage(reader: LineageReader, params: dict[str, list[str]]) -> dict[str, Any]:
    """`GET /api/v1/column-lineage?nodeId=datasetField:ns:name:field|dataset:ns:name&depth=N&withDownstream=`
    shaped like Marquez's answer: DATASET_FIELD vertices with their inputFields (type, subtypes as the
    description), edges as Marquez writes them (origin: the vertex itself). The walk goes upstream from the
    field (or every field of the dataset) for `depth` hops, and downstream too with withDownstream=true."""
    depth = _int(params, "depth", 20, 1, MAX_DEPTH)
    both = params.get("withDownstream", ["false"])[0].lower() == "true"
    try:
        asked = identity.parse_marquez(params["nodeId"][0])
    except identity.IdentityError as exc:
        raise ApiError(400, str(exc)) from None
    node = reader.resolve(f"dataset:{asked.namespace}:{asked.name}")
    by_dataset: dict[str, list[dict[str, Any]]] = {}

    def edges_of(column_or_table: str) -> list[dict[str, Any]]:
        table = identity.node_of(column_or_table)
        if table not in by_dataset:  # field edges only: Marquez has no dataset-level (`#`) entries
            by_dataset[table] = [e for e in reader.column_lineage(table) if identity.field_of(e["dst"])]
        return by_dataset[table]

    if asked.field is not None:
        start = [identity.column_id(node, asked.field)]
    else:
        ends = {e[k] for e in edges_of(node) for k in ("src", "dst")}
        start = sorted(c for c in ends if identity.node_of(c) == node)
    seen, found = set(start), set()
    for here, there in (("dst", "src"), ("src", "dst")) if both else (("dst", "src"),):
        frontier = list(start)
        for _ in range(depth):
            step = []
            for col in frontier:
                for e in edges_of(col):
                    if e[here] == col:
                        found.add((e["src"], e["dst"], e["type"], e["subtype"]))
                        if e[there] not in seen:
                            seen.add(e[there])
                            step.append(e[there])
            frontier = step
    return {"graph": [_field_vertex(col, found) for col in sorted(seen)]}


def _field_vertex(col: str, edges: set[tuple[str, str, str, str | None]]) -> dict[str, Any]:
    ref = identity.parse(col)
    vid = identity.marquez_id(ref)
    ins, outs = sorted(e for e in edges if e[1] == col), sorted(e for e in edges if e[0] == col)
    inputs = []
    for src, _, ttype, subtype in ins:
        s = identity.parse(src)
        inputs.append({"namespace": s.namespace, "dataset": s.name, "field": s.field,
                       "transformationDescription": subtype, "transformationType": ttype})  # fmt: skip
    first = inputs[0] if inputs else {}
    data = {"namespace": ref.namespace, "dataset": ref.name, "datasetVersion": None, "field": ref.field,
            "fieldType": None, "transformationDescription": first.get("transformationDescription"),
            "transformationType": first.get("transformationType"), "inputFields": inputs}  # fmt: skip
    return {
        "id": vid,
        "type": "DATASET_FIELD",
        "data": data,
        "inEdges": [{"origin": vid, "destination": identity.marquez_id(identity.parse(e[0]))} for e in ins],
        "outEdges": [{"origin": vid, "destination": identity.marquez_id(identity.parse(e[1]))} for e in outs],
    }


def openapi() -> dict[str, Any]:
    """The OpenAPI 3 document of this server (docs/openlineage.md lists the same)."""
    node = {"name": "node", "in": "query", "required": True, "schema": {"type": "string"},
            "description": "node id kind:namespace/name, or a unique name"}  # fmt: skip
    as_of = {"name": "as_of", "in": "query", "schema": {"type": "string"},
             "description": "ISO 8601 time or epoch ms: the graph as valid then"}  # fmt: skip
    depth = {"name": "depth", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DEPTH}}
    via_jobs = {"name": "via_jobs", "in": "query", "schema": {"type": "boolean"},
                "description": "draw JOB vertices between artifacts, as Marquez does"}  # fmt: skip
    error = {
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    ok = {"description": "JSON", "content": {"application/json": {"schema": {"type": "object"}}}}

    def get(summary: str, *parameters: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"summary": summary, "parameters": list(parameters),
                        "responses": {"200": ok, "400": error, "404": error}}}  # fmt: skip

    ol_event = {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}
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
        "paths": {
            "/api/v1/lineage": {
                "post": {
                    "summary": "Ingest one OpenLineage event (gzip accepted); durable in Kafka when answered",
                    "requestBody": {"content": {"application/json": {"schema": ol_event}}},
                    "responses": {
                        "201": {"description": "accepted"},
                        "400": error,
                        "401": error,
                        "413": error,
                        "503": error,
                    },
                },
                **get(
                    "Marquez-shaped lineage graph around a node",
                    {
                        "name": "nodeId",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "dataset:<namespace>:<name> (or an Upriver node id)",
                    },
                    depth,
                    as_of,
                ),
            },
            "/api/v1/lineage/batch": {
                "post": {
                    "summary": "Ingest a JSON array of OpenLineage events; per-event results",
                    "requestBody": {"content": {"application/json": {"schema": {"type": "array", "items": ol_event}}}},
                    "responses": {"200": ok, "207": ok, "400": error, "401": error, "413": error, "503": error},
                }
            },
            "/api/v1/upstream": get("Everything a node was derived from", node, depth, as_of, via_jobs),
            "/api/v1/downstream": get("Everything derived from a node", node, depth, as_of, via_jobs),
            "/api/v1/impact": get("Affected nodes by kind (format=csv for CSV)", node, depth, as_of),
            "/api/v1/path": get(
                "A path between two nodes",
                {"name": "from", "in": "query", "required": True},
                {"name": "to", "in": "query", "required": True},
                as_of,
            ),
            "/api/v1/provenance": get("The run that produced a version, and what it read", node, as_of),
            "/api/v1/node": get("A node's (or a job's) attributes, other names, facets and versions", node),
            "/api/v1/column-lineage": get(
                "Column edges of a dataset's columns with type and subtype (node=); with nodeId= (datasetField:"
                "ns:name:field or dataset:ns:name) Marquez's column-lineage graph",
                {**node, "required": False},
                as_of,
                {"name": "nodeId", "in": "query", "schema": {"type": "string"}},
                depth,
                {"name": "withDownstream", "in": "query", "schema": {"type": "boolean"}},
            ),
            "/api/v1/run": get(
                "One run: job, status, error, inputs, outputs and facets",
                {"name": "id", "in": "query", "required": True},
            ),
            "/api/v1/search": get("Nodes by name", {"name": "q", "in": "query", "required": True}),
            "/api/v1/health": get("Lineage health per namespace", {"name": "namespace", "in": "query"}, as_of),
            "/api/v1/alerts": get(
                "Health alerts (open=true: open now, or at as_of)",
                {"name": "open", "in": "query"},
                {"name": "kind", "in": "query"},
                {"name": "subject", "in": "query"},
                as_of,
            ),
            "/api/v1/drift-impact": get("Models and deployments a node's drift reaches", node, as_of),
            "/api/v1/pipeline": get("This process's rows loaded per table and consumer lag (the UI's health page)"),
        },
    }
