"""Reading health state persisted before format versioning (format 0: untagged, positional values).

A changelog written by an older worker holds these; processors/health/persisted.py hands every
untagged value here. Format 0, per key prefix:
  n  [kind, namespace, first_seen, updates, last_touch, declared_sla, produced, retired_at, versions,
      writers {job: [started_at, run_id, inputs, version]}, appends, latest [started_at, run_id, version]
      or [], readers, trained {version: [[input, version]]}, serving [model, version, deployed_at] or [],
      served_by, drift [at, source, path] or [], signals]  (trailing fields may be absent: defaults)
  r  {"rev", "job", "kind", "status", "s", "e", "in", "out", "facets", "started"}; in/out items
     [kind, namespace, name, version, facets]
  a  the alert record (alert_id, kind, category, subject, namespace, severity, status, reason, path,
     opened_at, resolved_at)
  j  {"runs": {run id: started_at}, "io": [since, missing] or null}
  d  [ended_at, revision]      s  true      meta  {"settled", "watermark"}
Even older state keyed jobs `namespace/name` rather than by job id: `job_key` reads those.
"""

from __future__ import annotations

from typing import Any

from processors.health import facts
from processors.health.state import (
    Done,
    DriftMark,
    MissingIO,
    Node,
    OpenAlert,
    PendingRun,
    Serving,
    Write,
    Writer,
)
from schemas import identity

# format 0 node fields after first_seen, with the defaults an absent trailing field takes
_NODE_DEFAULTS: tuple[Any, ...] = (
    [], 0, None, False, None, {}, {}, {}, [], [], {}, [], [], [], [],
)  # fmt: skip


def job_key(stored: str) -> str:
    """A job key as stored by this version (a job id); state written before schemas/identity.py keyed
    jobs as `namespace/name`, read here as namespace up to the first '/'."""
    if stored.startswith("job:") and identity.is_id(stored):
        return stored
    namespace, _, name = stored.partition("/")
    return identity.job_id(namespace, name)


def read(prefix: str, value: Any) -> Any:
    """The record of a format 0 value under a key with `prefix` (the shapes `persisted._put` takes)."""
    if prefix == "n":
        return node(value)
    if prefix == "r":
        return run(value)
    if prefix == "a":
        return alert(value)
    if prefix == "j":
        io = value.get("io")
        runs = {rid: int(t) for rid, t in (value.get("runs") or {}).items()}
        return runs, MissingIO(io[0], io[1]) if io else None
    if prefix == "d":
        return Done(int(value[0]), int(value[1]))
    if prefix == "s":
        return True
    if prefix == "meta":
        return int(value["settled"]), int(value["watermark"])
    raise KeyError(prefix)


def node(value: list[Any]) -> Node:
    kind, namespace, first_seen, *rest = value
    rest += [[*d] if isinstance(d, list) else {**d} if isinstance(d, dict) else d
             for d in _NODE_DEFAULTS[len(rest):]]  # fmt: skip
    (updates, last_touch, declared_sla, produced, retired_at, versions, writers, appends, latest, readers,
     trained, serving, served_by, drift, signals) = rest  # fmt: skip
    return Node(
        kind, namespace, first_seen, updates, last_touch, declared_sla, produced, retired_at, versions,
        {job_key(j): Writer(*w) for j, w in writers.items()}, appends, Write(*latest) if latest else None,
        readers, {v: [(p[0], p[1]) for p in pairs] for v, pairs in trained.items()},
        Serving(*serving) if serving else None, served_by, DriftMark(*drift) if drift else None, signals,
    )  # fmt: skip


def run(value: dict[str, Any]) -> PendingRun:
    return PendingRun(
        revision=value["rev"],
        job=job_key(value["job"]),
        kind=value["kind"],
        status=value["status"],
        started_at=value["s"],
        ended_at=value["e"],
        inputs=[facts.artifact(*a) for a in value["in"]],
        outputs=[facts.artifact(*a) for a in value["out"]],
        facets=value["facets"],
        started=bool(value.get("started")),
    )


def alert(value: dict[str, Any]) -> OpenAlert:
    return OpenAlert(
        alert_id=value["alert_id"],
        kind=value["kind"],
        category=value["category"],
        subject=value["subject"],
        namespace=value["namespace"],
        severity=value["severity"],
        reason=value["reason"],
        path=value["path"],
        opened_at=value["opened_at"],
    )
