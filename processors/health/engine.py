"""Lineage health: freshness, completeness, drift-to-model links, orphaned and stale artifacts. Pure.

Input is the processor's merged `Run` records (processors/lineage/runs.py); time is injected. The engine turns
each run into *facts* at event times — a run's start, its end (outputs written, inputs read, edges),
a signal (DRIFT, QUALITY, RETIRE) — and applies them strictly in event-time order once they are
*settled*: older than the clock minus the lateness bound. So whatever order records arrive in within
that bound, the same facts are applied in the same order (docs/health.md, "Order").

Every alert condition has an *onset*, a function of the facts applied so far (last update + SLA, first
seen + grace, ...). `_sync(kind, subject, t)` opens the alert at its onset if the condition held by `t`
and resolves it at `t` if it no longer holds; facts that clear a condition sync their subject before
and after the change, the timer pass syncs every subject. An alert is therefore opened at its exact
onset and resolved at the exact fact that cleared it, however often or rarely the timer ran: one
record per (kind, subject) while open, a deterministic id, no flapping.

State is a handful of dicts of plain values; `export(key)` / `load(items)` give the processor a
changelog-backed table of it (`dirty` lists the keys changed since the last `take_dirty()`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import heapq
import itertools
import json
import re
import statistics
import tomllib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processors.lineage.runs import facet, is_append
from schemas import identity
from schemas.identity import node_id

Record = dict[str, Any]

# kinds whose nodes need upstream lineage, and the kinds a drift is linked to
REQUIRES_UPSTREAM = frozenset({"MODEL", "DEPLOYMENT", "ENDPOINT", "EMBEDDING", "VECTOR_INDEX"})
MODEL_KINDS = frozenset({"MODEL"})
SERVING_KINDS = frozenset({"DEPLOYMENT", "ENDPOINT"})
DRIFT_TARGETS = MODEL_KINDS | SERVING_KINDS
NOT_VALID = frozenset({"FAIL", "ABORT"})
TERMINAL = frozenset({"COMPLETE", "FAIL", "ABORT"})
SIGNALS = frozenset({"DRIFT", "QUALITY", "DEPLOY", "RETIRE"})

# alert kinds -> (category, severity)
ALERT_KINDS: dict[str, tuple[str, str]] = {
    "STALE": ("stale", "warning"),
    "STALE_MODEL": ("stale", "warning"),
    "MISSING_UPSTREAM": ("orphaned", "warning"),
    "UNREGISTERED_MODEL": ("orphaned", "critical"),
    "UNUSED": ("orphaned", "info"),
    "INCOMPLETE_RUN": ("completeness", "warning"),
    "MISSING_IO": ("completeness", "warning"),
    "DRIFT_IMPACT": ("drift", "critical"),
}
NODE_ALERTS = ("STALE", "MISSING_UPSTREAM", "UNUSED", "DRIFT_IMPACT", "UNREGISTERED_MODEL", "STALE_MODEL")
UPDATES_KEPT = 17  # 16 intervals for the learned SLA
VERSIONS_KEPT = 16
TRAINED_KEPT = 8
ROOT_CAUSES_KEPT = 10
SIGNALS_KEPT = 8

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration(text: str | int | float) -> int:
    """Milliseconds from `90s`, `5m`, `6h`, `30d`, `250ms` or a bare number of seconds."""
    if isinstance(text, int | float):
        return int(text * 1000)
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 5m, 6h, 30d)")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2) or "s"])


# ---- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactRule:
    """Declared SLA / retention for artifacts matching namespace, kind and name (glob patterns)."""

    namespace: str = "*"
    kind: str = "*"
    name: str = "*"
    sla_ms: int | None = None
    unused_after_ms: int | None = None

    def matches(self, kind: str, namespace: str, name: str) -> bool:
        return (
            (self.kind == "*" or self.kind.upper() == kind)
            and fnmatch.fnmatchcase(namespace, self.namespace)
            and fnmatch.fnmatchcase(name, self.name)
        )


@dataclass(frozen=True)
class JobRule:
    """Inputs and outputs (node ids) a job declares; a completed run missing one raises MISSING_IO."""

    job: str  # glob over "namespace/name"
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthConfig:
    lateness_ms: int = 60_000
    run_timeout_ms: int = 6 * 3_600_000
    upstream_grace_ms: int = 10 * 60_000
    unused_after_ms: int = 30 * 86_400_000
    model_lag_ms: int = 7 * 86_400_000
    root_cause_window_ms: int = 7 * 86_400_000
    learn_min_updates: int = 5
    learn_factor: float = 3.0
    learn_floor_ms: int = 60_000
    artifacts: tuple[ArtifactRule, ...] = ()
    jobs: tuple[JobRule, ...] = ()

    @classmethod
    def from_toml(cls, path: Path | str, **overrides: Any) -> HealthConfig:
        """Rules file (docs/health.md): `[defaults]`, `[[artifact]]` and `[[job]]` tables."""
        doc = tomllib.loads(Path(path).read_text())
        return cls.from_dict(doc, **overrides)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], **overrides: Any) -> HealthConfig:
        known = {
            "lateness": "lateness_ms",
            "run_timeout": "run_timeout_ms",
            "upstream_grace": "upstream_grace_ms",
            "unused_after": "unused_after_ms",
            "model_lag": "model_lag_ms",
            "root_cause_window": "root_cause_window_ms",
            "learn_floor": "learn_floor_ms",
        }
        kwargs: dict[str, Any] = {}
        for key, value in (doc.get("defaults") or {}).items():
            if key in known:
                kwargs[known[key]] = parse_duration(value)
            elif key == "learn_min_updates":
                kwargs[key] = int(value)
            elif key == "learn_factor":
                kwargs[key] = float(value)
            else:
                allowed = sorted([*known, "learn_min_updates", "learn_factor"])
                raise ValueError(f"unknown [defaults] key {key!r}; known: {allowed}")
        arts = []
        for rule in doc.get("artifact", []):
            unknown = set(rule) - {"namespace", "kind", "name", "sla", "unused_after"}
            if unknown:
                raise ValueError(f"unknown [[artifact]] key(s) {sorted(unknown)}")
            arts.append(
                ArtifactRule(
                    namespace=rule.get("namespace", "*"),
                    kind=rule.get("kind", "*"),
                    name=rule.get("name", "*"),
                    sla_ms=parse_duration(rule["sla"]) if "sla" in rule else None,
                    unused_after_ms=parse_duration(rule["unused_after"]) if "unused_after" in rule else None,
                )
            )
        jobs = [
            JobRule(job=r["job"], inputs=tuple(r.get("inputs", ())), outputs=tuple(r.get("outputs", ())))
            for r in doc.get("job", [])
        ]
        return cls(**{**kwargs, "artifacts": tuple(arts), "jobs": tuple(jobs), **overrides})


# ---- state ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    kind: str
    namespace: str
    first_seen: int
    updates: list[int] = field(default_factory=list)  # write times, ascending, last UPDATES_KEPT
    last_touch: int = 0  # read or written
    declared_sla: int | None = None  # from the latest write's `freshness` facet
    produced: bool = False  # written by a valid run that had an input
    retired_at: int | None = None
    versions: dict[str, int] = field(default_factory=dict)  # version -> first written (registered)
    # newest valid writer per job of non-append output: job -> [started_at, run_id, inputs, version]
    writers: dict[str, list[Any]] = field(default_factory=dict)
    appends: dict[str, int] = field(default_factory=dict)  # append-mode input -> newest run start
    latest: list[Any] = field(default_factory=list)  # [started_at, run_id, version] newest valid writer
    readers: list[str] = field(default_factory=list)  # nodes written by runs that read this one
    trained: dict[str, list[list[Any]]] = field(default_factory=dict)  # model version -> [[input, version]]
    serving: list[Any] = field(default_factory=list)  # deployments: [model node, version, deployed_at]
    served_by: list[str] = field(default_factory=list)  # models: deployments serving them
    drift: list[Any] = field(default_factory=list)  # [drift time, source node, path] open drift impact
    signals: list[int] = field(default_factory=list)  # DRIFT/QUALITY signal times on this node

    def to_json(self) -> list[Any]:
        return [
            self.kind, self.namespace, self.first_seen, self.updates, self.last_touch, self.declared_sla,
            self.produced, self.retired_at, self.versions, self.writers, self.appends, self.latest,
            self.readers, self.trained, self.serving, self.served_by, self.drift, self.signals,
        ]  # fmt: skip

    @classmethod
    def from_json(cls, v: list[Any]) -> Node:
        return cls(*v)

    @property
    def last_update(self) -> int | None:
        return self.updates[-1] if self.updates else None


@dataclass(frozen=True)
class Freshness:
    status: str
    sla_ms: int | None
    sla_source: str  # declared | rule | learned | none
    age_ms: int | None


def _alert_id(kind: str, subject: str, opened_at: int) -> str:
    return hashlib.sha1(f"{kind}|{subject}|{opened_at}".encode()).hexdigest()[:20]


def _namespace_of(subject: str) -> str:
    """Namespace of a subject id (a job's or an artifact's), read through the identity module."""
    return identity.parse(subject).namespace


def _design_time(facets: str | None) -> bool:
    found = facet(facets, "openlineage")
    return isinstance(found, dict) and found.get("designTime") is True


def _job_key(stored: str) -> str:
    """A job key as stored by this version (a job id); state written before schemas/identity.py keyed
    jobs as `namespace/name`, read here as namespace up to the first '/'."""
    if stored.startswith("job:") and identity.is_id(stored):
        return stored
    namespace, _, name = stored.partition("/")
    return identity.job_id(namespace, name)


def _job_path(job: str) -> str:
    """`namespace/name` of a job id: what `[[job]]` rules glob over (docs/health.md)."""
    ref = identity.parse(job)
    return f"{ref.namespace}/{ref.name}"


def _artifacts(record: Mapping[str, Any], side: str) -> list[list[Any]]:
    return [[a["kind"], a["namespace"], a["name"], a.get("version"), a.get("facets")] for a in record.get(side, ())]


def _declared_sla(facets: str | None) -> int | None:
    """`{"freshness": {"slaSeconds": 3600}}` (or `"sla": "1h"`) on an output declares its SLA."""
    f = facet(facets, "freshness")
    if not isinstance(f, dict):
        return None
    try:
        if "slaSeconds" in f:
            return int(float(f["slaSeconds"]) * 1000)
        if "sla" in f:
            return parse_duration(f["sla"])
    except (TypeError, ValueError):
        return None
    return None


def _is_streaming(facets: str) -> bool:
    """An OpenLineage jobType facet (at the top of the run's facets or under `jobFacets`) saying STREAMING."""
    try:
        doc = json.loads(facets)
    except ValueError:
        return False
    for holder in (doc, doc.get("jobFacets") if isinstance(doc, dict) else None):
        job_type = holder.get("jobType") if isinstance(holder, dict) else None
        if isinstance(job_type, dict) and str(job_type.get("processingType", "")).upper() == "STREAMING":
            return True
    return False


def is_drop(status: str, facets: str) -> bool:
    """A DRIFT signal unless it says `drifted: false`; a QUALITY signal unless it says `passed: true`."""
    if status == "DRIFT":
        d = facet(facets, "drift")
        return not (isinstance(d, dict) and d.get("drifted") is False)
    if status == "QUALITY":
        q = facet(facets, "quality")
        return not (isinstance(q, dict) and q.get("passed") is True)
    return False


def _failed_assertions(facets: str) -> bool:
    """Whether an artifact's `dataQualityAssertions` facet holds an assertion with `success: false`."""
    found = facet(facets, "dataQualityAssertions")
    items = found.get("assertions") if isinstance(found, dict) else None
    return any(isinstance(x, dict) and x.get("success") is False for x in items or ())


def gauge_figures(figures: Mapping[tuple[str, str], float], label: Callable[[str], str]) -> dict[str, dict[str, float]]:
    """The Prometheus health gauges from a timer pass's namespace figures, by `label(namespace)` (which
    may fold many namespaces into one label): artifacts, stale (LATE + STALE), orphaned (open alerts) and
    coverage — the share of the label's artifacts with upstream lineage, not a sum of ratios."""
    out: dict[str, dict[str, float]] = {"artifacts": {}, "stale": {}, "orphaned": {}, "coverage_ratio": {}}
    produced: dict[str, float] = {}
    for (namespace, metric), value in figures.items():
        key = label(namespace)
        if metric == "artifacts":
            out["artifacts"][key] = out["artifacts"].get(key, 0.0) + value
            produced[key] = produced.get(key, 0.0) + value * figures.get((namespace, "coverage_ratio"), 0.0)
        elif metric in ("late", "stale"):
            out["stale"][key] = out["stale"].get(key, 0.0) + value
        elif metric == "alerts_orphaned":
            out["orphaned"][key] = out["orphaned"].get(key, 0.0) + value
    out["coverage_ratio"] = {k: produced[k] / n for k, n in out["artifacts"].items() if n}
    return out


class HealthEngine:
    """The health state of one lineage graph, advanced by `add_run` and `advance(now)`."""

    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self.nodes: dict[str, Node] = {}
        self.pending: dict[str, Record] = {}  # run id -> compact run awaiting its facts
        self._facts: list[tuple[int, int, str]] = []  # heap of (time, order, run id) not yet applied
        self.open_runs: dict[str, dict[str, int]] = {}  # job -> {run id: started_at}
        self.alerts: dict[str, Record] = {}  # "KIND|subject" -> open alert
        self.missing_io: dict[str, list[Any]] = {}  # job -> [since, missing ids] of its last run
        self.streaming: set[str] = set()  # jobs whose jobType facet says processingType STREAMING
        self.settled = -(2**62)  # facts at or before this time are applied
        self.watermark = -(2**62)  # greatest event time seen
        self.out_alerts: list[Record] = []
        self.out_links: list[Record] = []
        self.done: dict[str, list[int]] = {}  # run id -> [end time, revision] of applied runs (replays)
        self.done_retention_ms = 86_400_000
        self.late_facts = 0  # records that arrived later than the lateness bound
        self.figures: dict[tuple[str, str], float] = {}  # the last timer pass's namespace figures
        self.figures_at = self.settled
        self.dirty: set[str] = set()
        self._rule_cache: dict[tuple[str, str, str], tuple[int | None, int | None]] = {}

    # ---- input ----------------------------------------------------------------------------------

    def add_run(self, record: Mapping[str, Any]) -> None:
        """A merged Run record (any revision, any order); keeps the highest revision until settled. Design-time
        records (an OpenLineage JobEvent or DatasetEvent: declarations, not executions) are not runs."""
        if _design_time(record.get("facets")):
            return
        rid: str = record["run_id"]
        old = self.pending.get(rid)
        if old is not None and old["rev"] >= record["revision"]:
            return
        if old is None and rid in self.done:
            if record["revision"] > self.done[rid][1]:
                self.late_facts += 1  # a revision after its end was applied: later than the bound
            return
        status = record["status"]
        ended = record.get("ended_at") if status in TERMINAL or status in SIGNALS else None
        run = {
            "rev": record["revision"],
            "job": identity.job_id(record["job_namespace"], record["job_name"]),
            "kind": record.get("job_kind") or "OTHER",
            "status": status,
            "s": record["started_at"],
            "e": ended,
            "in": _artifacts(record, "inputs"),
            "out": _artifacts(record, "outputs"),
            "facets": record.get("facets") or "{}",
            "started": bool(old and old.get("started")),
        }
        self.pending[rid] = run
        self._schedule(rid, run)
        self.dirty.add("r:" + rid)
        if '"STREAMING"' in run["facets"] and run["job"] not in self.streaming and _is_streaming(run["facets"]):
            self.streaming.add(run["job"])  # its runs stay live: never INCOMPLETE_RUN
            self.dirty.add("s:" + run["job"])
        self.watermark = max(self.watermark, run["s"], ended if ended is not None else run["s"])
        if (run["s"] <= self.settled and not run["started"]) or (ended is not None and ended <= self.settled):
            self.late_facts += 1

    # ---- time -----------------------------------------------------------------------------------

    def advance(self, now: int) -> None:
        """Apply every fact at or before `now - lateness` in event-time order (settled time never goes back).

        Facts wait in a heap ordered by (time, starts before ends before signals, run id); an entry a
        newer revision made obsolete (its time moved, or the fact was applied) is skipped when it comes up.
        """
        target = max(self.settled, now - self.config.lateness_ms)
        facts = self._facts
        while facts and facts[0][0] <= target:
            t, order, rid = heapq.heappop(facts)
            run = self.pending.get(rid)
            if run is None:
                continue  # its end was applied already
            if order == 0:
                if not run["started"] and run["s"] == t:
                    self._start(rid, run)
            elif run["e"] == t and order == (2 if run["status"] in SIGNALS else 1):
                if not run["started"]:
                    self._start(rid, run)
                self._end(rid, run, t)
        if target != self.settled:
            self.settled = target
            self.dirty.add("meta")

    def _schedule(self, rid: str, run: Record) -> None:
        if not run["started"]:
            heapq.heappush(self._facts, (run["s"], 0, rid))
        if run["e"] is not None:
            heapq.heappush(self._facts, (run["e"], 2 if run["status"] in SIGNALS else 1, rid))

    def sweep(self) -> None:
        """The timer pass's alert half: open every alert whose onset is at or before the settled time."""
        for _ in self.timer_pass(chunk=0, figures=False):
            pass

    def metrics(self) -> dict[tuple[str, str], float]:
        """(namespace, metric) -> value at the settled time: freshness counts, coverage, open alerts."""
        for _ in self.timer_pass(chunk=0, sync=False):
            pass
        return self.figures

    def timer_pass(self, chunk: int = 50_000, sync: bool = True, figures: bool = True) -> Iterator[None]:
        """Sweep every artifact (`sync`) and count the namespace figures into `self.figures` (`figures`),
        yielding after every `chunk` artifacts (0: never) so the caller can let other work run between.
        Each artifact is synced at the settled time of that moment: facts applied meanwhile are consistent
        with it (a pass that used its start time could resolve an alert a newer fact keeps open)."""
        out: dict[tuple[str, str], float] = {}
        produced: dict[str, int] = {}
        for i, nid in enumerate(list(self.nodes)):
            if chunk and i and i % chunk == 0:
                yield
            node = self.nodes[nid]
            if node.retired_at is not None:
                continue
            t = self.settled
            if sync:
                # only the kinds that can hold for this node (conditions clear at facts, which sync every kind)
                self._sync("STALE", nid, t)
                self._sync("UNUSED", nid, t)
                if node.kind in REQUIRES_UPSTREAM and not node.produced:
                    self._sync("MISSING_UPSTREAM", nid, t)
                if node.drift:
                    self._sync("DRIFT_IMPACT", nid, t)
                if node.serving:
                    self._sync("UNREGISTERED_MODEL", nid, t)
                    self._sync("STALE_MODEL", nid, t)
            if figures:
                ns = node.namespace
                out[(ns, "artifacts")] = out.get((ns, "artifacts"), 0) + 1
                status = self.freshness(nid, t).status.lower()
                out[(ns, status)] = out.get((ns, status), 0) + 1
                if node.produced:
                    produced[ns] = produced.get(ns, 0) + 1
        t = self.settled
        if sync:
            for job in list(self.open_runs):
                self._sync("INCOMPLETE_RUN", job, t)
            cutoff = t - self.done_retention_ms
            expired = []
            for rid, (end, _) in self.done.items():  # in end order, nearly: stop at the first live one
                if end >= cutoff:
                    break
                expired.append(rid)
            for rid in expired:
                del self.done[rid]
                self.dirty.add("d:" + rid)
        if figures:
            for (ns, metric), n in list(out.items()):
                if metric == "artifacts":
                    out[(ns, "coverage_ratio")] = produced.get(ns, 0) / n
            for alert in self.alerts.values():
                for metric in ("open_alerts", "alerts_" + alert["category"]):
                    k = (alert["namespace"], metric)
                    out[k] = out.get(k, 0) + 1
            for job, runs in self.open_runs.items():
                k = (_namespace_of(job), "running_runs")
                out[k] = out.get(k, 0) + len(runs)
            self.figures = out
            self.figures_at = t

    # ---- facts ----------------------------------------------------------------------------------

    def _start(self, rid: str, run: Record) -> None:
        run["started"] = True
        self.dirty.add("r:" + rid)
        if run["status"] in SIGNALS:
            return
        if run["job"] in self.streaming:
            return
        self.open_runs.setdefault(run["job"], {})[rid] = run["s"]
        self.dirty.add("j:" + run["job"])

    def _end(self, rid: str, run: Record, t: int) -> None:
        del self.pending[rid]
        self.done[rid] = [t, run["rev"]]
        self.dirty.add("r:" + rid)
        self.dirty.add("d:" + rid)
        job = run["job"]
        status = run["status"]
        if status in SIGNALS:
            self._signal(rid, run, t)
            return
        subject = job
        self._sync("INCOMPLETE_RUN", subject, t)
        runs = self.open_runs.get(job, {})
        runs.pop(rid, None)
        if not runs:
            self.open_runs.pop(job, None)
        self.dirty.add("j:" + job)
        self._sync("INCOMPLETE_RUN", subject, t)
        if status in NOT_VALID:
            return
        self._complete(rid, run, t)

    def _complete(self, rid: str, run: Record, t: int) -> None:
        s = run["s"]
        inputs = {node_id(a[0], a[1], a[2]): a for a in run["in"]}
        outputs = {node_id(a[0], a[1], a[2]): a for a in run["out"]}
        touched = sorted({*inputs, *outputs})
        for nid in touched:
            self._sync_node(nid, t)
        for nid, a in inputs.items():
            node = self._node(nid, a, t)
            node.last_touch = t
        models_in = [(nid, a[3]) for nid, a in inputs.items() if a[0] in MODEL_KINDS]
        for nid, a in outputs.items():
            node = self._node(nid, a, t)
            node.last_touch = t
            node.updates.append(t)
            del node.updates[:-UPDATES_KEPT]
            node.declared_sla = _declared_sla(a[4])
            srcs = [i for i in inputs if i != nid]
            if srcs:
                node.produced = True
            version = a[3]
            if version is not None and version not in node.versions:
                node.versions[version] = t
                if len(node.versions) > VERSIONS_KEPT:
                    del node.versions[min(node.versions, key=node.versions.__getitem__)]
                for dep in node.served_by:
                    self._sync_node(dep, t, ("UNREGISTERED_MODEL",))
            key = [s, rid]
            if not node.latest or key > node.latest[:2]:
                node.latest = [s, rid, version]
            if is_append(a[4]):
                for src in srcs:
                    node.appends[src] = max(node.appends.get(src, s), s)
            else:
                cur = node.writers.get(run["job"])
                if cur is None or key > cur[:2]:
                    node.writers[run["job"]] = [s, rid, sorted(srcs), version]
            for src in srcs:
                reader = self.nodes[src]
                if nid not in reader.readers:
                    reader.readers.append(nid)
                    self.dirty.add("n:" + src)
            if a[0] in MODEL_KINDS and version is not None:
                node.trained[version] = sorted([i, inputs[i][3]] for i in srcs if inputs[i][3] is not None)
                if len(node.trained) > TRAINED_KEPT:
                    del node.trained[next(iter(node.trained))]
            if a[0] in SERVING_KINDS and models_in:  # a deployment of the (first) model it read
                model, mversion = min(models_in)
                old = node.serving[0] if node.serving else None
                node.serving = [model, mversion, t]
                if old and old != model and old in self.nodes:
                    self.nodes[old].served_by = [d for d in self.nodes[old].served_by if d != nid]
                    self.dirty.add("n:" + old)
                mnode = self.nodes[model]
                if nid not in mnode.served_by:
                    mnode.served_by.append(nid)
            self.dirty.add("n:" + nid)
        self._check_io(run, inputs, outputs, t)
        for nid in touched:
            self._sync_node(nid, t)
        for nid, a in (*inputs.items(), *outputs.items()):
            if a[4] and '"dataQualityAssertions"' in a[4] and _failed_assertions(a[4]):
                self._quality_drop(rid, run, nid, a, t)

    def _quality_drop(self, rid: str, run: Record, nid: str, a: list[Any], t: int) -> None:
        """A failed test in a `dataQualityAssertions` facet (dbt tests, Great Expectations ...) is a QUALITY
        signal on the dataset: linked to the models and deployments downstream, like an emitted one."""
        node = self.nodes[nid]
        node.signals.append(t)
        del node.signals[:-SIGNALS_KEPT]
        signal = {**run, "status": "QUALITY"}
        self._link_downstream(rid, signal, nid, a[3], t)
        if a[0] in DRIFT_TARGETS:
            self._link_root_causes(rid, signal, nid, a[3], t)
        self.dirty.add("n:" + nid)
        self._sync_node(nid, t)

    def _check_io(self, run: Record, inputs: Mapping[str, Any], outputs: Mapping[str, Any], t: int) -> None:
        expected_in: set[str] = set()
        expected_out: set[str] = set()
        for rule in self.config.jobs:
            if fnmatch.fnmatchcase(_job_path(run["job"]), rule.job):
                expected_in.update(rule.inputs)
                expected_out.update(rule.outputs)
        declared = facet(run["facets"], "expectedIO")
        if isinstance(declared, dict):
            expected_in.update(x for x in declared.get("inputs", ()) if isinstance(x, str))
            expected_out.update(x for x in declared.get("outputs", ()) if isinstance(x, str))
        if not expected_in and not expected_out and run["job"] not in self.missing_io:
            return
        subject = run["job"]
        self._sync("MISSING_IO", subject, t)
        missing = sorted((expected_in - set(inputs)) | (expected_out - set(outputs)))
        if missing:
            prev = self.missing_io.get(run["job"])
            self.missing_io[run["job"]] = [prev[0] if prev else t, missing]
        else:
            self.missing_io.pop(run["job"], None)
        self.dirty.add("j:" + run["job"])
        self._sync("MISSING_IO", subject, t)

    def _signal(self, rid: str, run: Record, t: int) -> None:
        if not run["in"]:
            return
        a = run["in"][0]
        nid = node_id(a[0], a[1], a[2])
        self._sync_node(nid, t)
        node = self._node(nid, a, t)
        status = run["status"]
        if status == "RETIRE":
            node.retired_at = t
        elif status in ("DRIFT", "QUALITY") and is_drop(status, run["facets"]):
            node.signals.append(t)
            del node.signals[:-SIGNALS_KEPT]
            self._link_downstream(rid, run, nid, a[3], t)
            if a[0] in DRIFT_TARGETS:
                self._link_root_causes(rid, run, nid, a[3], t)
        self.dirty.add("n:" + nid)
        self._sync_node(nid, t)

    # ---- graph walks (over the facts applied so far, i.e. as of the fact's time) -----------------

    def _edge_valid(self, src: str, dst: str) -> bool:
        d = self.nodes[dst]
        retired = max(self.nodes[src].retired_at or -(2**62), d.retired_at or -(2**62))
        for w in d.writers.values():
            if w[0] > retired and src in w[2]:
                return True
        return d.appends.get(src, -(2**62)) > retired

    def _walk(self, start: str, downstream: bool) -> Iterator[tuple[str, list[str]]]:
        """Nodes reachable from `start` over valid edges, nearest first, each with a shortest path."""
        parent: dict[str, str] = {start: start}
        frontier = deque([start])
        while frontier:
            n = frontier.popleft()
            if downstream:
                nxt = sorted(d for d in self.nodes[n].readers if self._edge_valid(n, d))
            else:
                node = self.nodes[n]
                ups = {s for w in node.writers.values() for s in w[2]} | set(node.appends)
                nxt = sorted(u for u in ups if u in self.nodes and self._edge_valid(u, n))
            for m in nxt:
                if m in parent:
                    continue
                parent[m] = n
                path = [m]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                yield m, path[::-1] if downstream else path
                frontier.append(m)

    def _link(self, rid: str, run: Record, source: str, version: str | None, t: int, direction: str,
              target: str, tversion: str | None, path: list[str], rank: int) -> None:  # fmt: skip
        self.out_links.append(
            {
                "signal_id": rid,
                "signal_type": run["status"],
                "source": source,
                "source_version": version,
                "signal_time": t,
                "direction": direction,
                "target": target,
                "target_kind": self.nodes[target].kind if target in self.nodes else identity.parse(target).kind,
                "target_version": tversion,
                "distance": len(path) - 1,
                "path": path,
                "rank": rank,
            }
        )

    def _link_downstream(self, rid: str, run: Record, source: str, version: str | None, t: int) -> None:
        for target, path in self._walk(source, downstream=True):
            node = self.nodes[target]
            if node.kind not in DRIFT_TARGETS:
                continue
            tversion = node.latest[2] if node.latest else None
            self._link(rid, run, source, version, t, "DOWNSTREAM", target, tversion, path, 0)
            self._sync_node(target, t, ("DRIFT_IMPACT",))
            if not node.drift or node.drift[0] <= t:  # the latest drift reaching it (a late one may be older)
                node.drift = [t, source, path]
            self.dirty.add("n:" + target)
            self._sync_node(target, t, ("DRIFT_IMPACT",))

    def _link_root_causes(self, rid: str, run: Record, subject: str, version: str | None, t: int) -> None:
        since = t - self.config.root_cause_window_ms
        candidates: list[tuple[int, int, str, str, list[str]]] = []
        for up, path in self._walk(subject, downstream=False):
            node = self.nodes[up]
            dist = len(path) - 1
            drift = [x for x in node.signals if since <= x <= t]
            change = [x for x in node.updates if since <= x <= t]
            if drift:
                candidates.append((dist, -max(drift), "DRIFT", up, path))
            elif change:
                candidates.append((dist, -max(change), "CHANGE", up, path))
        candidates.sort(key=lambda c: (c[0], c[1], c[3]))
        for rank, (_, _t, why, up, path) in enumerate(candidates[:ROOT_CAUSES_KEPT], start=1):
            node = self.nodes[up]
            self._link(rid, run, subject, version, t, "ROOT_CAUSE_" + why, up,
                       node.latest[2] if node.latest else None, path, rank)  # fmt: skip

    # ---- conditions -----------------------------------------------------------------------------

    def _rules_for(self, node: Node, nid: str) -> tuple[int | None, int | None]:
        key = (node.kind, node.namespace, nid)
        hit = self._rule_cache.get(key)
        if hit is None:
            name = identity.parse(nid).name
            sla: int | None = None
            unused: int | None = None
            for rule in self.config.artifacts:
                if rule.matches(node.kind, node.namespace, name):
                    sla = rule.sla_ms if sla is None else sla
                    unused = rule.unused_after_ms if unused is None else unused
            hit = (sla, unused)
            if len(self._rule_cache) < 1_000_000:
                self._rule_cache[key] = hit
        return hit

    def sla(self, nid: str) -> tuple[int | None, str]:
        node = self.nodes[nid]
        if node.declared_sla is not None:
            return node.declared_sla, "declared"
        if self.config.artifacts:
            rule_sla = self._rules_for(node, nid)[0]
            if rule_sla is not None:
                return rule_sla, "rule"
        if len(node.updates) >= self.config.learn_min_updates:
            u = node.updates
            median = statistics.median(b - a for a, b in itertools.pairwise(u))
            return max(self.config.learn_floor_ms, int(self.config.learn_factor * median)), "learned"
        return None, "none"

    def freshness(self, nid: str, t: int | None = None) -> Freshness:
        t = self.settled if t is None else t
        node = self.nodes[nid]
        sla, source = self.sla(nid)
        last = node.last_update
        if last is None:
            return Freshness("NEVER_SEEN" if sla is not None else "UNKNOWN", sla, source, None)
        age = t - last
        if sla is None:
            return Freshness("UNKNOWN", None, source, age)
        status = "FRESH" if age < sla else "LATE" if age < 2 * sla else "STALE"
        return Freshness(status, sla, source, age)

    def onset(self, kind: str, subject: str) -> int | None:
        """When the condition `kind` began to hold for `subject`, given the facts applied; None if it does not."""
        if kind == "INCOMPLETE_RUN":
            runs = self.open_runs.get(subject)
            return min(runs.values()) + self.config.run_timeout_ms if runs else None
        if kind == "MISSING_IO":
            m = self.missing_io.get(subject)
            return m[0] if m else None
        node = self.nodes.get(subject)
        if node is None or node.retired_at is not None:
            return None
        if kind == "STALE":
            sla = self.sla(subject)[0]
            if sla is None:
                return None
            return (node.updates[-1] if node.updates else node.first_seen) + sla
        if kind == "MISSING_UPSTREAM":
            if node.kind not in REQUIRES_UPSTREAM or node.produced:
                return None
            return node.first_seen + self.config.upstream_grace_ms
        if kind == "UNUSED":
            unused = self._rules_for(node, subject)[1] if self.config.artifacts else None
            return node.last_touch + (unused if unused is not None else self.config.unused_after_ms)
        if kind == "DRIFT_IMPACT":
            if not node.drift or (node.updates and node.updates[-1] > node.drift[0]):
                return None
            return int(node.drift[0])
        if kind == "UNREGISTERED_MODEL":
            if not node.serving:
                return None
            model, version, at = node.serving
            reg = self.nodes.get(model)
            return None if reg is not None and (version is None or version in reg.versions) else int(at)
        if kind == "STALE_MODEL":
            if not node.serving:
                return None
            model, version, _ = node.serving
            trained = self.nodes.get(model)
            inputs = trained.trained.get(version, []) if trained is not None and version is not None else []
            newest: int | None = None
            for src, sversion in inputs:
                s = self.nodes.get(src)
                if s is None or sversion not in s.versions:
                    continue
                since = s.versions[sversion]
                newer = [x for v, x in s.versions.items() if v != sversion and x > since]
                if newer:
                    first = min(newer)
                    newest = first if newest is None else min(newest, first)
            return None if newest is None else newest + self.config.model_lag_ms
        raise ValueError(f"unknown alert kind {kind!r}")

    def _reason(self, kind: str, subject: str) -> tuple[str, list[str]]:
        if kind == "STALE":
            sla, source = self.sla(subject)
            last = self.nodes[subject].last_update
            return f"no update since {last} (SLA {sla} ms, {source})" if last else f"never updated (SLA {sla} ms)", []
        if kind == "MISSING_UPSTREAM":
            return f"{self.nodes[subject].kind} has no upstream lineage", []
        if kind == "UNUSED":
            return f"no run read or wrote it since {self.nodes[subject].last_touch}", []
        if kind == "DRIFT_IMPACT":
            t, source, path = self.nodes[subject].drift
            return f"drift on {source} at {t} reaches it", list(path)
        if kind == "UNREGISTERED_MODEL":
            model, version, _ = self.nodes[subject].serving
            return f"serves {model}@{version}, which no run registered", [model, subject]
        if kind == "STALE_MODEL":
            model, version, _ = self.nodes[subject].serving
            return f"serves {model}@{version}, trained on data that has newer versions", [model, subject]
        if kind == "INCOMPLETE_RUN":
            runs = self.open_runs[subject]
            oldest = min(runs, key=lambda r: (runs[r], r))
            return f"{len(runs)} run(s) not finished within the timeout; oldest {oldest}", []
        m = self.missing_io[subject]
        return "declared inputs/outputs missing: " + ", ".join(m[1]), list(m[1])

    def _sync_node(self, nid: str, t: int, kinds: Iterable[str] = NODE_ALERTS) -> None:
        for kind in kinds:
            self._sync(kind, nid, t)

    def _sync(self, kind: str, subject: str, t: int) -> None:
        key = f"{kind}|{subject}"
        onset = self.onset(kind, subject)
        alert = self.alerts.get(key)
        if onset is not None and onset <= t:
            if alert is None:
                reason, path = self._reason(kind, subject)
                category, severity = ALERT_KINDS[kind]
                alert = {
                    "alert_id": _alert_id(kind, subject, onset),
                    "kind": kind,
                    "category": category,
                    "subject": subject,
                    "namespace": node.namespace if (node := self.nodes.get(subject)) else _namespace_of(subject),
                    "severity": severity,
                    "status": "OPEN",
                    "reason": reason,
                    "path": path,
                    "opened_at": onset,
                    "resolved_at": None,
                }
                self.alerts[key] = alert
                self.out_alerts.append(dict(alert))
                self.dirty.add("a:" + key)
        elif alert is not None:
            del self.alerts[key]
            self.out_alerts.append({**alert, "status": "RESOLVED", "resolved_at": t})
            self.dirty.add("a:" + key)

    def _node(self, nid: str, a: list[Any], t: int) -> Node:
        node = self.nodes.get(nid)
        if node is None:
            node = self.nodes[nid] = Node(kind=a[0], namespace=a[1], first_seen=t, last_touch=t)
        self.dirty.add("n:" + nid)
        return node

    # ---- reading --------------------------------------------------------------------------------

    def take(self) -> tuple[list[Record], list[Record]]:
        """Alert transitions and drift links produced since the last call."""
        alerts, links = self.out_alerts, self.out_links
        self.out_alerts, self.out_links = [], []
        return alerts, links

    # ---- persistence (the processor's changelog-backed table) ------------------------------------

    def take_dirty(self) -> set[str]:
        d, self.dirty = self.dirty, set()
        return d

    def export(self, key: str) -> Any:
        """The table value for `key` (None: deleted)."""
        kind, _, rest = key.partition(":")
        if kind == "n":
            node = self.nodes.get(rest)
            return None if node is None else node.to_json()
        if kind == "r":
            return self.pending.get(rest)
        if kind == "a":
            return self.alerts.get(rest)
        if kind == "j":
            runs = self.open_runs.get(rest)
            io = self.missing_io.get(rest)
            return None if not runs and not io else {"runs": runs or {}, "io": io}
        if kind == "d":
            return self.done.get(rest)
        if kind == "s":
            return True if rest in self.streaming else None
        if kind == "meta":
            return {"settled": self.settled, "watermark": self.watermark}
        raise KeyError(key)

    def load(self, items: Iterable[tuple[str, Any]]) -> None:
        """Rebuild from exported values (a recovered table), then reschedule the pending runs' facts."""
        for key, value in items:
            if value is None:
                continue
            kind, _, rest = key.partition(":")
            if kind == "n":
                node = Node.from_json(value)
                node.writers = {_job_key(j): w for j, w in node.writers.items()}
                self.nodes[rest] = node
            elif kind == "r":
                self.pending[rest] = {**value, "job": _job_key(value["job"])}
            elif kind == "a":
                self.alerts[rest] = value
            elif kind == "d":
                self.done[rest] = list(value)
            elif kind == "s":
                self.streaming.add(_job_key(rest))
                if _job_key(rest) != rest:
                    self.dirty.update((key, "s:" + _job_key(rest)))  # the old key is deleted, the new one written
            elif kind == "j":
                if _job_key(rest) != rest:
                    self.dirty.update((key, "j:" + _job_key(rest)))
                if value["runs"]:
                    self.open_runs[_job_key(rest)] = {k: int(v) for k, v in value["runs"].items()}
                if value["io"]:
                    self.missing_io[_job_key(rest)] = value["io"]
            elif key == "meta":
                self.settled = value["settled"]
                self.watermark = value["watermark"]
        self._facts = []
        for rid, run in self.pending.items():
            self._schedule(rid, run)
