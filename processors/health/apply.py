"""Applying a run's settled facts to the health state: its start, its end (outputs written, inputs read,
edges, versions registered, a deployment's model, declared inputs/outputs) or its signal.

`FactApplier` changes the state, marks the changed keys dirty, syncs the alerts of every subject a fact
can change before and after the change (processors/health/alerts.py) and collects the drift links.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from processors.health import facts, graph
from processors.health.alerts import Alerts
from processors.health.config import HealthConfig
from processors.health.facts import DRIFT_TARGETS, MODEL_KINDS, NOT_VALID, SERVING_KINDS, SIGNALS
from processors.health.freshness import UPDATES_KEPT
from processors.health.state import (
    Artifact,
    Done,
    DriftMark,
    HealthState,
    MissingIO,
    Node,
    PendingRun,
    Serving,
    Write,
    Writer,
)
from processors.lineage.runs import is_append

VERSIONS_KEPT = 16
TRAINED_KEPT = 8
SIGNALS_KEPT = 8


class FactApplier:
    """Applies facts to `state`; `links` holds the DriftLink records produced since the engine took them."""

    def __init__(self, state: HealthState, config: HealthConfig, alerts: Alerts) -> None:
        self.state = state
        self.config = config
        self.alerts = alerts
        self.links: list[dict[str, Any]] = []

    def start(self, rid: str, run: PendingRun) -> None:
        run.started = True
        self.state.dirty.add("r:" + rid)
        if run.status in SIGNALS or run.job in self.state.streaming:
            return
        self.state.open_runs.setdefault(run.job, {})[rid] = run.started_at
        self.state.dirty.add("j:" + run.job)

    def end(self, rid: str, run: PendingRun, t: int) -> None:
        state = self.state
        del state.pending[rid]
        state.done[rid] = Done(t, run.revision)
        state.dirty.update(("r:" + rid, "d:" + rid))
        if run.status in SIGNALS:
            self._signal(rid, run, t)
            return
        job = run.job
        self.alerts.sync("INCOMPLETE_RUN", job, t)
        runs = state.open_runs.get(job, {})
        runs.pop(rid, None)
        if not runs:
            state.open_runs.pop(job, None)
        state.dirty.add("j:" + job)
        self.alerts.sync("INCOMPLETE_RUN", job, t)
        if run.status not in NOT_VALID:
            self._complete(rid, run, t)

    # ---- a valid run's end ------------------------------------------------------------------------

    def _complete(self, rid: str, run: PendingRun, t: int) -> None:
        inputs = {a.id: a for a in run.inputs}
        outputs = {a.id: a for a in run.outputs}
        touched = sorted({*inputs, *outputs})
        for nid in touched:
            self.alerts.sync_node(nid, t)
        for nid, a in inputs.items():
            self._node(nid, a, t).last_touch = t
        models_in = [(nid, a.version) for nid, a in inputs.items() if a.kind in MODEL_KINDS]
        for nid, a in outputs.items():
            self._write(rid, run, nid, a, inputs, models_in, t)
        self._check_io(run, inputs, outputs, t)
        for nid in touched:
            self.alerts.sync_node(nid, t)
        for nid, a in (*inputs.items(), *outputs.items()):
            if facts.failed_assertions(a.facets):
                self._quality_drop(rid, nid, a, t)

    def _write(self, rid: str, run: PendingRun, nid: str, a: Artifact, inputs: Mapping[str, Artifact],
               models_in: list[tuple[str, str | None]], t: int) -> None:  # fmt: skip
        """Output `a` (node `nid`) written by run `rid`, which read `inputs`, at `t`."""
        node = self._node(nid, a, t)
        node.last_touch = t
        node.updates.append(t)
        del node.updates[:-UPDATES_KEPT]
        node.declared_sla = facts.declared_sla(a.facets)
        srcs = [i for i in inputs if i != nid]
        if srcs:
            node.produced = True
        if a.version is not None and a.version not in node.versions:
            self._register(node, a.version, t)
        s = run.started_at
        if node.latest is None or (s, rid) > (node.latest.started_at, node.latest.run_id):
            node.latest = Write(s, rid, a.version)
        if is_append(a.facets):
            for src in srcs:
                node.appends[src] = max(node.appends.get(src, s), s)
        else:
            cur = node.writers.get(run.job)
            if cur is None or (s, rid) > (cur.started_at, cur.run_id):
                node.writers[run.job] = Writer(s, rid, sorted(srcs), a.version)
        for src in srcs:
            reader = self.state.nodes[src]
            if nid not in reader.readers:
                reader.readers.append(nid)
                self.state.dirty.add("n:" + src)
        if a.kind in MODEL_KINDS and a.version is not None:
            node.trained[a.version] = sorted((i, v) for i in srcs if (v := inputs[i].version) is not None)
            if len(node.trained) > TRAINED_KEPT:
                del node.trained[next(iter(node.trained))]
        if a.kind in SERVING_KINDS and models_in:
            self._deploy(nid, node, min(models_in), t)  # a deployment of the (first) model it read
        self.state.dirty.add("n:" + nid)

    def _register(self, node: Node, version: str, t: int) -> None:
        node.versions[version] = t
        if len(node.versions) > VERSIONS_KEPT:
            del node.versions[min(node.versions, key=node.versions.__getitem__)]
        for dep in node.served_by:
            self.alerts.sync_node(dep, t, ("UNREGISTERED_MODEL",))

    def _deploy(self, nid: str, node: Node, model_in: tuple[str, str | None], t: int) -> None:
        model, version = model_in
        old = node.serving.model if node.serving is not None else None
        node.serving = Serving(model, version, t)
        nodes = self.state.nodes
        if old and old != model and old in nodes:
            nodes[old].served_by = [d for d in nodes[old].served_by if d != nid]
            self.state.dirty.add("n:" + old)
        served = nodes[model].served_by
        if nid not in served:
            served.append(nid)

    def _check_io(self, run: PendingRun, inputs: Mapping[str, Any], outputs: Mapping[str, Any], t: int) -> None:
        expected_in, expected_out = facts.expected_io(run.facets)
        for rule in self.config.jobs:
            if fnmatch.fnmatchcase(facts.job_path(run.job), rule.job):
                expected_in.update(rule.inputs)
                expected_out.update(rule.outputs)
        job = run.job
        if not expected_in and not expected_out and job not in self.state.missing_io:
            return
        self.alerts.sync("MISSING_IO", job, t)
        missing = sorted((expected_in - set(inputs)) | (expected_out - set(outputs)))
        if missing:
            prev = self.state.missing_io.get(job)
            self.state.missing_io[job] = MissingIO(prev.since if prev else t, missing)
        else:
            self.state.missing_io.pop(job, None)
        self.state.dirty.add("j:" + job)
        self.alerts.sync("MISSING_IO", job, t)

    # ---- signals ----------------------------------------------------------------------------------

    def _signal(self, rid: str, run: PendingRun, t: int) -> None:
        if not run.inputs:
            return
        a = run.inputs[0]
        nid = a.id
        self.alerts.sync_node(nid, t)
        node = self._node(nid, a, t)
        if run.status == "RETIRE":
            node.retired_at = t
        elif run.status in ("DRIFT", "QUALITY") and facts.is_drop(run.status, run.facets):
            self._drop(graph.Signal(rid, run.status, nid, a.version, t), node, a.kind)
        self.state.dirty.add("n:" + nid)
        self.alerts.sync_node(nid, t)

    def _quality_drop(self, rid: str, nid: str, a: Artifact, t: int) -> None:
        """A failed test in a `dataQualityAssertions` facet (dbt tests, Great Expectations ...) is a QUALITY
        signal on the dataset: linked to the models and deployments downstream, like an emitted one."""
        self._drop(graph.Signal(rid, "QUALITY", nid, a.version, t), self.state.nodes[nid], a.kind)
        self.state.dirty.add("n:" + nid)
        self.alerts.sync_node(nid, t)

    def _drop(self, signal: graph.Signal, node: Node, kind: str) -> None:
        """A drift or quality drop on `node`: recorded, linked downstream and, on a model or deployment,
        to its ranked upstream root-cause candidates."""
        node.signals.append(signal.at)
        del node.signals[:-SIGNALS_KEPT]
        self._link_downstream(signal)
        if kind in DRIFT_TARGETS:
            nodes = self.state.nodes
            window = self.config.root_cause_window_ms
            for rank, (why, up, path) in enumerate(graph.root_causes(nodes, signal.source, signal.at, window), 1):
                self.links.append(graph.link(nodes, signal, "ROOT_CAUSE_" + why, up, path, rank))

    def _link_downstream(self, signal: graph.Signal) -> None:
        nodes, t = self.state.nodes, signal.at
        for target, path in graph.walk(nodes, signal.source, downstream=True):
            node = nodes[target]
            if node.kind not in DRIFT_TARGETS:
                continue
            self.links.append(graph.link(nodes, signal, "DOWNSTREAM", target, path, 0))
            self.alerts.sync_node(target, t, ("DRIFT_IMPACT",))
            if node.drift is None or node.drift.at <= t:  # the latest drift reaching it (a late one may be older)
                node.drift = DriftMark(t, signal.source, path)
            self.state.dirty.add("n:" + target)
            self.alerts.sync_node(target, t, ("DRIFT_IMPACT",))

    def _node(self, nid: str, a: Artifact, t: int) -> Node:
        node = self.state.nodes.get(nid)
        if node is None:
            node = self.state.nodes[nid] = Node(kind=a.kind, namespace=a.namespace, first_seen=t, last_touch=t)
        self.state.dirty.add("n:" + nid)
        return node
