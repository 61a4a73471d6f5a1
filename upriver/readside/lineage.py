"""Read side: lineage walks over the ClickHouse `edges` table with time travel, and their rendering.

Level-by-level BFS from Python, one query per level (not `WITH RECURSIVE`, which has no visited set).
Each level keeps only the edges valid at the asked time (docs/lineage-model.md, "Time travel"): per edge
row the highest revision decides; FAIL/ABORT runs never count; within (dst, job) only the newest valid
run's rows count unless written in APPEND mode; retirements end edges. Never writes.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from schemas import identity
from sinks.clickhouse import quote_identifier
from upriver.readside.aliases import Aliases
from upriver.readside.health import HealthReader

Direction = Literal["upstream", "downstream"]
EdgeTuple = tuple[str, str, str]

# Ids bound per query: large frontiers are split so each query stays small.
FRONTIER_CHUNK = 5_000


class NodeNotFound(LookupError):  # noqa: N818 - the name callers catch
    """The node has no edges in either direction: check the id (kind:namespace/name, kind lower-case)."""


JOB_EDGES = ("READS", "WRITTEN_BY")  # dataset -> job (the job reads it), job -> dataset (written by it)


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
    # the jobs whose runs made each edge (for `with_jobs`; not part of the JSON form)
    edge_jobs: dict[EdgeTuple, list[str]] = field(default_factory=dict, compare=False)

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


kind_of = identity.kind_of


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
        aliases = self.aliases()
        root = aliases.canonical(root)
        step = self._parents if direction == "upstream" else self._children_of
        other = 0 if direction == "upstream" else 1
        nodes: dict[str, int] = {root: 0}
        edges: list[EdgeTuple] = []
        edge_jobs: dict[EdgeTuple, list[str]] = {}
        frontier = [root]
        capped = False
        for level in range(1, depth + 1):
            if not frontier:
                break
            if level == 1 and kind_of(root) == "job":
                found_jobs = self._job_level(root, direction, as_of, aliases)
            else:
                found_jobs = step(frontier, as_of, retired, aliases)
            found = sorted(found_jobs)
            if level == 1 and not found:
                self._require_node(root, aliases)
            frontier = []
            for edge in found:
                edge_jobs[edge] = sorted(found_jobs[edge])
                node = edge[other]
                if node not in nodes:
                    if max_nodes is not None and len(nodes) > max_nodes:
                        capped = True
                        continue
                    nodes[node] = level
                    frontier.append(node)
                edges.append(edge)
        if depth == 0:
            self._require_node(root, aliases)
        # "more beyond": the last level has further edges (cheap check, without judging their validity)
        key = "dst" if direction == "upstream" else "src"
        truncated = capped or (bool(frontier) and self._has_edges(key, aliases.expand(frontier)))
        return LineageGraph(root, direction, depth, nodes, edges, truncated, as_of, edge_jobs)

    def impact(self, node_id: str, depth: int = 10, *, as_of: int | None = None, max_nodes: int = 10_000) -> Impact:
        """The downstream set grouped by kind, stopping at `max_nodes` (then `partial` is set)."""
        if max_nodes < 1:
            raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
        graph = self._walk(node_id, "downstream", depth, as_of, max_nodes=max_nodes)
        return Impact(graph.root, depth, as_of, graph.nodes, graph.truncated, max_nodes)

    def path(self, src: str, dst: str, *, as_of: int | None = None, max_depth: int = 20) -> list[EdgeTuple] | None:
        """The shortest chain of valid edges from `src` down to `dst` (or from `dst` down to `src`), as
        edges in walk order; None when there is none within `max_depth` hops. Bidirectional BFS: the
        downstream frontier of one end meets the upstream frontier of the other."""
        aliases = self.aliases()
        src, dst = aliases.canonical(src), aliases.canonical(dst)
        for a, b in ((src, dst), (dst, src)):
            found = self._path_one_way(a, b, as_of, max_depth, aliases)
            if found is not None:
                return found
        self._require_node(src, aliases)
        self._require_node(dst, aliases)
        return None

    def _path_one_way(
        self, a: str, b: str, as_of: int | None, max_depth: int, aliases: Aliases
    ) -> list[EdgeTuple] | None:
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
                for edge in sorted(self._children_of(down_frontier, as_of, retired, aliases)):
                    if edge[1] not in down:
                        down[edge[1]] = edge
                        nxt.append(edge[1])
                down_frontier = nxt
            else:
                nxt = []
                for edge in sorted(self._parents(up_frontier, as_of, retired, aliases)):
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
            "SELECT src, dst, edge_type, vf, job FROM ("
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

    def _parents(
        self, frontier: list[str], as_of: int | None, retired: Mapping[str, list[int]], aliases: Aliases
    ) -> dict[EdgeTuple, set[str]]:
        sql = self._valid_sql("dst IN {frontier:Array(String)}", as_of)
        return self._collect(sql, aliases.expand(frontier), as_of, retired, None, aliases)

    def _children_of(
        self, frontier: list[str], as_of: int | None, retired: Mapping[str, list[int]], aliases: Aliases
    ) -> dict[EdgeTuple, set[str]]:
        # Supersession is decided among all rows into a dst, so first find the candidate dsts, then
        # judge them with every row that leads into them, and keep the ones from the frontier.
        names = aliases.expand(frontier)
        candidates: list[str] = []
        sql = f"SELECT dst FROM {self._table} WHERE src IN {{frontier:Array(String)}} GROUP BY dst"
        for chunk in self._chunks(names):
            candidates.extend(str(r[0]) for r in self._client.query(sql, parameters={"frontier": chunk}).result_rows)
        if not candidates:
            return {}
        valid = self._valid_sql("dst IN {frontier:Array(String)}", as_of)
        return self._collect(valid, candidates, as_of, retired, set(names), aliases)

    def _collect(
        self,
        sql: str,
        keys: list[str],
        as_of: int | None,
        retired: Mapping[str, list[int]],
        sources: set[str] | None,
        aliases: Aliases,
    ) -> dict[EdgeTuple, set[str]]:
        """Valid edges (ids mapped to their canonical node) -> the jobs whose runs made them."""
        now = FAR_FUTURE_MS if as_of is None else as_of
        out: dict[EdgeTuple, set[str]] = {}
        for chunk in self._chunks(keys):
            for src, dst, etype, vf, job in self._client.query(sql, parameters={"frontier": chunk}).result_rows:
                if sources is not None and src not in sources:
                    continue
                if retired and (_retired(retired, str(src), vf, now) or _retired(retired, str(dst), vf, now)):
                    continue
                csrc, cdst = aliases.canonical(str(src)), aliases.canonical(str(dst))
                if csrc != cdst:  # a run that read a table by path and wrote it by name is no edge
                    out.setdefault((csrc, cdst, str(etype)), set()).add(str(job))
        return out

    def _job_level(
        self, job: str, direction: Direction, as_of: int | None, aliases: Aliases
    ) -> dict[EdgeTuple, set[str]]:
        """A job vertex's first level: the artifacts its runs (not failed or aborted) read, upstream, or
        wrote, downstream, as of `as_of`."""
        bound = FAR_FUTURE_MS if as_of is None else int(as_of)
        side = "input_ids" if direction == "upstream" else "output_ids"
        sql = (
            f"SELECT DISTINCT arrayJoin({side}) FROM {self._db}.runs FINAL WHERE job_id = {{j:String}}"
            f" AND status NOT IN ('FAIL', 'ABORT') AND toUnixTimestamp64Milli(started_at) <= {bound}"
        )
        out: dict[EdgeTuple, set[str]] = {}
        for (raw,) in self._client.query(sql, parameters={"j": job}).result_rows:
            node = aliases.canonical(str(raw))
            edge = (node, job, JOB_EDGES[0]) if direction == "upstream" else (job, node, JOB_EDGES[1])
            out.setdefault(edge, set()).add(job)
        return out

    def _has_edges(self, key: str, frontier: list[str]) -> bool:
        sql = f"SELECT 1 FROM {self._table} WHERE {key} IN {{frontier:Array(String)}} LIMIT 1"
        return any(self._client.query(sql, parameters={"frontier": c}).result_rows for c in self._chunks(frontier))

    def _chunks(self, ids: list[str]) -> Iterable[list[str]]:
        for start in range(0, len(ids), self._chunk):
            yield ids[start : start + self._chunk]

    def aliases(self) -> Aliases:
        """Every alias pair (small: one per name beside a symlink), read once per query."""
        sql = f"SELECT alias_id, node_id FROM {self._db}.aliases GROUP BY alias_id, node_id"
        return Aliases((str(a), str(n)) for a, n in self._client.query(sql).result_rows)

    def _retirements(self) -> dict[str, list[int]]:
        """node id -> RETIRE times (epoch ms). Retirements are rare, so all of them are read once per walk."""
        sql = (
            f"SELECT node_id, groupUniqArray(toUnixTimestamp64Milli(retired_at)) FROM {self._db}.retirements"
            " GROUP BY node_id"
        )
        return {str(n): sorted(int(t) for t in ts) for n, ts in self._client.query(sql).result_rows}

    def with_jobs(self, graph: LineageGraph) -> LineageGraph:
        """The graph with JOB vertices between artifacts, as Marquez draws them: each edge made by job J
        becomes src -READS-> J -WRITTEN_BY-> dst; jobs that only read a node of a downstream walk (tests)
        or only wrote a node of an upstream walk (source loaders) hang off it. Levels are hops from root."""
        edges: set[EdgeTuple] = set()
        for (src, dst, _etype), jobs in graph.edge_jobs.items():
            if "#" in src:
                continue
            for job in jobs:
                if job in (src, dst):  # already a job edge (a walk rooted at a job)
                    edges.add((src, dst, _etype))
                    continue
                edges.add((src, job, JOB_EDGES[0]))
                edges.add((job, dst, JOB_EDGES[1]))
        artifacts = [n for n in graph.nodes if "#" not in n and kind_of(n) != "job"]
        for job, info in self.jobs_touching(artifacts).items():
            if graph.direction == "downstream" and not info["outputs"]:
                edges.update((i, job, JOB_EDGES[0]) for i in info["inputs"] if i in graph.nodes)
            if graph.direction == "upstream" and not info["inputs"]:
                edges.update((job, o, JOB_EDGES[1]) for o in info["outputs"] if o in graph.nodes)
        levels = {graph.root: 0}
        frontier = [graph.root]
        far, near = (0, 1) if graph.direction == "upstream" else (1, 0)
        while frontier:
            nxt = []
            for e in sorted(edges):
                if e[near] in frontier and e[far] not in levels:
                    levels[e[far]] = levels[e[near]] + 1
                    nxt.append(e[far])
            frontier = nxt
        ordered = sorted(edges)
        return LineageGraph(graph.root, graph.direction, graph.depth, levels, ordered, graph.truncated, graph.as_of)

    # ---- lookups ------------------------------------------------------------------------------

    def _require_node(self, node_id: str, aliases: Aliases | None = None) -> None:
        if not self.node_exists(node_id, aliases):
            raise NodeNotFound(
                f"no lineage for node {node_id!r}: check the id (kind:namespace/name, kind lower-case) "
                "or whether its events have been processed yet"
            )

    def node_exists(self, node_id: str, aliases: Aliases | None = None) -> bool:
        """Whether any name of the node (or the job) was ever seen: in a run, an edge or an alias. A caller
        that holds the request's aliases passes them (they are read once per request)."""
        aliases = self.aliases() if aliases is None else aliases
        names = aliases.names(identity.node_of(node_id))
        if kind_of(node_id) == "job":
            sql = f"SELECT count() FROM {self._db}.runs WHERE job_id IN {{n:Array(String)}}"
        else:
            sql = f"SELECT count() FROM {self._db}.nodes WHERE node_id IN {{n:Array(String)}}"
        if self._client.query(sql, parameters={"n": list(names)}).result_rows[0][0]:
            return True
        # or named only as a column source (dbt seeds inside columnLineage): its columns have edges
        sql = (
            f"SELECT 1 FROM {self._table} WHERE src IN {{n:Array(String)}} OR dst IN {{n:Array(String)}}"
            " OR arrayExists(p -> startsWith(src, p), {p:Array(String)}) LIMIT 1"
        )
        expanded = list(aliases.names(node_id))
        prefixes = [f"{n}#" for n in expanded if "#" not in n]
        return bool(self._client.query(sql, parameters={"n": expanded, "p": prefixes}).result_rows)

    def node(self, node_id: str) -> dict[str, Any]:
        """The node's current attributes over every name it was sent under (the `nodes` table), its other
        names, and the latest value of each facet; NodeNotFound when it was never seen."""
        aliases = self.aliases()
        canonical = aliases.canonical(node_id)
        if kind_of(canonical) == "job":
            return self.job(canonical)
        names = list(aliases.names(canonical))
        sql = (
            "SELECT count(), any(kind), min(first_seen), max(last_seen), max(last_written), max(retired_at),"
            " argMaxMerge(latest_version), argMaxMerge(owner), argMaxMerge(tags), argMaxMerge(fields),"
            " argMaxMerge(producing_job), argMaxMerge(producing_run)"
            f" FROM {self._db}.nodes WHERE node_id IN {{n:Array(String)}}"
        )
        rows = self._client.query(sql, parameters={"n": names}).result_rows
        ref = identity.parse(canonical)
        if not rows or not rows[0][0]:
            if not self.node_exists(canonical, aliases):
                raise NodeNotFound(f"no node {node_id!r}: check the id (kind:namespace/name, kind lower-case)")
            # named only as a column source (dbt seeds inside columnLineage): known, with no run of its own
            rows = [(0, ref.kind, None, None, None, None, "", "", [], [], "", "")]
        (_, kind, first, last, written, retired, version, owner, tags, fields, job, run) = rows[0]
        written_ms, retired_ms = _ms(written), _ms(retired)
        return {
            "id": canonical,
            "kind": kind,
            "namespace": ref.namespace,
            "name": ref.name,
            "aliases": [{"id": a.id, "namespace": a.namespace, "name": a.name} for a in aliases.others(canonical)],
            "first_seen": _ms(first),
            "last_seen": _ms(last),
            "last_written": written_ms,
            "retired_at": retired_ms,
            "retired": retired_ms is not None and (written_ms is None or retired_ms >= written_ms),
            "latest_version": version or None,
            "owner": owner or None,
            "tags": list(tags),
            "fields": list(fields),
            "producing_job": job or None,
            "producing_run": run or None,
            "facets": self._facets(names),
        }

    def _facets(self, names: list[str], limit: int = 200) -> dict[str, Any]:
        """The latest value of each facet the node's runs gave it (documentation, ownership, schema, tags,
        dataQualityAssertions ...), from its newest `limit` runs; Upriver's own bookkeeping facets left out."""
        sql = (
            "SELECT arrayFilter((f, i) -> has({n:Array(String)}, i), arrayConcat(input_facets, output_facets),"
            " arrayConcat(input_ids, output_ids)) FROM ("
            f" SELECT * FROM {self._db}.runs FINAL"
            "  WHERE hasAny(input_ids, {n:Array(String)}) OR hasAny(output_ids, {n:Array(String)})"
            "  ORDER BY coalesce(ended_at, started_at) DESC, run_id DESC LIMIT {limit:UInt32}"
            ") ORDER BY coalesce(ended_at, started_at), run_id"
        )
        out: dict[str, Any] = {}
        for (facet_texts,) in self._client.query(sql, parameters={"n": names, "limit": limit}).result_rows:
            for text in facet_texts:
                try:
                    doc = json.loads(text) if text else {}
                except ValueError:
                    continue
                if isinstance(doc, dict):
                    out.update({k: v for k, v in doc.items() if not k.startswith("upriver")})
        return dict(sorted(out.items()))

    def column_lineage(self, node_id: str, *, as_of: int | None = None) -> list[dict[str, Any]]:
        """Every column edge into or out of the node's columns (and its dataset-level `#` entry) valid at
        `as_of`: src and dst column ids (canonical), type (DIRECT, INDIRECT) and subtypes."""
        aliases = self.aliases()
        names = aliases.names(aliases.canonical(identity.node_of(node_id)))
        prefixes = [f"{n}#" for n in names]
        where = (
            "(arrayExists(p -> startsWith(src, p), {p:Array(String)})"
            " OR arrayExists(p -> startsWith(dst, p), {p:Array(String)}))"
        )
        bound = FAR_FUTURE_MS if as_of is None else int(as_of)
        sql = (
            "SELECT src, dst, edge_type, sub FROM ("
            "  SELECT src, dst, edge_type, run_id, any(job) AS job, argMax(subtype, revision) AS sub,"
            "   toUnixTimestamp64Milli(argMax(valid_from, revision)) AS vf, argMax(run_status, revision) AS st"
            f"  FROM {self._table} WHERE {where} AND startsWith(edge_type, 'COLUMN_')"
            f"  GROUP BY src, dst, edge_type, run_id HAVING st NOT IN ('FAIL', 'ABORT') AND vf <= {bound}"
            ") GROUP BY src, dst, edge_type, sub ORDER BY src, dst, edge_type"
        )
        out: dict[tuple[str, str, str, str | None], None] = {}
        for src, dst, etype, sub in self._client.query(sql, parameters={"p": prefixes}).result_rows:
            key = (aliases.canonical(str(src)), aliases.canonical(str(dst)), str(etype)[len("COLUMN_") :], sub)
            out[key] = None
        return [{"src": s_, "dst": d, "type": t, "subtype": sub} for s_, d, t, sub in out]

    def job(self, job_id: str) -> dict[str, Any]:
        """A job vertex: its namespace and name, what its runs read and wrote, and its latest run."""
        sql = (
            "SELECT count(), any(job_namespace), any(job_name), groupUniqArrayArray(input_ids),"
            " groupUniqArrayArray(output_ids), argMax(run_id, started_at), argMax(status, started_at),"
            " argMax(error, started_at), max(started_at)"
            f" FROM {self._db}.runs FINAL WHERE job_id = {{j:String}}"
        )
        count, ns, name, ins, outs, run, status, error, latest = self._client.query(
            sql, parameters={"j": job_id}
        ).result_rows[0]
        if not count:
            raise NodeNotFound(f"no job {job_id!r}: check the id (job:namespace/name)")
        aliases = self.aliases()
        return {
            "id": job_id,
            "kind": identity.JOB,
            "namespace": ns,
            "name": name,
            "runs": int(count),
            "inputs": sorted({aliases.canonical(str(i)) for i in ins}),
            "outputs": sorted({aliases.canonical(str(o)) for o in outs}),
            "latest_run": {"run_id": run, "status": status, "error": error, "started_at": _ms(latest)},
        }

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's merged state: job, status, times, error, inputs and outputs, run facets."""
        sql = (
            "SELECT job_id, job_namespace, job_name, job_kind, status, toUnixTimestamp64Milli(started_at),"
            " toUnixTimestamp64Milli(ended_at), error, parent_run_id, input_ids, input_versions, output_ids,"
            f" output_versions, facets FROM {self._db}.runs FINAL WHERE run_id = {{r:String}}"
        )
        rows = self._client.query(sql, parameters={"r": run_id}).result_rows
        if not rows:
            raise NodeNotFound(f"no run {run_id!r}")
        job, ns, name, kind, status, started, ended, error, parent, in_ids, in_v, out_ids, out_v, facets = rows[0]
        try:
            facet_doc = json.loads(facets) if facets else {}
        except ValueError:
            facet_doc = {}
        aliases = self.aliases()
        return {
            "run_id": run_id,
            "job": {"id": job, "namespace": ns, "name": name, "kind": kind},
            "status": status,
            "started_at": int(started),
            "ended_at": None if ended is None else int(ended),
            "error": error,
            "parent_run_id": parent,
            "inputs": _refs(aliases, in_ids, in_v),
            "outputs": _refs(aliases, out_ids, out_v),
            "facets": facet_doc,
        }

    def search(self, text: str, limit: int = 20) -> list[str]:
        """Node and job ids whose id, namespace, name or any alias contains `text` (case-insensitive),
        exact names first; aliases answer with their canonical node."""
        sql = (
            "SELECT id, n FROM ("
            f" SELECT node_id AS id, name AS n FROM {self._db}.nodes"
            "  WHERE positionCaseInsensitive(node_id, {t:String}) > 0 OR positionCaseInsensitive(name, {t:String}) > 0"
            "   OR positionCaseInsensitive(namespace, {t:String}) > 0 GROUP BY node_id, name"
            " UNION ALL"
            f" SELECT job_id AS id, any(job_name) AS n FROM {self._db}.runs"
            "  WHERE job_id != '' AND (positionCaseInsensitive(job_name, {t:String}) > 0"
            "   OR positionCaseInsensitive(job_namespace, {t:String}) > 0) GROUP BY job_id"
            ") ORDER BY n != {t:String}, id != {t:String}, NOT endsWith(n, {t:String}), length(id), id"
            " LIMIT {limit:UInt32}"
        )
        rows = self._client.query(sql, parameters={"t": text, "limit": 4 * limit}).result_rows
        aliases = self.aliases()
        out: dict[str, None] = {}
        for node, _ in rows:
            out[aliases.canonical(str(node))] = None
        return list(out)[:limit]

    def resolve(self, text: str) -> str:
        """The canonical node id of an id, of any name it was sent under, or of an unambiguous name
        (`growth_model`, `registry/growth_model`, a Marquez `dataset:ns:name`)."""
        aliases = self.aliases()
        if identity.is_id(text) and self.node_exists(text, aliases):
            return aliases.canonical(text)
        table, hash_, column = text.rpartition("#")
        if hash_ and table and not identity.is_id(text):  # NAME#column (the CLI's --column NAME.COLUMN)
            try:
                return identity.column_id(self.resolve(table), column)
            except NodeNotFound:
                pass
        if text.partition(":")[0] in identity.MARQUEZ_TYPES:
            try:
                for cand in identity.marquez_candidates(text):
                    if cand.type != "run" and self.node_exists(cand.ref().id, aliases):
                        return aliases.canonical(cand.ref().id)
            except identity.IdentityError:
                pass
        sql = (
            "SELECT node_id FROM ("
            f" SELECT node_id, any(namespace) AS ns, any(name) AS n FROM {self._db}.nodes GROUP BY node_id"
            ") WHERE n = {t:String} OR concat(ns, '/', n) = {t:String} OR concat(ns, ':', n) = {t:String}"
            " LIMIT 50"
        )
        rows = self._client.query(sql, parameters={"t": text}).result_rows
        matches = sorted({aliases.canonical(str(r[0])) for r in rows})
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NodeNotFound(f"{text!r} is ambiguous: {', '.join(matches[:10])}")
        if identity.is_id(text):
            return aliases.canonical(text)  # a well-formed id nobody has sent (yet): the walk says so
        raise NodeNotFound(f"no node named {text!r}; give its id (kind:namespace/name)")

    def jobs_touching(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Every job whose runs (any status) read or wrote any of `ids` (canonical ids): job id ->
        namespace, name, inputs and outputs (canonical), latest status. Jobs that only read (tests) or only
        write (source loaders) are here too."""
        aliases = self.aliases()
        names = aliases.expand(ids)
        out: dict[str, dict[str, Any]] = {}
        sql = (
            "SELECT job_id, any(job_namespace), any(job_name), groupUniqArrayArray(input_ids),"
            " groupUniqArrayArray(output_ids), argMax(status, started_at)"
            f" FROM {self._db}.runs FINAL WHERE job_id != ''"
            " AND (hasAny(input_ids, {n:Array(String)}) OR hasAny(output_ids, {n:Array(String)}))"
            " AND JSONExtractBool(facets, 'openlineage', 'designTime') = 0 GROUP BY job_id"
        )
        for chunk in self._chunks(names):
            for job, ns, name, ins, outs, status in self._client.query(sql, parameters={"n": chunk}).result_rows:
                entry = out.setdefault(str(job), {"namespace": ns, "name": name, "inputs": set(), "outputs": set(),
                                                  "status": status})  # fmt: skip
                entry["inputs"].update(aliases.canonical(str(i)) for i in ins)
                entry["outputs"].update(aliases.canonical(str(o)) for o in outs)
        return out

    def versions(self, node_id: str) -> list[dict[str, Any]]:
        """Every run that wrote `node_id` under any of its names: version, run, job, status, error, start
        (oldest first). Only COMPLETE runs produced their version; the others are attempts."""
        names = list(self.aliases().names(node_id))
        sql = (
            "SELECT output_versions[arrayFirstIndex(x -> has({n:Array(String)}, x), output_ids)] AS v, run_id,"
            " job_id, status, error, toUnixTimestamp64Milli(started_at)"
            f" FROM {self._db}.runs FINAL WHERE hasAny(output_ids, {{n:Array(String)}}) ORDER BY started_at, run_id"
        )
        rows = self._client.query(sql, parameters={"n": names}).result_rows
        return [
            {"version": v or None, "run_id": r, "job": j, "status": s, "error": e, "started_at": int(t),
             "produced": s == "COMPLETE"}
            for v, r, j, s, e, t in rows
        ]  # fmt: skip

    def provenance(self, node_id: str, version: str | None = None, *, as_of: int | None = None) -> Provenance:
        """Which run produced `node_id` (at `version`, else the newest valid run as of `as_of`), and what it read."""
        aliases = self.aliases()
        canonical = aliases.canonical(node_id)
        names = list(aliases.names(canonical))
        bound = FAR_FUTURE_MS if as_of is None else int(as_of)
        at = "arrayFirstIndex(x -> has({n:Array(String)}, x), output_ids)"
        version_filter = f" AND output_versions[{at}] = {{v:String}}" if version else ""
        sql = (
            "SELECT run_id, job_id, job_kind, status,"
            " toUnixTimestamp64Milli(started_at), toUnixTimestamp64Milli(ended_at), parent_run_id,"
            f" input_ids, input_versions, output_ids, output_versions, output_versions[{at}]"
            f" FROM {self._db}.runs FINAL WHERE hasAny(output_ids, {{n:Array(String)}}){version_filter}"
            f" AND status NOT IN ('FAIL', 'ABORT') AND toUnixTimestamp64Milli(started_at) <= {bound}"
            " ORDER BY started_at DESC, run_id DESC LIMIT 1"
        )
        rows = self._client.query(sql, parameters={"n": names, "v": version or ""}).result_rows
        if not rows:
            what = f"version {version!r} of {node_id!r}" if version else repr(node_id)
            raise NodeNotFound(f"no valid run wrote {what}" + (f" by {as_of}" if as_of is not None else ""))
        run_id, job, kind, status, started, ended, parent, in_ids, in_v, out_ids, out_v, written = rows[0]
        return Provenance(
            node=canonical,
            version=written or None,
            run_id=run_id,
            job=job,
            job_kind=kind,
            status=status,
            started_at=int(started),
            ended_at=None if ended is None else int(ended),
            parent_run_id=parent,
            inputs=[(aliases.canonical(str(i)), v or None) for i, v in zip(in_ids, in_v, strict=True)],
            outputs=[(aliases.canonical(str(o)), v or None) for o, v in zip(out_ids, out_v, strict=True)],
        )


def _refs(aliases: Aliases, ids: Iterable[Any], versions: Iterable[Any]) -> list[dict[str, Any]]:
    return [{"id": aliases.canonical(str(i)), "version": v or None} for i, v in zip(ids, versions, strict=True)]


def _ms(value: Any) -> int | None:
    """A DateTime64 as epoch ms; None for ClickHouse's zero time (never)."""
    millis = int(value.timestamp() * 1000) if isinstance(value, datetime) else None
    return millis if millis else None


def _retired(retired: Mapping[str, list[int]], node: str, valid_from: int, now: int) -> bool:
    """Whether a RETIRE of `node` (or of a column's node) at R with valid_from <= R <= now ended the edge."""
    times = retired.get(identity.node_of(node))
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
