"""The lineage graph walk: upstream/downstream, impact (blast radius), shortest path, job vertices. Pure.

Level-by-level BFS over a `LineagePort` (upriver/readside/queries.py implements it over ClickHouse; the
unit tests over a dict): one port call per level and direction, never one per node, each given the whole
frontier with every alias of its nodes. The port answers the stored edge rows valid at the asked time
by the stored-row rules (docs/lineage-model.md, "Time travel": highest revision, no FAIL/ABORT runs,
newest run per (dst, job) unless APPEND); this module ends the edges a retirement ended, maps every id
to its alias group's canonical id, and bounds the walk (depth, node cap, visited set for cycles).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from schemas import identity
from upriver.readside.aliases import Aliases
from upriver.readside.model import (
    FAR_FUTURE_MS,
    JOB_EDGES,
    Direction,
    EdgeRow,
    EdgeTuple,
    Impact,
    LineageGraph,
    NodeNotFound,
    kind_of,
)


class LineagePort(Protocol):
    """What the walk asks of the store. `ids` are stored ids (a frontier with every alias expanded)."""

    def aliases(self) -> Aliases:
        """Every alias group (read once per request)."""
        ...

    def walk_context(self) -> tuple[Aliases, dict[str, list[int]]]:
        """Every alias group (as `aliases()`) and node id -> its RETIRE times (epoch ms), in one read of the
        store: every walk needs both."""
        ...

    def edges_into(self, ids: list[str], as_of: int | None) -> Iterable[EdgeRow]:
        """The edge rows with dst in `ids` valid at `as_of` (None: now), retirements not applied."""
        ...

    def edges_out_of(self, ids: list[str], as_of: int | None) -> Iterable[EdgeRow]:
        """The edge rows with src in `ids` valid at `as_of`, validity judged among all rows into their dst."""
        ...

    def first_dsts(self, ids: list[str], limit: int, after: str | None = None) -> list[str]:
        """The first `limit` distinct dsts above `after`, in id order, of any stored edge row out of `ids`
        (validity not judged)."""
        ...

    def job_artifacts(self, job: str, direction: Direction, as_of: int | None) -> Iterable[str]:
        """The ids the job's valid runs started by `as_of` read (upstream) or wrote (downstream)."""
        ...

    def any_edges(self, ids: list[str], direction: Direction) -> bool:
        """Whether any stored edge row leads further `direction` from `ids` (validity not judged)."""
        ...

    def node_exists(self, node_id: str, aliases: Aliases) -> bool:
        """Whether any name of the node (or the job) was ever seen."""
        ...

    def jobs_touching(self, ids: list[str], aliases: Aliases) -> dict[str, dict[str, Any]]:
        """Job id -> namespace, name, inputs, outputs (canonical), status of every job that read or wrote `ids`."""
        ...


def require_node(port: LineagePort, node_id: str, aliases: Aliases) -> None:
    if not port.node_exists(node_id, aliases):
        raise NodeNotFound(
            f"no lineage for node {node_id!r}: check the id (kind:namespace/name, kind lower-case) "
            "or whether its events have been processed yet"
        )


def _retired(retired: Mapping[str, list[int]], node: str, valid_from: int, now: int) -> bool:
    """Whether a RETIRE of `node` (or of a column's node) at R with valid_from <= R <= now ended the edge."""
    times = retired.get(identity.node_of(node))
    return bool(times) and any(valid_from <= t <= now for t in times or ())


@dataclass(frozen=True)
class _Step:
    """One request's view of the port: one level of edges in either direction, as canonical edges."""

    port: LineagePort
    as_of: int | None
    retired: Mapping[str, list[int]]
    aliases: Aliases

    def __call__(self, frontier: list[str], direction: Direction) -> dict[EdgeTuple, set[str]]:
        names = self.aliases.expand(frontier)
        if direction == "upstream":
            return self._collect(self.port.edges_into(names, self.as_of))
        return self._collect(self.port.edges_out_of(names, self.as_of))

    def capped_level(self, frontier: list[str], seen: Collection[str], need: int) -> dict[EdgeTuple, set[str]]:
        """A downstream level of a walk cut at a node count, which needs `need` new nodes (enough to fill the
        cap and to know it was cut): the candidate dsts in id order, a page at a time (`need`, then twice as
        many each time), each page judged as `edges_out_of` judges it, until the pages bring that many new
        nodes or the candidates run out. A hub's first level is then read up to the cap, not whole."""
        names = self.aliases.expand(frontier)
        sources = set(names)
        found: dict[EdgeTuple, set[str]] = {}
        after: str | None = None
        size = need
        while True:
            dsts = self.port.first_dsts(names, size, after)
            rows = (row for row in self.port.edges_into(dsts, self.as_of) if row[0] in sources)
            for edge, jobs in self._collect(rows).items():
                found.setdefault(edge, set()).update(jobs)
            if len(dsts) < size or len({edge[1] for edge in found if edge[1] not in seen}) >= need:
                return found
            after, size = dsts[-1], size * 2

    def _collect(self, rows: Iterable[EdgeRow]) -> dict[EdgeTuple, set[str]]:
        """Valid edges (ids mapped to their canonical node) -> the jobs whose runs made them."""
        retired, aliases = self.retired, self.aliases
        now = FAR_FUTURE_MS if self.as_of is None else self.as_of
        out: dict[EdgeTuple, set[str]] = {}
        for src, dst, etype, vf, job in rows:
            if retired and (_retired(retired, str(src), vf, now) or _retired(retired, str(dst), vf, now)):
                continue
            csrc, cdst = aliases.canonical(str(src)), aliases.canonical(str(dst))
            if csrc != cdst:  # a run that read a table by path and wrote it by name is no edge
                out.setdefault((csrc, cdst, str(etype)), set()).add(str(job))
        return out

    def job_level(self, job: str, direction: Direction) -> dict[EdgeTuple, set[str]]:
        """A job vertex's first level: the artifacts its runs (not failed or aborted) read, upstream, or
        wrote, downstream, as of `as_of`."""
        out: dict[EdgeTuple, set[str]] = {}
        for raw in self.port.job_artifacts(job, direction, self.as_of):
            node = self.aliases.canonical(str(raw))
            edge = (node, job, JOB_EDGES[0]) if direction == "upstream" else (job, node, JOB_EDGES[1])
            out.setdefault(edge, set()).add(job)
        return out


def walk(
    port: LineagePort, root: str, direction: Direction, depth: int, as_of: int | None, max_nodes: int | None = None
) -> LineageGraph:
    """Everything `depth` hops `direction` from `root` valid at `as_of`; stops adding nodes past `max_nodes`."""
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    aliases, retired = port.walk_context()
    step = _Step(port, as_of, retired, aliases)
    root = aliases.canonical(root)
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
            found_jobs = step.job_level(root, direction)
        elif max_nodes is not None and direction == "downstream":
            found_jobs = step.capped_level(frontier, nodes.keys(), max_nodes + 2 - len(nodes))
        else:
            found_jobs = step(frontier, direction)
        found = sorted(found_jobs)
        if level == 1 and not found:
            require_node(port, root, aliases)
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
        if capped:
            break  # no later level can add a node; impact (the only capped caller) reads nodes, not edges
    if depth == 0:
        require_node(port, root, aliases)
    # "more beyond": the last level has further edges (cheap check, without judging their validity)
    truncated = capped or (bool(frontier) and port.any_edges(aliases.expand(frontier), direction))
    return LineageGraph(root, direction, depth, nodes, edges, truncated, as_of, edge_jobs)


def impact(port: LineagePort, root: str, depth: int, as_of: int | None, max_nodes: int) -> Impact:
    """The downstream set grouped by kind, stopping at `max_nodes` (then `partial` is set)."""
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
    graph = walk(port, root, "downstream", depth, as_of, max_nodes=max_nodes)
    return Impact(graph.root, depth, as_of, graph.nodes, graph.truncated, max_nodes)


def path(port: LineagePort, src: str, dst: str, as_of: int | None, max_depth: int) -> list[EdgeTuple] | None:
    """The shortest chain of valid edges from `src` down to `dst` (or from `dst` down to `src`), as
    edges in walk order; None when there is none within `max_depth` hops. Bidirectional BFS: the
    downstream frontier of one end meets the upstream frontier of the other."""
    aliases, retired = port.walk_context()
    src, dst = aliases.canonical(src), aliases.canonical(dst)
    for a, b in ((src, dst), (dst, src)):
        found = _path_one_way(port, a, b, as_of, max_depth, aliases, retired)
        if found is not None:
            return found
    require_node(port, src, aliases)
    require_node(port, dst, aliases)
    return None


def _path_one_way(
    port: LineagePort,
    a: str,
    b: str,
    as_of: int | None,
    max_depth: int,
    aliases: Aliases,
    retired: Mapping[str, list[int]],
) -> list[EdgeTuple] | None:
    if a == b:
        return []
    step = _Step(port, as_of, retired, aliases)
    down: dict[str, EdgeTuple | None] = {a: None}  # node -> edge that reached it from a
    up: dict[str, EdgeTuple | None] = {b: None}  # node -> edge that leads from it towards b
    down_frontier, up_frontier = [a], [b]
    for _ in range(max_depth):
        if not down_frontier or not up_frontier:
            return None
        if len(down_frontier) <= len(up_frontier):
            nxt = []
            for edge in sorted(step(down_frontier, "downstream")):
                if edge[1] not in down:
                    down[edge[1]] = edge
                    nxt.append(edge[1])
            down_frontier = nxt
        else:
            nxt = []
            for edge in sorted(step(up_frontier, "upstream")):
                if edge[0] not in up:
                    up[edge[0]] = edge
                    nxt.append(edge[0])
            up_frontier = nxt
        meet = sorted(set(down) & set(up))
        if meet:
            return _join_path(meet[0], down, up)
    return None


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


def with_jobs(port: LineagePort, graph: LineageGraph) -> LineageGraph:
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
    for job, info in port.jobs_touching(artifacts, port.aliases()).items():
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
