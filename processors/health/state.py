"""The health engine's state as typed records (dataclasses with slots).

`HealthState` is everything that survives a restart: artifacts (`Node`), runs awaiting their facts
(`PendingRun`), open alerts, open runs and missing inputs/outputs per job, streaming jobs, the runs
already applied (`Done`, for replays) and the settled time. Its persisted form, one table entry per
key, is processors/health/persisted.py. `dirty` lists the keys changed since the engine last took it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.identity import node_id

NEVER = -(2**62)  # before any event time


@dataclass(slots=True)
class Artifact:
    """An input or output of a run, as the engine keeps it."""

    kind: str
    namespace: str
    name: str
    version: str | None
    facets: str | None

    @property
    def id(self) -> str:
        return node_id(self.kind, self.namespace, self.name)


@dataclass(slots=True)
class PendingRun:
    """The highest revision of a run seen, kept until its last fact (its end or signal) is applied."""

    revision: int
    job: str  # job id
    kind: str
    status: str
    started_at: int
    ended_at: int | None  # set for terminal statuses and signals only
    inputs: list[Artifact]
    outputs: list[Artifact]
    facets: str
    started: bool  # its start fact was applied


@dataclass(slots=True)
class Write:
    """The newest valid run that wrote an artifact: its start, run id and the version it wrote."""

    started_at: int
    run_id: str
    version: str | None


@dataclass(slots=True)
class Writer:
    """A job's newest valid run writing an artifact (non-append): the inputs it read make its edges."""

    started_at: int
    run_id: str
    inputs: list[str]  # node ids, sorted
    version: str | None


@dataclass(slots=True)
class Serving:
    """What a deployment serves: the (first) model it read, that model's version, when deployed."""

    model: str
    version: str | None
    deployed_at: int


@dataclass(slots=True)
class DriftMark:
    """The latest drift (or quality drop) reaching a model or deployment, and its shortest path."""

    at: int
    source: str
    path: list[str]


@dataclass(slots=True)
class Node:
    """An artifact: its writes, versions, edges and what the conditions of docs/health.md need."""

    kind: str
    namespace: str
    first_seen: int
    updates: list[int] = field(default_factory=list)  # write times, ascending, the last UPDATES_KEPT
    last_touch: int = 0  # read or written
    declared_sla: int | None = None  # from the latest write's `freshness` facet
    produced: bool = False  # written by a valid run that had an input
    retired_at: int | None = None
    versions: dict[str, int] = field(default_factory=dict)  # version -> first written (registered)
    writers: dict[str, Writer] = field(default_factory=dict)  # job id -> its newest valid writer
    appends: dict[str, int] = field(default_factory=dict)  # append-mode input -> newest run start
    latest: Write | None = None  # the newest valid writer
    readers: list[str] = field(default_factory=list)  # nodes written by runs that read this one
    trained: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # model version -> (input, version)
    serving: Serving | None = None  # deployments
    served_by: list[str] = field(default_factory=list)  # models: the deployments serving them
    drift: DriftMark | None = None  # models and deployments: the open drift impact
    signals: list[int] = field(default_factory=list)  # DRIFT/QUALITY drop times on this node

    @property
    def last_update(self) -> int | None:
        return self.updates[-1] if self.updates else None


@dataclass(slots=True)
class OpenAlert:
    """An open alert: one per (kind, subject); `record` is what is published (docs/health.md)."""

    alert_id: str
    kind: str
    category: str
    subject: str
    namespace: str
    severity: str
    reason: str
    path: list[str]
    opened_at: int

    def record(self, status: str = "OPEN", resolved_at: int | None = None) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "category": self.category,
            "subject": self.subject,
            "namespace": self.namespace,
            "severity": self.severity,
            "status": status,
            "reason": self.reason,
            "path": self.path,
            "opened_at": self.opened_at,
            "resolved_at": resolved_at,
        }


@dataclass(slots=True)
class MissingIO:
    """A job's last complete run lacked declared inputs/outputs: since when, and which (node ids)."""

    since: int
    missing: list[str]


@dataclass(slots=True)
class Done:
    """A run whose end was applied: when, and at which revision (a later revision is a late fact)."""

    ended_at: int
    revision: int


@dataclass(slots=True)
class HealthState:
    """Everything the engine persists; see the module docstring."""

    nodes: dict[str, Node] = field(default_factory=dict)  # node id -> artifact
    pending: dict[str, PendingRun] = field(default_factory=dict)  # run id -> run awaiting its facts
    open_runs: dict[str, dict[str, int]] = field(default_factory=dict)  # job id -> {run id: started_at}
    alerts: dict[str, OpenAlert] = field(default_factory=dict)  # "KIND|subject" -> open alert
    missing_io: dict[str, MissingIO] = field(default_factory=dict)  # job id -> its last run's gaps
    streaming: set[str] = field(default_factory=set)  # jobs whose jobType facet says STREAMING
    done: dict[str, Done] = field(default_factory=dict)  # run id -> applied end (in end order, nearly)
    settled: int = NEVER  # facts at or before this time are applied
    watermark: int = NEVER  # greatest event time seen
    dirty: set[str] = field(default_factory=set)  # table keys changed since the last take
