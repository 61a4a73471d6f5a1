"""Shared by the health tests: the simulator's health scenario, the durations its truth is worked out
for, and feeding a workload through the processor's run merge into a HealthEngine (as the worker does)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from health_truth import Durations

from processors.health.config import HealthConfig
from processors.health.engine import HealthEngine
from processors.lineage import runs

# drift, stuck runs and an ingest that stops (the first team's raw_events), on a small graph
SCENARIO: dict[str, Any] = {
    "teams": 2,
    "rag_apps": 1,
    "docs_per_cycle": 2,
    "chunks_per_doc": 2,
    "drift_rate": 0.4,
    "stuck_rate": 0.02,
    "stop_ingest_after": 6,
}
DURATIONS = Durations(run_timeout_ms=30_000, upstream_grace_ms=20_000, unused_after_ms=400_000, model_lag_ms=60_000)


def config(lateness_ms: int) -> HealthConfig:
    """The engine's settings matching DURATIONS."""
    return HealthConfig(
        lateness_ms=lateness_ms,
        run_timeout_ms=DURATIONS.run_timeout_ms,
        upstream_grace_ms=DURATIONS.upstream_grace_ms,
        unused_after_ms=DURATIONS.unused_after_ms,
        model_lag_ms=DURATIONS.model_lag_ms,
    )


def rules_toml(lateness: str) -> str:
    """The same settings as a rules file for the worker (UPRIVER_HEALTH_RULES)."""
    d = DURATIONS
    return (
        f'[defaults]\nlateness = "{lateness}"\nrun_timeout = "{d.run_timeout_ms}ms"\n'
        f'upstream_grace = "{d.upstream_grace_ms}ms"\nunused_after = "{d.unused_after_ms}ms"\n'
        f'model_lag = "{d.model_lag_ms}ms"\n'
    )


def feed(
    engine: HealthEngine,
    events: Iterable[Mapping[str, Any]],
    sweep_every: int = 0,
    states: dict[str, runs.RunState] | None = None,
) -> int:
    """Merge each event into its run, hand every new revision to `engine` and advance it on the event
    clock (timer passes every `sweep_every` events; 0: none); returns the greatest start or end time.
    Pass the same `states` to continue a workload over several calls."""
    states = {} if states is None else states
    watermark = 0
    for i, event in enumerate(events):
        if event["event_type"] != "RUNNING":  # the event clock moves with run starts and ends
            watermark = max(watermark, event["event_time"])
        state, changed = runs.merge(states.get(event["run_id"]), event)
        states[event["run_id"]] = state
        if changed:
            engine.add_run(runs.run_record(state, 0))
        engine.advance(engine.watermark)
        if sweep_every and i % sweep_every == 0:
            engine.sweep()
    return watermark
