"""Read side: upstream / downstream lineage walks over the ClickHouse `edges` table, and their rendering.

Level-by-level BFS from Python, one GROUP BY query per level (not `WITH RECURSIVE`, which has no visited
set, and not DISTINCT, which keeps ClickHouse off the dst-ordered projection). Never writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import quote_identifier

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
    that were not followed (ask again with a larger depth to see them).
    """

    root: str
    direction: Direction
    depth: int
    nodes: dict[str, int] = field(default_factory=dict)
    edges: list[EdgeTuple] = field(default_factory=list)
    truncated: bool = False

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
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a lineage graph document ({type(exc).__name__}: {exc})") from exc


class LineageReader:
    """Graph walks over `<database>.edges`; works the same on chDB and a ClickHouse server."""

    def __init__(self, client: Client, database: str, chunk: int = FRONTIER_CHUNK) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self._client = client
        self._table = f"{quote_identifier(database)}.edges"
        self._chunk = chunk

    def upstream(self, node_id: str, depth: int = 10) -> LineageGraph:
        """Everything `node_id` was derived from, up to `depth` hops."""
        return self._walk(node_id, "upstream", depth)

    def downstream(self, node_id: str, depth: int = 10) -> LineageGraph:
        """Everything derived from `node_id`, up to `depth` hops."""
        return self._walk(node_id, "downstream", depth)

    def _walk(self, root: str, direction: Direction, depth: int) -> LineageGraph:
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        key, other = ("dst", 0) if direction == "upstream" else ("src", 1)
        nodes: dict[str, int] = {root: 0}
        edges: list[EdgeTuple] = []
        frontier = [root]
        for level in range(1, depth + 1):
            if not frontier:
                break
            found = sorted(self._neighbours(key, frontier))
            if level == 1 and not found:
                self._require_node(root)
            frontier = []
            for edge in found:
                edges.append(edge)
                node = edge[other]
                if node not in nodes:
                    nodes[node] = level
                    frontier.append(node)
        if depth == 0:
            self._require_node(root)
        truncated = bool(frontier) and self._has_edges(key, frontier)
        return LineageGraph(root, direction, depth, nodes, edges, truncated)

    def _neighbours(self, key: str, frontier: list[str]) -> list[EdgeTuple]:
        # GROUP BY, not DISTINCT: it collapses ReplacingMergeTree duplicates and keeps the projection.
        sql = (
            f"SELECT src, dst, edge_type FROM {self._table} "
            f"WHERE {key} IN {{frontier:Array(String)}} GROUP BY src, dst, edge_type"
        )
        out: list[EdgeTuple] = []
        for start in range(0, len(frontier), self._chunk):
            chunk = frontier[start : start + self._chunk]
            result = self._client.query(sql, parameters={"frontier": chunk})
            out.extend((str(s), str(d), str(t)) for s, d, t in result.result_rows)
        return out

    def _has_edges(self, key: str, frontier: list[str]) -> bool:
        sql = f"SELECT 1 FROM {self._table} WHERE {key} IN {{frontier:Array(String)}} LIMIT 1"
        for start in range(0, len(frontier), self._chunk):
            chunk = frontier[start : start + self._chunk]
            if self._client.query(sql, parameters={"frontier": chunk}).result_rows:
                return True
        return False

    def _require_node(self, node_id: str) -> None:
        sql = f"SELECT 1 FROM {self._table} WHERE src = {{n:String}} OR dst = {{n:String}} LIMIT 1"
        if not self._client.query(sql, parameters={"n": node_id}).result_rows:
            raise NodeNotFound(
                f"no lineage for node {node_id!r}: check the id (kind:namespace/name, kind lower-case) "
                "or whether its events have been processed yet"
            )


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
        "nodes": [
            {"id": n, "level": lvl} for n, lvl in sorted(graph.nodes.items(), key=lambda x: (x[1], x[0]))
        ],
        "edges": [{"src": s, "dst": d, "edge_type": t} for s, d, t in graph.edges],
    }
