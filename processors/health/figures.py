"""The namespace figures of a timer pass (the HealthMetric series) and the Prometheus gauges folded from them.

`Figures` counts, per namespace: artifacts, freshness statuses, coverage, open alerts (all and by category)
and running runs. `METRICS` names every figure a pass can publish (the read side, upriver/readside/health.py,
reads a figure absent from a pass as zero); `gauge_figures` folds namespaces into bounded labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from processors.health.facts import namespace_of
from processors.health.freshness import STATUSES
from processors.health.kinds import CATEGORIES
from processors.health.state import OpenAlert

METRICS: tuple[str, ...] = (
    "artifacts", *(s.lower() for s in STATUSES), "coverage_ratio", "open_alerts",
    *(f"alerts_{c}" for c in CATEGORIES), "running_runs",
)  # fmt: skip


class Figures:
    """The figures of one pass: `artifact` per live artifact, then `finish` with the alerts and open runs."""

    def __init__(self) -> None:
        self.out: dict[tuple[str, str], float] = {}
        self._produced: dict[str, int] = {}

    def artifact(self, namespace: str, status: str, produced: bool) -> None:
        out = self.out
        out[(namespace, "artifacts")] = out.get((namespace, "artifacts"), 0) + 1
        key = (namespace, status.lower())
        out[key] = out.get(key, 0) + 1
        if produced:
            self._produced[namespace] = self._produced.get(namespace, 0) + 1

    def finish(
        self, alerts: Iterable[OpenAlert], open_runs: Mapping[str, Mapping[str, int]]
    ) -> dict[tuple[str, str], float]:
        out = self.out
        for (ns, metric), n in list(out.items()):
            if metric == "artifacts":
                out[(ns, "coverage_ratio")] = self._produced.get(ns, 0) / n
        for alert in alerts:
            for metric in ("open_alerts", "alerts_" + alert.category):
                k = (alert.namespace, metric)
                out[k] = out.get(k, 0) + 1
        for job, runs in open_runs.items():
            k = (namespace_of(job), "running_runs")
            out[k] = out.get(k, 0) + len(runs)
        return out


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
