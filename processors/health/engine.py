"""Lineage health: freshness, completeness, drift-to-model links, orphaned and stale artifacts. Pure.

Input is the processor's merged `Run` records (processors/lineage/runs.py); time is injected. The engine
turns each run into *facts* at event times — a run's start, its end (outputs written, inputs read, edges),
a signal (DRIFT, QUALITY, RETIRE) — and applies them strictly in event-time order once they are
*settled*: older than the clock minus the lateness bound. So whatever order records arrive in within
that bound, the same facts are applied in the same order (docs/health.md, "Order").

This module orchestrates; the parts are: config (HealthConfig), kinds (every alert kind), state (the
typed state), persisted / legacy (its table form, versioned), facts (what a run record says), apply
(applying facts), conditions (each kind's onset), alerts (opening and resolving), freshness, graph
(walks, drift links) and figures (the namespace series). `export(key)` / `load(items)` give the
processor a changelog-backed table of the state (`take_dirty()` lists the keys changed since last time).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from processors.health import conditions, facts, freshness, persisted
from processors.health.alerts import Alerts
from processors.health.apply import FactApplier
from processors.health.config import HealthConfig
from processors.health.facts import START
from processors.health.figures import Figures
from processors.health.freshness import Freshness, Rules
from processors.health.state import Done, HealthState, MissingIO, Node, OpenAlert, PendingRun

Record = dict[str, Any]
DONE_RETENTION_MS = 86_400_000  # applied runs are remembered this long (replays of them are ignored)


class HealthEngine:
    """The health state of one lineage graph, advanced by `add_run` and `advance(now)`."""

    def __init__(self, config: HealthConfig | None = None) -> None:
        self.config = config or HealthConfig()
        self.state = HealthState()
        self.rules = Rules(self.config)
        self._alerts = Alerts(self.state, self.rules)
        self._apply = FactApplier(self.state, self.config, self._alerts)
        self._facts: list[tuple[int, int, str]] = []  # heap of (time, order, run id) not yet applied
        self.done_retention_ms = DONE_RETENTION_MS
        self.late_facts = 0  # records that arrived later than the lateness bound
        self.figures: dict[tuple[str, str], float] = {}  # the last timer pass's namespace figures
        self.figures_at = self.state.settled

    # ---- the state (processors/health/state.py) ---------------------------------------------------

    @property
    def nodes(self) -> dict[str, Node]:
        return self.state.nodes

    @property
    def pending(self) -> dict[str, PendingRun]:
        return self.state.pending

    @property
    def open_runs(self) -> dict[str, dict[str, int]]:
        return self.state.open_runs

    @property
    def alerts(self) -> dict[str, OpenAlert]:
        return self.state.alerts

    @property
    def missing_io(self) -> dict[str, MissingIO]:
        return self.state.missing_io

    @property
    def streaming(self) -> set[str]:
        return self.state.streaming

    @property
    def done(self) -> dict[str, Done]:
        return self.state.done

    @property
    def settled(self) -> int:
        return self.state.settled

    @property
    def watermark(self) -> int:
        return self.state.watermark

    @property
    def dirty(self) -> set[str]:
        """Table keys changed since the last `take_dirty`."""
        return self.state.dirty

    @property
    def out_alerts(self) -> list[Record]:
        """Alert transitions (records) since the last `take`."""
        return self._alerts.out

    @property
    def out_links(self) -> list[Record]:
        """Drift links (records) since the last `take`."""
        return self._apply.links

    # ---- input ------------------------------------------------------------------------------------

    def add_run(self, record: Mapping[str, Any]) -> None:
        """A merged Run record (any revision, any order); keeps the highest revision until settled. Design-time
        records (an OpenLineage JobEvent or DatasetEvent: declarations, not executions) are not runs."""
        if facts.design_time(record.get("facets")):
            return
        state = self.state
        rid: str = record["run_id"]
        old = state.pending.get(rid)
        if old is not None and old.revision >= record["revision"]:
            return
        if old is None and rid in state.done:
            if record["revision"] > state.done[rid].revision:
                self.late_facts += 1  # a revision after its end was applied: later than the bound
            return
        run = facts.pending_run(record, started=old is not None and old.started)
        state.pending[rid] = run
        self._schedule(rid, run)
        state.dirty.add("r:" + rid)
        if run.job not in state.streaming and facts.is_streaming(run.facets):
            state.streaming.add(run.job)  # its runs stay live: never INCOMPLETE_RUN
            state.dirty.add("s:" + run.job)
        ended = run.ended_at
        state.watermark = max(state.watermark, run.started_at, ended if ended is not None else run.started_at)
        if (run.started_at <= state.settled and not run.started) or (ended is not None and ended <= state.settled):
            self.late_facts += 1

    # ---- time -------------------------------------------------------------------------------------

    def advance(self, now: int) -> None:
        """Apply every fact at or before `now - lateness` in event-time order (settled time never goes back).

        Facts wait in a heap ordered by (time, starts before ends before signals, run id); an entry a
        newer revision made obsolete (its time moved, or the fact was applied) is skipped when it comes up.
        """
        state = self.state
        target = max(state.settled, now - self.config.lateness_ms)
        heap = self._facts
        while heap and heap[0][0] <= target:
            t, order, rid = heapq.heappop(heap)
            run = state.pending.get(rid)
            if run is None:
                continue  # its end was applied already
            if order == START:
                if not run.started and run.started_at == t:
                    self._apply.start(rid, run)
            elif run.ended_at == t and order == facts.end_order(run):
                if not run.started:
                    self._apply.start(rid, run)
                self._apply.end(rid, run, t)
        if target != state.settled:
            state.settled = target
            state.dirty.add("meta")

    def _schedule(self, rid: str, run: PendingRun) -> None:
        if not run.started:
            heapq.heappush(self._facts, (run.started_at, START, rid))
        if run.ended_at is not None:
            heapq.heappush(self._facts, (run.ended_at, facts.end_order(run), rid))

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
        state, alerts, rules = self.state, self._alerts, self.rules
        counts = Figures()
        for i, nid in enumerate(list(state.nodes)):
            if chunk and i and i % chunk == 0:
                yield
            node = state.nodes[nid]
            if node.retired_at is not None:
                continue
            t = state.settled
            if sync:
                for kind in conditions.swept_kinds(node):
                    alerts.sync(kind, nid, t)
            if figures:
                counts.artifact(node.namespace, freshness.freshness(node, nid, rules, t).status, node.produced)
        if sync:
            self._sweep_jobs(state.settled)
        if figures:
            self.figures = counts.finish(state.alerts.values(), state.open_runs)
            self.figures_at = state.settled

    def _sweep_jobs(self, t: int) -> None:
        """The timer pass over jobs: overdue runs, and forgetting applied runs older than the retention."""
        state = self.state
        for job in list(state.open_runs):
            self._alerts.sync("INCOMPLETE_RUN", job, t)
        cutoff = t - self.done_retention_ms
        expired = []
        for rid, done in state.done.items():  # in end order, nearly: stop at the first live one
            if done.ended_at >= cutoff:
                break
            expired.append(rid)
        for rid in expired:
            del state.done[rid]
            state.dirty.add("d:" + rid)

    # ---- reading ----------------------------------------------------------------------------------

    def sla(self, nid: str) -> tuple[int | None, str]:
        """The artifact's SLA and its source: declared, rule, learned or none."""
        return freshness.sla(self.state.nodes[nid], nid, self.rules)

    def freshness(self, nid: str, t: int | None = None) -> Freshness:
        """The artifact's freshness at `t` (default: the settled time)."""
        return freshness.freshness(self.state.nodes[nid], nid, self.rules, self.state.settled if t is None else t)

    def onset(self, kind: str, subject: str) -> int | None:
        """When the condition `kind` began to hold for `subject`, given the facts applied; None if it does not."""
        return conditions.onset(self.state, self.rules, kind, subject)

    def take(self) -> tuple[list[Record], list[Record]]:
        """Alert transitions and drift links produced since the last call."""
        alerts, links = self._alerts.out, self._apply.links
        self._alerts.out, self._apply.links = [], []
        return alerts, links

    # ---- persistence (the processor's changelog-backed table: processors/health/persisted.py) -----

    def take_dirty(self) -> set[str]:
        d, self.state.dirty = self.state.dirty, set()
        return d

    def export(self, key: str) -> Any:
        """The table value for `key` (None: deleted)."""
        return persisted.export(self.state, key)

    def load(self, items: Iterable[tuple[str, Any]]) -> None:
        """Rebuild from table values of any format version (a recovered table), then reschedule the
        pending runs' facts."""
        persisted.load(self.state, items)
        self._facts = []
        for rid, run in self.state.pending.items():
            self._schedule(rid, run)
