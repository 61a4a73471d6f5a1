"""The persisted form of the health state: one entry of the worker's changelog-backed `health` table per key.

Keys (unchanged since the first version): `n:<node id>` an artifact, `r:<run id>` a pending run,
`a:<KIND>|<subject>` an open alert, `j:<job id>` a job's open runs and missing inputs/outputs,
`d:<run id>` an applied run, `s:<job id>` a streaming job, `meta` the settled time and watermark.

Values, format version 1: `{"v": 1, "<record>": row}`, the row the record's fields in the order the
`*_row` functions below give (nested records as rows too); `None` deletes the key. Rows share the
record's lists and dicts and a loaded record takes the row's (copies would hold each twice, in the
table's store and in the engine), so a value is encoded when it is written, before the record changes.

The untagged positional values written before versioning (format 0) are read by
processors/health/legacy.py, so a worker upgraded over an existing changelog recovers its state (a
table may mix both); an entry is rewritten in the current format when it next changes. A change of any
row is a new FORMAT_VERSION: tests/unit/test_health_state.py pins each version's form with a golden
file (tests/fixtures/health/state.v<N>.json) and reads every older one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from processors.health import facts, legacy
from processors.health.state import (
    Done,
    DriftMark,
    HealthState,
    MissingIO,
    Node,
    OpenAlert,
    PendingRun,
    Serving,
    Write,
    Writer,
)

FORMAT_VERSION = 1
# key prefix -> record name in the tagged value
RECORDS = {"n": "node", "r": "run", "a": "alert", "j": "job", "d": "done", "s": "streaming", "meta": "meta"}


# ---- writing --------------------------------------------------------------------------------------


def export(state: HealthState, key: str) -> Any:
    """The table value for `key` (None: deleted)."""
    prefix, _, rest = key.partition(":")
    row: Any
    if prefix == "n":
        node = state.nodes.get(rest)
        row = None if node is None else node_row(node)
    elif prefix == "r":
        run = state.pending.get(rest)
        row = None if run is None else run_row(run)
    elif prefix == "a":
        alert = state.alerts.get(rest)
        row = None if alert is None else alert_row(alert)
    elif prefix == "j":
        runs, io = state.open_runs.get(rest), state.missing_io.get(rest)
        row = None if not runs and not io else [runs or {}, None if io is None else [io.since, io.missing]]
    elif prefix == "d":
        done = state.done.get(rest)
        row = None if done is None else [done.ended_at, done.revision]
    elif prefix == "s":
        row = True if rest in state.streaming else None
    elif prefix == "meta":
        row = [state.settled, state.watermark]
    else:
        raise KeyError(key)
    return None if row is None else {"v": FORMAT_VERSION, RECORDS[prefix]: row}


def node_row(n: Node) -> list[Any]:
    """kind, namespace, first_seen, updates, last_touch, declared_sla, produced, retired_at, versions,
    writers {job: [started_at, run_id, inputs, version]}, appends, latest [started_at, run_id, version],
    readers, trained {version: [[input, version]]}, serving [model, version, deployed_at], served_by,
    drift [at, source, path], signals (latest, serving and drift may be null)."""
    latest, serving, drift = n.latest, n.serving, n.drift
    return [
        n.kind, n.namespace, n.first_seen, n.updates, n.last_touch, n.declared_sla, n.produced, n.retired_at,
        n.versions, {j: [w.started_at, w.run_id, w.inputs, w.version] for j, w in n.writers.items()}, n.appends,
        None if latest is None else [latest.started_at, latest.run_id, latest.version], n.readers,
        {v: [list(p) for p in pairs] for v, pairs in n.trained.items()},
        None if serving is None else [serving.model, serving.version, serving.deployed_at], n.served_by,
        None if drift is None else [drift.at, drift.source, drift.path], n.signals,
    ]  # fmt: skip


def run_row(r: PendingRun) -> list[Any]:
    """revision, job, kind, status, started_at, ended_at, inputs, outputs, facets, started; an input or
    output is [kind, namespace, name, version, facets]."""
    return [
        r.revision, r.job, r.kind, r.status, r.started_at, r.ended_at,
        [[a.kind, a.namespace, a.name, a.version, a.facets] for a in r.inputs],
        [[a.kind, a.namespace, a.name, a.version, a.facets] for a in r.outputs], r.facets, r.started,
    ]  # fmt: skip


def alert_row(a: OpenAlert) -> list[Any]:
    """alert_id, kind, category, subject, namespace, severity, reason, path, opened_at."""
    return [a.alert_id, a.kind, a.category, a.subject, a.namespace, a.severity, a.reason, a.path, a.opened_at]


# ---- reading --------------------------------------------------------------------------------------


def load(state: HealthState, items: Iterable[tuple[str, Any]]) -> None:
    """Fill `state` from table entries of any format version (a recovered table may mix them)."""
    for key, value in items:
        if value is None:
            continue
        prefix, _, rest = key.partition(":")
        if prefix in ("j", "s"):
            job = legacy.job_key(rest)
            if job != rest:  # a key written before job ids: deleted, and written again under the job id
                state.dirty.update((key, f"{prefix}:{job}"))
            rest = job
        if prefix not in RECORDS:
            continue  # not a health entry (ignored, as before)
        if isinstance(value, dict) and "v" in value:
            if value["v"] != FORMAT_VERSION:
                raise ValueError(f"health state {key!r} has format {value['v']!r}; this version reads 0 to 1")
            entry = _READ[prefix](value[RECORDS[prefix]])
        else:
            entry = legacy.read(prefix, value)
        _put(state, prefix, rest, entry)


def _put(state: HealthState, prefix: str, rest: str, entry: Any) -> None:
    if prefix == "n":
        state.nodes[rest] = entry
    elif prefix == "r":
        state.pending[rest] = entry
    elif prefix == "a":
        state.alerts[rest] = entry
    elif prefix == "d":
        state.done[rest] = entry
    elif prefix == "s":
        state.streaming.add(rest)
    elif prefix == "j":
        runs, io = entry
        if runs:
            state.open_runs[rest] = runs
        if io is not None:
            state.missing_io[rest] = io
    elif prefix == "meta":
        state.settled, state.watermark = entry
    else:
        raise KeyError(prefix)


def node_from_row(row: list[Any]) -> Node:
    (kind, namespace, first_seen, updates, last_touch, declared_sla, produced, retired_at, versions, writers,
     appends, latest, readers, trained, serving, served_by, drift, signals) = row  # fmt: skip
    return Node(
        kind, namespace, first_seen, updates, last_touch, declared_sla, produced, retired_at, versions,
        {j: Writer(*w) for j, w in writers.items()}, appends, None if latest is None else Write(*latest), readers,
        {v: [(p[0], p[1]) for p in pairs] for v, pairs in trained.items()},
        None if serving is None else Serving(*serving), served_by, None if drift is None else DriftMark(*drift),
        signals,
    )  # fmt: skip


def run_from_row(row: list[Any]) -> PendingRun:
    revision, job, kind, status, started_at, ended_at, inputs, outputs, facets, started = row
    return PendingRun(
        revision, job, kind, status, started_at, ended_at,
        [facts.artifact(*a) for a in inputs], [facts.artifact(*a) for a in outputs], facets, bool(started),
    )  # fmt: skip


def alert_from_row(row: list[Any]) -> OpenAlert:
    alert_id, kind, category, subject, namespace, severity, reason, path, opened_at = row
    return OpenAlert(alert_id, kind, category, subject, namespace, severity, reason, path, opened_at)


def _job_from_row(row: list[Any]) -> tuple[dict[str, int], MissingIO | None]:
    runs, io = row
    return {rid: int(t) for rid, t in runs.items()}, None if io is None else MissingIO(*io)


def _meta_from_row(row: list[Any]) -> tuple[int, int]:
    settled, watermark = row
    return int(settled), int(watermark)


_READ: dict[str, Callable[[Any], Any]] = {
    "n": node_from_row,
    "r": run_from_row,
    "a": alert_from_row,
    "j": _job_from_row,
    "d": lambda row: Done(int(row[0]), int(row[1])),
    "s": bool,
    "meta": _meta_from_row,
}
