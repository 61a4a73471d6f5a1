"""The read side's values: walk results (LineageGraph, Impact), provenance, edge shapes, as-of times.

Pure data, no I/O. The JSON and CSV forms are written by upriver/readside/render.py (the methods here
delegate to it); `LineageGraph.from_json` reads the JSON form back (the CLI reads the HTTP API's answer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from schemas import identity
from upriver.readside.render import impact_csv, impact_json, provenance_json

Direction = Literal["upstream", "downstream"]
EdgeTuple = tuple[str, str, str]  # (src, dst, edge_type), canonical ids
# A stored edge row valid at the asked time (before retirements), ids as stored:
# (src, dst, edge_type, valid_from epoch ms, job)
EdgeRow = tuple[str, str, str, int, str]

JOB_EDGES = ("READS", "WRITTEN_BY")  # dataset -> job (the job reads it), job -> dataset (written by it)
FAR_FUTURE_MS = 2**62  # "now": no as-of bound on valid_from
KIND_PREFIXES = ("model", "deployment", "endpoint", "report", "dashboard")

kind_of = identity.kind_of


class NodeNotFound(LookupError):  # noqa: N818 - the name callers catch
    """The node has no edges in either direction: check the id (kind:namespace/name, kind lower-case)."""


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
        """The graph `render.to_json` described (e.g. an HTTP API answer); raises ValueError if malformed."""
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
        return impact_json(self)

    def to_csv(self) -> str:
        return impact_csv(self)


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
        return provenance_json(self)
