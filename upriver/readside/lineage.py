"""The lineage read side's facade: `LineageReader`, the walks and lookups the API, the CLI and the tests call.

It wires the pieces and holds no logic of its own beyond a lookup's not-found checks:
- upriver/readside/walk.py: the graph walk (upstream/downstream, impact, path, job vertices), pure code
  over the `LineagePort` protocol;
- upriver/readside/queries.py: the ClickHouse queries (the port's implementation and the lookups' SQL);
- upriver/readside/render.py: the text tree and the JSON-ready dicts;
- upriver/readside/nodes.py: resolving what a user types to a node id, and search;
- upriver/readside/model.py: the values (LineageGraph, Impact, Provenance, NodeNotFound, parse_time).
Never writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from schemas import identity
from sinks.clickhouse import Client
from upriver.readside import nodes, render, walk
from upriver.readside.aliases import Aliases
from upriver.readside.column_graph import ColumnGraphReader
from upriver.readside.datasets import DatasetsReader
from upriver.readside.events import EventsReader
from upriver.readside.health import HealthReader
from upriver.readside.jobgraph import JobGraphReader
from upriver.readside.jobs import JobsReader
from upriver.readside.model import (
    FAR_FUTURE_MS,
    JOB_EDGES,
    KIND_PREFIXES,
    Direction,
    EdgeTuple,
    Impact,
    LineageGraph,
    NodeNotFound,
    Provenance,
    kind_of,
    parse_time,
)
from upriver.readside.queries import FRONTIER_CHUNK, RAW_LEVEL_ROWS, ClickHouseLineage
from upriver.readside.render import render_tree, to_json
from upriver.readside.tags import TagsReader

T = TypeVar("T")

__all__ = [
    "FAR_FUTURE_MS",
    "FRONTIER_CHUNK",
    "JOB_EDGES",
    "KIND_PREFIXES",
    "Direction",
    "EdgeTuple",
    "Impact",
    "LineageGraph",
    "LineageReader",
    "NodeNotFound",
    "Provenance",
    "kind_of",
    "parse_time",
    "render_tree",
    "to_json",
]


class LineageReader:
    """Graph walks and lookups over `<database>`'s edges, runs and nodes; the same SQL on chDB and a server."""

    def __init__(
        self, client: Client, database: str, chunk: int = FRONTIER_CHUNK, raw_rows: int = RAW_LEVEL_ROWS
    ) -> None:
        self._queries = ClickHouseLineage(client, database, chunk, raw_rows)
        self.health = HealthReader(client, database)
        self.jobgraph = JobGraphReader(client, database, chunk)  # Marquez's lineage (GET /api/v1/lineage)
        self.column_graph = ColumnGraphReader(client, database)  # Marquez's column lineage
        self.catalog_jobs = JobsReader(client, database)
        self.catalog_datasets = DatasetsReader(client, database)
        self.tags = TagsReader(client, database)
        self.raw_events = EventsReader(client, database)  # the OpenLineage events as received, Marquez's stats

    # ---- walks --------------------------------------------------------------------------------

    def upstream(self, node_id: str, depth: int = 10, *, as_of: int | None = None) -> LineageGraph:
        """Everything `node_id` was derived from, up to `depth` hops, as valid at `as_of` (None: now)."""
        return walk.walk(self._queries, node_id, "upstream", depth, as_of)

    def downstream(self, node_id: str, depth: int = 10, *, as_of: int | None = None) -> LineageGraph:
        """Everything derived from `node_id`, up to `depth` hops, as valid at `as_of` (None: now)."""
        return walk.walk(self._queries, node_id, "downstream", depth, as_of)

    def impact(self, node_id: str, depth: int = 10, *, as_of: int | None = None, max_nodes: int = 10_000) -> Impact:
        """The downstream set grouped by kind, stopping at `max_nodes` (then `partial` is set)."""
        return walk.impact(self._queries, node_id, depth, as_of, max_nodes)

    def path(self, src: str, dst: str, *, as_of: int | None = None, max_depth: int = 20) -> list[EdgeTuple] | None:
        """The shortest chain of valid edges from `src` down to `dst` (or from `dst` down to `src`), as
        edges in walk order; None when there is none within `max_depth` hops."""
        return walk.path(self._queries, src, dst, as_of, max_depth)

    def with_jobs(self, graph: LineageGraph) -> LineageGraph:
        """The graph with JOB vertices between artifacts, as Marquez draws them (walk.with_jobs)."""
        return walk.with_jobs(self._queries, graph)

    def walk_from(self, text: str, walk: Callable[[str], T]) -> T:
        """`walk(node)` from what a user typed. A well-formed id is walked as sent: the walk maps it to its
        canonical node and raises NodeNotFound when nothing is known of it, so `resolve`'s lookups (the
        aliases, the node's existence: ~3 ms) are skipped. Anything else, or an id the walk does not know,
        is resolved first (a name, a Marquez id), exactly as `resolve` answers it."""
        if identity.is_id(text):
            try:
                return walk(text)
            except NodeNotFound:
                pass
        return walk(self.resolve(text))

    # ---- lookups ------------------------------------------------------------------------------

    def aliases(self) -> Aliases:
        """Every alias pair (small: one per name beside a symlink), read once per query."""
        return self._queries.aliases()

    def node_exists(self, node_id: str, aliases: Aliases | None = None) -> bool:
        """Whether any name of the node (or the job) was ever seen: in a run, an edge or an alias. A caller
        that holds the request's aliases passes them (they are read once per request)."""
        return self._queries.node_exists(node_id, self.aliases() if aliases is None else aliases)

    def node(self, node_id: str) -> dict[str, Any]:
        """The node's current attributes over every name it was sent under (the `nodes` table), its other
        names, and the latest value of each facet; NodeNotFound when it was never seen."""
        aliases = self.aliases()
        canonical = aliases.canonical(node_id)
        if kind_of(canonical) == "job":
            return self.job(canonical)
        names = list(aliases.names(canonical))
        row = self._queries.node_row(names)
        ref = identity.parse(canonical)
        if row is None:
            if not self._queries.node_exists(canonical, aliases):
                raise NodeNotFound(f"no node {node_id!r}: check the id (kind:namespace/name, kind lower-case)")
            # named only as a column source (dbt seeds inside columnLineage): known, with no run of its own
            row = (0, ref.kind, None, None, None, None, "", "", [], [], "", "")
        return render.node_json(canonical, row, aliases, render.facets_json(self._queries.facet_texts(names)))

    def column_lineage(self, node_id: str, *, as_of: int | None = None) -> list[dict[str, Any]]:
        """Every column edge into or out of the node's columns (and its dataset-level `#` entry) valid at
        `as_of`: src and dst column ids (canonical), type (DIRECT, INDIRECT) and subtypes."""
        aliases = self.aliases()
        names = aliases.names(aliases.canonical(identity.node_of(node_id)))
        rows = self._queries.column_edges([f"{n}#" for n in names], as_of)
        return render.column_edges_json(rows, aliases)

    def job(self, job_id: str) -> dict[str, Any]:
        """A job vertex: its namespace and name, what its runs read and wrote, and its latest run."""
        row = self._queries.job_row(job_id)
        if not row[0]:
            raise NodeNotFound(f"no job {job_id!r}: check the id (job:namespace/name)")
        return render.job_json(job_id, row, self.aliases())

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's merged state: job, status, times, error, inputs and outputs, run facets."""
        row = self._queries.run_row(run_id)
        if row is None:
            raise NodeNotFound(f"no run {run_id!r}")
        return render.run_json(run_id, row, self.aliases())

    def search(self, text: str, limit: int = 20) -> list[str]:
        """Node and job ids whose id, namespace, name or any alias contains `text` (case-insensitive),
        exact names first; aliases answer with their canonical node."""
        return nodes.search(self._queries, text, limit)

    def resolve(self, text: str) -> str:
        """The canonical node id of an id, of any name it was sent under, or of an unambiguous name
        (`growth_model`, `registry/growth_model`, a Marquez `dataset:ns:name`)."""
        return nodes.resolve(self._queries, text)

    def versions(self, node_id: str) -> list[dict[str, Any]]:
        """Every run that wrote `node_id` under any of its names: version, run, job, status, error, start
        (oldest first). Only COMPLETE runs produced their version; the others are attempts."""
        return render.versions_json(self._queries.version_rows(list(self.aliases().names(node_id))))

    def provenance(self, node_id: str, version: str | None = None, *, as_of: int | None = None) -> Provenance:
        """Which run produced `node_id` (at `version`, else the newest valid run as of `as_of`), and what it read."""
        aliases = self.aliases()
        canonical = aliases.canonical(node_id)
        row = self._queries.producing_run(list(aliases.names(canonical)), version, as_of)
        if row is None:
            what = f"version {version!r} of {node_id!r}" if version else repr(node_id)
            raise NodeNotFound(f"no valid run wrote {what}" + (f" by {as_of}" if as_of is not None else ""))
        run_id, job, kind, status, started, ended, parent, in_ids, in_v, out_ids, out_v, written = row
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
