"""The API's route table: one declaration per route, each with a small handler over the read side.

A route is declared by decorating its handler with `get(...)` or `post(...)`: method, path, summary, the
query parameters (name, type, default, range, description) and what it answers. The server dispatches
through `GET` and `POST` (a dict lookup per request), `handle` answers a GET without a server (the CLI),
and upriver/http/openapi.py generates the OpenAPI document from `ROUTES`. No HTTP server code here.

A GET handler reads its query only through `Query` (upriver/http/spec.py, with the declaration types), which
knows the route's declared parameters (type, default, range): the document and the behaviour come from the
same declaration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from prometheus_client import REGISTRY

from schemas.openlineage import MAX_EVENT_BYTES
from upriver.http.api import Answer, ApiError, MarquezError, TextBody
from upriver.http.ingest import MAX_BODY_BYTES
from upriver.http.marquez import columns as marquez_columns
from upriver.http.marquez import search as marquez_search
from upriver.http.spec import IngestHandler, Param, Query, ReadHandler, Reply, Route, WriteHandler
from upriver.readside.lineage import LineageGraph, LineageReader, NodeNotFound, kind_of, to_json

if TYPE_CHECKING:
    from upriver.http.ingest import OpenLineageIngest

MAX_DEPTH = 50
MAX_IMPACT_NODES = 100_000

ROUTES: list[Route] = []  # in declaration order (the OpenAPI document's)
GET: dict[str, Route] = {}  # by path, every method's routes with no `{name}` segment
POST: dict[str, Route] = {}
PUT: dict[str, Route] = {}
DELETE: dict[str, Route] = {}
TABLES = {"GET": GET, "POST": POST, "PUT": PUT, "DELETE": DELETE}
TEMPLATED: dict[str, list[Route]] = {method: [] for method in TABLES}  # paths with `{name}` segments
GET_ERRORS = (400, 401, 404)


def get(
    path: str, summary: str, *params: Param, answer: str = "JSON", errors: tuple[int, ...] = GET_ERRORS,
    media: tuple[str, ...] = ("application/json",), marquez: bool = False,
) -> Callable[[ReadHandler], ReadHandler]:  # fmt: skip
    """Declares the decorated function the handler of `GET path`."""

    def register(handler: ReadHandler) -> ReadHandler:
        replies = (Reply(200, answer, media),)
        _add(Route(method="GET", path=path, summary=summary, name=handler.__name__, params=params,
                   replies=replies, errors=errors, read=handler, marquez=marquez))  # fmt: skip
        return handler

    return register


def post(
    path: str, summary: str, *replies: Reply, body: Mapping[str, Any], limit: int, errors: tuple[int, ...]
) -> Callable[[IngestHandler], IngestHandler]:
    """Declares the decorated function the handler of `POST path` (a JSON body of at most `limit` bytes)."""

    def register(handler: IngestHandler) -> IngestHandler:
        _add(Route(method="POST", path=path, summary=summary, name=handler.__name__, replies=replies,
                   errors=errors, ingest=handler, body=body, body_limit=limit))  # fmt: skip
        return handler

    return register


def write(
    method: str, path: str, summary: str, *replies: Reply, body: Mapping[str, Any] | None = None,
    limit: int = 0, errors: tuple[int, ...] = GET_ERRORS, marquez: bool = False,
) -> Callable[[WriteHandler], WriteHandler]:  # fmt: skip
    """Declares the decorated function the handler of `method path` (POST, PUT or DELETE), a write that
    publishes through the server's `Writes`; a JSON body of at most `limit` bytes when `body` is given."""

    def register(handler: WriteHandler) -> WriteHandler:
        _add(Route(method=method, path=path, summary=summary, name=handler.__name__, replies=replies,
                   errors=errors, write=handler, body=body, body_limit=limit, marquez=marquez))  # fmt: skip
        return handler

    return register


def _add(route: Route) -> None:
    table = TABLES[route.method]
    if route.path in table or any(r.path == route.path for r in TEMPLATED[route.method]):
        raise ValueError(f"{route.method} {route.path} is declared twice")
    if route.templated:
        TEMPLATED[route.method].append(route)
    else:
        table[route.path] = route
    ROUTES.append(route)


def find(method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    """The route of `method raw_path` (the path still percent-encoded) and its path parameters."""
    route = TABLES.get(method, {}).get(raw_path)
    if route is not None:
        return route, {}
    for candidate in TEMPLATED.get(method, ()):
        found = candidate.match(raw_path)
        if found is not None:
            return candidate, found
    return None


def handle(reader: LineageReader, path: str, query: str) -> Answer:
    """Route one GET request to the read side; raises ApiError with the HTTP status to answer."""
    params = parse_qs(query)
    if path == "/healthz":
        return {"status": "ok"}
    found = find("GET", path)
    read = None if found is None else found[0].read
    if found is None or read is None:
        raise ApiError(404, f"no such endpoint {path!r}")
    route, segments = found
    try:
        return read(reader, Query(route.by_name, params, segments))
    except Exception as exc:
        answer = refusal(route, exc)
        if answer is exc:
            raise
        raise answer from exc


def refusal(route: Route, exc: Exception) -> Exception:
    """What a handler's exception is answered as: NodeNotFound 404, ValueError 400, an ApiError as it is
    (in Marquez's shape on a Marquez route); anything else unchanged (the server answers 500)."""
    if isinstance(exc, NodeNotFound):
        status, text = 404, str(exc)
    elif isinstance(exc, ApiError):
        status, text = exc.status, str(exc)
    elif isinstance(exc, ValueError):
        status, text = 400, str(exc)
    else:
        return exc
    if route.marquez:
        return exc if isinstance(exc, MarquezError) else MarquezError(status, text)
    return exc if isinstance(exc, ApiError) else ApiError(status, text)


# ---- parameters ----------------------------------------------------------------------------------

NODE = Param("node", required=True, example="model:registry/churn_model",
             description="node id kind:namespace/name, or a unique name")  # fmt: skip
AS_OF = Param("as_of", "time", description="ISO 8601 time or epoch ms: the graph as valid then (default: now)")
DEPTH = Param("depth", "integer", "hops to walk", default=10, minimum=1, maximum=MAX_DEPTH)
VIA_JOBS = Param("via_jobs", "boolean", "draw JOB vertices between artifacts, as Marquez does", default=False)
KINDS = Param("kind", "words", "keep only nodes of these kinds (comma-separated or repeated); the root stays")
MARQUEZ_DEPTH = Param("depth", "integer", "with nodeId: Marquez's depth (edges walked from the start fields' own; "
                      "below 2: those alone)", default=20, minimum=-(2**31), maximum=2**31 - 1)  # a Java int
OL_EVENT = {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}


# ---- OpenLineage ingest (upriver/http/ingest.py); the server checks length, type and limit first --------


@post("/api/v1/lineage", "Ingest one OpenLineage event (gzip accepted); durable in Kafka when answered",
      Reply(201, "accepted: the event is in Kafka", media=()),
      body=OL_EVENT, limit=MAX_EVENT_BYTES, errors=(400, 401, 413, 415, 503))  # fmt: skip
def ingest_event(ingest: OpenLineageIngest, body: bytes) -> tuple[int, Any]:
    ingest.one(body)
    return 201, None


@post("/api/v1/lineage/batch", "Ingest a JSON array of OpenLineage events; per-event results",
      Reply(200, "every event accepted"), Reply(207, "some events refused: per-event failures"),
      body={"type": "array", "items": OL_EVENT}, limit=MAX_BODY_BYTES, errors=(400, 401, 413, 415, 503))  # fmt: skip
def ingest_batch(ingest: OpenLineageIngest, body: bytes) -> tuple[int, Any]:
    result = ingest.batch(body)
    status = 200 if not result.failures else 207 if result.successful else 400
    return status, result.to_json()


# ---- lineage queries -----------------------------------------------------------------------------


@get("/api/v1/upstream", "Everything a node was derived from", NODE, DEPTH, AS_OF, VIA_JOBS, KINDS,
     answer="the graph: root, direction, depth, truncated, nodes with levels, edges")  # fmt: skip
def upstream(reader: LineageReader, q: Query) -> Answer:
    return _walk(reader, q, reader.upstream)


@get("/api/v1/downstream", "Everything derived from a node", NODE, DEPTH, AS_OF, VIA_JOBS, KINDS,
     answer="the graph: root, direction, depth, truncated, nodes with levels, edges")  # fmt: skip
def downstream(reader: LineageReader, q: Query) -> Answer:
    return _walk(reader, q, reader.downstream)


def _walk(reader: LineageReader, q: Query, walk: Callable[..., LineageGraph]) -> Answer:
    depth, as_of = q.integer("depth"), q.time("as_of")
    graph = reader.walk_from(q.need("node"), lambda node: walk(node, depth=depth, as_of=as_of))
    if q.flag("via_jobs"):
        graph = reader.with_jobs(graph)
    doc = to_json(graph)
    kinds = q.words("kind")
    if kinds:
        keep = {n for n in graph.nodes if n == graph.root or kind_of(n) in kinds}
        doc["nodes"] = [n for n in doc["nodes"] if n["id"] in keep]
        doc["edges"] = [e for e in doc["edges"] if e["src"] in keep and e["dst"] in keep]
        doc["kinds"] = sorted(kinds)
    return doc


@get("/api/v1/impact", "Affected nodes by kind (format=csv for CSV)", NODE, DEPTH, AS_OF,
     Param("max_nodes", "integer", "the most nodes to collect", default=10_000, minimum=1, maximum=MAX_IMPACT_NODES),
     Param("format", description="csv: the affected nodes as CSV", default="json", enum=("json", "csv")),
     answer="affected nodes and their counts by kind", media=("application/json", "text/csv"))  # fmt: skip
def impact(reader: LineageReader, q: Query) -> Answer:
    depth, as_of, cap = q.integer("depth"), q.time("as_of"), q.integer("max_nodes")
    found = reader.walk_from(q.need("node"), lambda node: reader.impact(node, depth=depth, as_of=as_of, max_nodes=cap))
    if q.text("format") == "csv":
        return TextBody("text/csv; charset=utf-8", found.to_csv())
    return found.to_json()


@get("/api/v1/path", "A path between two nodes",
     Param("from", required=True, example=NODE.example, description="the start: " + NODE.description),
     Param("to", required=True, example=NODE.example, description="the end: " + NODE.description), AS_OF,
     Param("max_depth", "integer", "the longest path looked for", default=20, minimum=1, maximum=MAX_DEPTH),
     answer="from, to, found, and the path's edges")  # fmt: skip
def path_between(reader: LineageReader, q: Query) -> Answer:
    src, dst = reader.resolve(q.need("from")), reader.resolve(q.need("to"))
    edges = reader.path(src, dst, as_of=q.time("as_of"), max_depth=q.integer("max_depth"))
    return {
        "from": src,
        "to": dst,
        "found": edges is not None,
        "edges": [{"src": s, "dst": d, "edge_type": t} for s, d, t in edges or []],
    }


@get("/api/v1/provenance", "The run that produced a version, and what it read", NODE,
     Param("version", description="the version (default: the latest)"), AS_OF)  # fmt: skip
def provenance(reader: LineageReader, q: Query) -> Answer:
    node = reader.resolve(q.need("node"))
    return reader.provenance(node, q.text("version"), as_of=q.time("as_of")).to_json()


@get("/api/v1/node", "A node's (or a job's) attributes, other names, facets and versions", NODE)
def node_details(reader: LineageReader, q: Query) -> Answer:
    found = reader.resolve(q.need("node"))
    return {**reader.node(found), "versions": reader.versions(found)}


@get("/api/v1/column-lineage", "Column edges of a dataset's columns with type and subtype (node=); with nodeId= "
     "(datasetField:ns:name:field, dataset:ns:name or job:ns:name, each optionally #version) Marquez's "
     "column-lineage graph (upriver/http/marquez/columns.py)",
     Param("node", example=NODE.example, description=NODE.description + " (required without nodeId)"), AS_OF,
     Param("nodeId", description="datasetField:<namespace>:<name>:<field>, dataset:<namespace>:<name> or "
                                 "job:<namespace>:<name>, optionally #<version>"),
     MARQUEZ_DEPTH, Param("withDownstream", "boolean", "with nodeId: walk downstream too", default=False,
                          truthy=("true",)))  # fmt: skip
def column_lineage(reader: LineageReader, q: Query) -> Answer:
    if q.has("nodeId"):  # Marquez's answer, every error in Marquez's shape
        try:
            depth, as_of = q.integer("depth"), q.time("as_of")
        except ApiError as exc:
            raise MarquezError(400, f"query param {exc}") from None
        return marquez_columns.column_lineage(reader, q.text("nodeId") or "", depth, q.flag("withDownstream"), as_of)
    found = reader.resolve(q.need("node"))
    return {"node": found, "edges": reader.column_lineage(found, as_of=q.time("as_of"))}


@get("/api/v1/run", "One run: job, status, error, inputs, outputs and facets",
     Param("id", required=True, example="a run id", description="the run id"))  # fmt: skip
def run(reader: LineageReader, q: Query) -> Answer:
    return reader.run(q.need("id"))


@get("/api/v1/search", "Nodes by name (query, nodes) and Marquez's search (totalCount, results): "
     "upriver/http/marquez/search.py", *marquez_search.PARAMS)  # fmt: skip
def search(reader: LineageReader, q: Query) -> Answer:
    return marquez_search.answer(reader, q)


# ---- lineage health ------------------------------------------------------------------------------


@get("/api/v1/health", "Lineage health per namespace", Param("namespace", description="one namespace only"), AS_OF)
def health(reader: LineageReader, q: Query) -> Answer:
    namespace = q.text("namespace")
    try:
        return reader.health.health(namespace, as_of=q.time("as_of"))
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc


@get("/api/v1/alerts", "Health alerts (open=true: open now, or at as_of)",
     Param("open", "boolean", "only the alerts open now (or at as_of)", default=False),
     Param("kind", description="one alert kind only"), Param("subject", description="one subject (node) only"),
     Param("namespace", description="one namespace only"), AS_OF,
     Param("limit", "integer", "the most alerts answered", default=1000, minimum=1, maximum=100_000))  # fmt: skip
def alerts(reader: LineageReader, q: Query) -> Answer:
    open_only = q.flag("open")
    found = reader.health.alerts(
        subject=q.text("subject"),
        as_of=q.time("as_of"),
        open_only=open_only,
        kind=q.text("kind"),
        namespace=q.text("namespace"),
        limit=q.integer("limit"),
    )
    return {"alerts": found}


@get("/api/v1/drift-impact", "Models and deployments a node's drift reaches", NODE, AS_OF)
def drift_impact(reader: LineageReader, q: Query) -> Answer:
    return reader.health.drift_impact(reader.resolve(q.need("node")), as_of=q.time("as_of"))


# ---- this process --------------------------------------------------------------------------------


@get("/api/v1/pipeline", "This process's rows loaded per table and consumer lag (the UI's health page)",
     answer="at (epoch ms), rows_inserted per table, consumer_lag per group and topic", errors=(401,))  # fmt: skip
def pipeline(reader: LineageReader, q: Query) -> Answer:
    return pipeline_figures()


@get("/api/v1/openapi.json", "This OpenAPI document", answer="the OpenAPI 3 document", errors=(401,))
def openapi_document(reader: LineageReader, q: Query) -> Answer:
    from upriver.http.openapi import openapi  # generated from this table, so imported once it is complete

    return openapi()


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


# The Marquez API's routes (upriver/http/marquez/), declared with the decorators above in their own modules.
import upriver.http.marquez.routes  # noqa: E402,F401
