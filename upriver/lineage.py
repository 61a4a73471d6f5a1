"""Read side: lineage walks over the ClickHouse `edges` table with time travel, and their rendering.

Level-by-level BFS from Python, one query per level (not `WITH RECURSIVE`, which has no visited set).
Each level keeps only the edges valid at the asked time (docs/lineage-model.md, "Time travel"): per edge
row the highest revision decides; FAIL/ABORT runs never count; within (dst, job) only the newest valid
run's rows count unless written in APPEND mode; retirements end edges. Never writes.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import quote_identifier
from upriver.health import HealthReader

Direction = Literal["upstream", "downstream"]
EdgeTuple = tuple[str, str, str]

# Ids bound per query: large frontiers are split so each query stays small.
FRONTIER_CHUNK = 5_000


class NodeNotFound(LookupError):  # noqa: N818 - the name callers catch
    """The node has no edges in either direction: check the id (kind:namespace/name, kind lower-case)."""


@dataclass(frozen=True)
class LineageGraph:
    """A bounded walk from `root`: node -> level (root 0), edges as (src, dst, edge_type).

    `truncated` is set when the walk stopped at `depth` while nodes on the last level still had edges
    that were not followed (ask again with a larger depth to see them; whether those edges are valid at
    `as_of` is not judged, to keep the check cheap), or when a node cap stopped it.
    """

    root: str
    direction: Direction
    depth: int
    nodes: dict[str, int] = field(default_factory=dict)
    edges: list[EdgeTuple] = field(default_factory=list)
    truncated: bool = False
    as_of: int | None = None

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LineageGraph:
        """The graph `to_json` described (e.g. an HTTP API answer); raises ValueError if malformed."""
        try:
            direction = doc["direction"]
            if direction not in ("upstream", "downstream"):
                raise ValueError(f"direction must be upstream or downstream, got {direction!r}")
            return cls(
                root=str(doc["root"]),
                direction=direction,
                depth=int(doc["depth"]),
                nodes={str(n["id"]): int(n["level"]) for n in doc["nodes"]},
                edges=[(str(e["src"]), str(e["dst"]), str(e["edge_type"])) for e in doc["edges"]],
                truncated=bool(doc["truncated"]),
                as_of=None if doc.get("as_of") is None else int(doc["as_of"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a lineage graph document ({type(exc).__name__}: {exc})") from exc


FAR_FUTURE_MS = 2**62  # "now": no as-of bound on valid_from
KIND_PREFIXES = ("model", "deployment", "endpoint", "report", "dashboard")


def kind_of(node: str) -> str:
    """The kind part of a node id (`model` for `model:registry/x`), or of a column id's node."""
    return node.split(":", 1)[0]


def parse_time(text: str | int | None) -> int | None:
    """An as-of time as epoch ms: epoch milliseconds, or ISO 8601 (a date, or a time; UTC unless it says)."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text
    raw = text.strip()
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: give ISO 8601 (2026-01-05 or 2026-01-05T12:00:00Z) or epoch ms"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


@dataclass(frozen=True)
class Impact:
    """Everything downstream of `root` (valid at `as_of`), grouped by kind; `partial` when the walk
    stopped at `max_nodes` or `depth` before it ran out of edges."""

    root: str
    depth: int
    as_of: int | None
    levels: dict[str, int]
    partial: bool
    max_nodes: int

    @property
    def by_kind(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for node in sorted(self.levels):
            if node != self.root:
                out[kind_of(node)].append(node)
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        groups = self.by_kind
        return {
            "root": self.root,
            "as_of": self.as_of,
            "depth": self.depth,
            "partial": self.partial,
            "max_nodes": self.max_nodes,
            "total": sum(len(v) for v in groups.values()),
            "counts": {k: len(v) for k, v in groups.items()},
            "by_kind": groups,
            "models": groups.get("model", []),
            "deployments": groups.get("deployment", []) + groups.get("endpoint", []),
            "dashboards": groups.get("dashboard", []) + groups.get("report", []),
        }

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["node_id", "kind", "level"])
        for node, level in sorted(self.levels.items(), key=lambda x: (x[1], x[0])):
            if node != self.root:
                w.writerow([node, kind_of(node), level])
        return buf.getvalue()


@dataclass(frozen=True)
class Provenance:
    """The run that produced `node` (at `version`, or the latest valid one as of `as_of`) and what it read."""

    node: str
    version: str | None
    run_id: str
    job: str
    job_kind: str
    status: str
    started_at: int
    ended_at: int | None
    parent_run_id: str | None
    inputs: list[tuple[str, str | None]]
    outputs: list[tuple[str, str | None]]

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "version": self.version,
            "run_id": self.run_id,
            "job": self.job,
            "job_kind": self.job_kind,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "parent_run_id": self.parent_run_id,
            "inputs": [{"id": n, "version": v} for n, v in self.inputs],
            "outputs": [{"id": n, "version": v} for n, v in self.outputs],
        }


class LineageReader:
    """Graph walks and lookups over `<database>`'s edges, runs and nodes; the same SQL on chDB and a server."""

    def __init__(self, client: Client, database: str, chunk: int = FRONTIER_CHUNK) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self._client = client
        self._db = quote_identifier(database)
        self._table = f"{self._db}.edges"
        self.health = HealthReader(client, database)
        self._chunk = chunk

    # ---- walks --------------------------------------------------------------------------------

    def upstream(self, node_id: str, depth: int = 10, *, as_of: int | None = None) -> LineageGraph:
        """Everything `node_id` was derived from, up to `depth` hops, as valid at `as_of` (None: now)."""
        return self._walk(node_id, "upstream", depth, as_of)

    def downstream(self, node_id: str, depth: int = 10, *, as_of: int | None = None) -> LineageGraph:
        """Everything derived from `node_id`, up to `depth` hops, as valid at `as_of` (None: now)."""
        return self._walk(node_id, "downstream", depth, as_of)

    def _walk(
        self, root: str, direction: Direction, depth: int, as_of: int | None, max_nodes: int | None = None
    ) -> LineageGraph:
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        retired = self._retirements()
        step = self._parents if direction == "upstream" else self._children_of
        other = 0 if direction == "upstream" else 1
        nodes: dict[str, int] = {root: 0}
        edges: list[EdgeTuple] = []
        frontier = [root]
        capped = False
        for level in range(1, depth + 1):
            if not frontier:
                break
            found = sorted(step(frontier, as_of, retired))
            if level == 1 and not found:
                self._require_node(root)
            frontier = []
            for edge in found:
                node = edge[other]
                if node not in nodes:
                    if max_nodes is not None and len(nodes) > max_nodes:
                        capped = True
                        continue
                    nodes[node] = level
                    frontier.append(node)
                edges.append(edge)
        if depth == 0:
            self._require_node(root)
        # "more beyond": the last level has further edges (cheap check, without judging their validity)
        key = "dst" if direction == "upstream" else "src"
        truncated = capped or (bool(frontier) and self._has_edges(key, frontier))
        return LineageGraph(root, direction, depth, nodes, edges, truncated, as_of)

    def impact(self, node_id: str, depth: int = 10, *, as_of: int | None = None, max_nodes: int = 10_000) -> Impact:
        """The downstream set grouped by kind, stopping at `max_nodes` (then `partial` is set)."""
        if max_nodes < 1:
            raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
        graph = self._walk(node_id, "downstream", depth, as_of, max_nodes=max_nodes)
        return Impact(node_id, depth, as_of, graph.nodes, graph.truncated, max_nodes)

    def path(self, src: str, dst: str, *, as_of: int | None = None, max_depth: int = 20) -> list[EdgeTuple] | None:
        """The shortest chain of valid edges from `src` down to `dst` (or from `dst` down to `src`), as
        edges in walk order; None when there is none within `max_depth` hops. Bidirectional BFS: the
        downstream frontier of one end meets the upstream frontier of the other."""
        for a, b in ((src, dst), (dst, src)):
            found = self._path_one_way(a, b, as_of, max_depth)
            if found is not None:
                return found
        self._require_node(src)
        self._require_node(dst)
        return None

    def _path_one_way(self, a: str, b: str, as_of: int | None, max_depth: int) -> list[EdgeTuple] | None:
        if a == b:
            return []
        retired = self._retirements()
        down: dict[str, EdgeTuple | None] = {a: None}  # node -> edge that reached it from a
        up: dict[str, EdgeTuple | None] = {b: None}  # node -> edge that leads from it towards b
        down_frontier, up_frontier = [a], [b]
        for _ in range(max_depth):
            if not down_frontier or not up_frontier:
                return None
            if len(down_frontier) <= len(up_frontier):
                nxt = []
                for edge in sorted(self._children_of(down_frontier, as_of, retired)):
                    if edge[1] not in down:
                        down[edge[1]] = edge
                        nxt.append(edge[1])
                down_frontier = nxt
            else:
                nxt = []
                for edge in sorted(self._parents(up_frontier, as_of, retired)):
                    if edge[0] not in up:
                        up[edge[0]] = edge
                        nxt.append(edge[0])
                up_frontier = nxt
            meet = sorted(set(down) & set(up))
            if meet:
                return self._join_path(meet[0], down, up)
        return None

    @staticmethod
    def _join_path(meet: str, down: dict[str, EdgeTuple | None], up: dict[str, EdgeTuple | None]) -> list[EdgeTuple]:
        head: list[EdgeTuple] = []
        node = meet
        while (edge := down[node]) is not None:
            head.append(edge)
            node = edge[0]
        tail: list[EdgeTuple] = []
        node = meet
        while (edge := up[node]) is not None:
            tail.append(edge)
            node = edge[1]
        return list(reversed(head)) + tail

    # ---- one level ----------------------------------------------------------------------------

    def _valid_sql(self, where: str, as_of: int | None) -> str:
        """Rows of `edges` matching `where`, reduced to the edges valid at `as_of` before retirements:
        highest revision per row, no FAIL/ABORT, valid_from <= as_of, newest non-append run per (dst, job)."""
        bound = FAR_FUTURE_MS if as_of is None else int(as_of)
        return (
            "SELECT src, dst, edge_type, vf FROM ("
            " SELECT src, dst, edge_type, run_id, job, vf, ap,"
            "  max((vf, run_id)) OVER (PARTITION BY dst, job, ap) AS newest"
            " FROM ("
            "  SELECT src, dst, edge_type, run_id, any(job) AS job,"
            "   toUnixTimestamp64Milli(argMax(valid_from, revision)) AS vf,"
            "   argMax(run_status, revision) AS st, argMax(append, revision) AS ap"
            f"  FROM {self._table} WHERE {where}"
            "  GROUP BY src, dst, edge_type, run_id"
            f"  HAVING st NOT IN ('FAIL', 'ABORT') AND vf <= {bound}"
            " )"
            ") WHERE ap OR (vf, run_id) = newest"
        )

    def _parents(self, frontier: list[str], as_of: int | None, retired: Mapping[str, list[int]]) -> set[EdgeTuple]:
        sql = self._valid_sql("dst IN {frontier:Array(String)}", as_of)
        return self._collect(sql, frontier, as_of, retired, None)

    def _children_of(self, frontier: list[str], as_of: int | None, retired: Mapping[str, list[int]]) -> set[EdgeTuple]:
        # Supersession is decided among all rows into a dst, so first find the candidate dsts, then
        # judge them with every row that leads into them, and keep the ones from the frontier.
        candidates: list[str] = []
        sql = f"SELECT dst FROM {self._table} WHERE src IN {{frontier:Array(String)}} GROUP BY dst"
        for chunk in self._chunks(frontier):
            candidates.extend(str(r[0]) for r in self._client.query(sql, parameters={"frontier": chunk}).result_rows)
        if not candidates:
            return set()
        sources = set(frontier)
        valid = self._valid_sql("dst IN {frontier:Array(String)}", as_of)
        return self._collect(valid, candidates, as_of, retired, sources)

    def _collect(
        self,
        sql: str,
        keys: list[str],
        as_of: int | None,
        retired: Mapping[str, list[int]],
        sources: set[str] | None,
    ) -> set[EdgeTuple]:
        now = FAR_FUTURE_MS if as_of is None else as_of
        out: set[EdgeTuple] = set()
        for chunk in self._chunks(keys):
            for src, dst, etype, vf in self._client.query(sql, parameters={"frontier": chunk}).result_rows:
                if sources is not None and src not in sources:
                    continue
                if retired and (_retired(retired, str(src), vf, now) or _retired(retired, str(dst), vf, now)):
                    continue
                out.add((str(src), str(dst), str(etype)))
        return out

    def _has_edges(self, key: str, frontier: list[str]) -> bool:
        sql = f"SELECT 1 FROM {self._table} WHERE {key} IN {{frontier:Array(String)}} LIMIT 1"
        return any(self._client.query(sql, parameters={"frontier": c}).result_rows for c in self._chunks(frontier))

    def _chunks(self, ids: list[str]) -> Iterable[list[str]]:
        for start in range(0, len(ids), self._chunk):
            yield ids[start : start + self._chunk]

    def _retirements(self) -> dict[str, list[int]]:
        """node id -> RETIRE times (epoch ms). Retirements are rare, so all of them are read once per walk."""
        sql = (
            f"SELECT node_id, groupUniqArray(toUnixTimestamp64Milli(retired_at)) FROM {self._db}.retirements"
            " GROUP BY node_id"
        )
        return {str(n): sorted(int(t) for t in ts) for n, ts in self._client.query(sql).result_rows}

    # ---- lookups ------------------------------------------------------------------------------

    def _require_node(self, node_id: str) -> None:
        sql = f"SELECT 1 FROM {self._table} WHERE src = {{n:String}} OR dst = {{n:String}} LIMIT 1"
        if not self._client.query(sql, parameters={"n": node_id}).result_rows:
            raise NodeNotFound(
                f"no lineage for node {node_id!r}: check the id (kind:namespace/name, kind lower-case) "
                "or whether its events have been processed yet"
            )

    def node(self, node_id: str) -> dict[str, Any]:
        """The node's current attributes from the `nodes` table; NodeNotFound when it was never seen."""
        sql = (
            "SELECT node_id, any(kind), min(first_seen), max(last_seen), max(last_written), max(retired_at),"
            " argMaxMerge(latest_version), argMaxMerge(owner), argMaxMerge(tags), argMaxMerge(fields),"
            " argMaxMerge(producing_job), argMaxMerge(producing_run)"
            f" FROM {self._db}.nodes WHERE node_id = {{n:String}} GROUP BY node_id"
        )
        rows = self._client.query(sql, parameters={"n": node_id}).result_rows
        if not rows:
            raise NodeNotFound(f"no node {node_id!r}: check the id (kind:namespace/name, kind lower-case)")
        (nid, kind, first, last, written, retired, version, owner, tags, fields, job, run) = rows[0]

        def ms(value: Any) -> int | None:
            millis = int(value.timestamp() * 1000) if isinstance(value, datetime) else None
            return millis if millis else None

        written_ms, retired_ms = ms(written), ms(retired)
        return {
            "id": nid,
            "kind": kind,
            "first_seen": ms(first),
            "last_seen": ms(last),
            "last_written": written_ms,
            "retired_at": retired_ms,
            "retired": retired_ms is not None and (written_ms is None or retired_ms >= written_ms),
            "latest_version": version or None,
            "owner": owner or None,
            "tags": list(tags),
            "fields": list(fields),
            "producing_job": job or None,
            "producing_run": run or None,
        }

    def search(self, text: str, limit: int = 20) -> list[str]:
        """Node ids containing `text` (case-insensitive), exact and suffix matches first."""
        sql = (
            f"SELECT node_id FROM {self._db}.nodes WHERE positionCaseInsensitive(node_id, {{t:String}}) > 0"
            " GROUP BY node_id ORDER BY node_id != {t:String}, NOT endsWith(node_id, concat('/', {t:String})),"
            " length(node_id), node_id LIMIT {limit:UInt32}"
        )
        return [str(r[0]) for r in self._client.query(sql, parameters={"t": text, "limit": limit}).result_rows]

    def resolve(self, text: str) -> str:
        """A node id from an id or an unambiguous name (`growth_model`, `registry/growth_model`)."""
        if ":" in text.split("/", 1)[0]:
            return text
        matches = [m for m in self.search(text, limit=50) if m.endswith("/" + text) or m.split(":", 1)[1] == text]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise NodeNotFound(f"no node named {text!r}; give its id (kind:namespace/name)")
        raise NodeNotFound(f"{text!r} is ambiguous: {', '.join(matches[:10])}")

    def node_exists(self, node_id: str) -> bool:
        sql = f"SELECT count() FROM {self._db}.nodes WHERE node_id = {{n:String}}"
        return bool(self._client.query(sql, parameters={"n": node_id}).result_rows[0][0])

    def jobs_of(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        """The jobs whose runs made each (src, dst) edge (any revision or validity: for display)."""
        out: dict[tuple[str, str], list[str]] = {}
        for chunk in range(0, len(pairs), self._chunk):
            part = pairs[chunk : chunk + self._chunk]
            srcs = sorted({s for s, _ in part})
            sql = (
                f"SELECT src, dst, groupUniqArray(job) FROM {self._table} "
                "WHERE src IN {s:Array(String)} AND dst IN {d:Array(String)} GROUP BY src, dst"
            )
            rows = self._client.query(sql, parameters={"s": srcs, "d": sorted({d for _, d in part})}).result_rows
            wanted = set(part)
            for src, dst, jobs in rows:
                if (src, dst) in wanted:
                    out[(str(src), str(dst))] = sorted(str(j) for j in jobs)
        return out

    def versions(self, node_id: str) -> list[dict[str, Any]]:
        """Every version of `node_id` some run wrote: version, run, job, status, times (oldest first)."""
        sql = (
            "SELECT output_versions[indexOf(output_ids, {n:String})] AS v, run_id,"
            " concat(job_namespace, '/', job_name), status, toUnixTimestamp64Milli(started_at)"
            f" FROM {self._db}.runs FINAL WHERE has(output_ids, {{n:String}}) ORDER BY started_at, run_id"
        )
        rows = self._client.query(sql, parameters={"n": node_id}).result_rows
        return [
            {"version": v or None, "run_id": r, "job": j, "status": s, "started_at": int(t)} for v, r, j, s, t in rows
        ]

    def provenance(self, node_id: str, version: str | None = None, *, as_of: int | None = None) -> Provenance:
        """Which run produced `node_id` (at `version`, else the newest valid run as of `as_of`), and what it read."""
        bound = FAR_FUTURE_MS if as_of is None else int(as_of)
        version_filter = " AND output_versions[indexOf(output_ids, {n:String})] = {v:String}" if version else ""
        sql = (
            "SELECT run_id, concat(job_namespace, '/', job_name), job_kind, status,"
            " toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(ended_at), parent_run_id,"
            " input_ids, input_versions, output_ids, output_versions"
            f" FROM {self._db}.runs FINAL WHERE has(output_ids, {{n:String}}){version_filter}"
            f" AND status NOT IN ('FAIL', 'ABORT') AND toUnixTimestamp64Milli(started_at) <= {bound}"
            " ORDER BY started_at DESC, run_id DESC LIMIT 1"
        )
        rows = self._client.query(sql, parameters={"n": node_id, "v": version or ""}).result_rows
        if not rows:
            what = f"version {version!r} of {node_id!r}" if version else repr(node_id)
            raise NodeNotFound(f"no valid run wrote {what}" + (f" by {as_of}" if as_of is not None else ""))
        run_id, job, kind, status, started, ended, parent, in_ids, in_v, out_ids, out_v = rows[0]
        written = out_v[list(out_ids).index(node_id)] or None
        return Provenance(
            node=node_id,
            version=written,
            run_id=run_id,
            job=job,
            job_kind=kind,
            status=status,
            started_at=int(started),
            ended_at=None if ended is None else int(ended),
            parent_run_id=parent,
            inputs=[(str(i), v or None) for i, v in zip(in_ids, in_v, strict=True)],
            outputs=[(str(o), v or None) for o, v in zip(out_ids, out_v, strict=True)],
        )


def _retired(retired: Mapping[str, list[int]], node: str, valid_from: int, now: int) -> bool:
    """Whether a RETIRE of `node` (or of a column's node) at R with valid_from <= R <= now ended the edge."""
    times = retired.get(node.split("#", 1)[0])
    return bool(times) and any(valid_from <= t <= now for t in times or ())


def _children(graph: LineageGraph) -> dict[str, dict[str, list[str]]]:
    """node -> child -> edge types, where a child is one step further in the walk's direction."""
    out: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for src, dst, edge_type in graph.edges:
        parent, child = (dst, src) if graph.direction == "upstream" else (src, dst)
        out[parent].setdefault(child, []).append(edge_type)
    return out


def render_tree(graph: LineageGraph) -> str:
    """An indented tree, root first, edge types in brackets; each node is expanded once and later
    mentions are marked "(seen above)" (diamonds and cycles stay finite)."""
    children = _children(graph)
    lines: list[str] = []
    expanded: set[str] = set()
    # Explicit stack of (node, edge types, line head, indent for its children): a deep graph must not
    # hit Python's recursion limit. Children are pushed in reverse so they pop in sorted order.
    stack: list[tuple[str, list[str], str, str]] = [(graph.root, [], "", "")]
    while stack:
        node, types, head, indent = stack.pop()
        label = f"{node} [{', '.join(types)}]" if types else node
        if node in expanded:
            lines.append(f"{head}{label} (seen above)")
            continue
        expanded.add(node)
        lines.append(f"{head}{label}")
        kids = sorted(children.get(node, {}).items())
        for i in reversed(range(len(kids))):
            child, child_types = kids[i]
            last = i == len(kids) - 1
            stack.append(
                (
                    child,
                    sorted(set(child_types)),
                    indent + ("└── " if last else "├── "),
                    indent + ("    " if last else "│   "),
                )
            )
    if graph.truncated:
        lines.append(f"... truncated at depth {graph.depth}: ask for a larger depth to see more")
    return "\n".join(lines)


def to_json(graph: LineageGraph) -> dict[str, Any]:
    """A JSON-ready dict: root, direction, depth, truncated, nodes (id, level) and edges."""
    return {
        "root": graph.root,
        "direction": graph.direction,
        "depth": graph.depth,
        "truncated": graph.truncated,
        "as_of": graph.as_of,
        "nodes": [{"id": n, "level": lvl} for n, lvl in sorted(graph.nodes.items(), key=lambda x: (x[1], x[0]))],
        "edges": [{"src": s, "dst": d, "edge_type": t} for s, d, t in graph.edges],
    }
