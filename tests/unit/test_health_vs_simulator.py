"""The health engine against the simulator's ground truth, in process (no Kafka): every alert and every
drift link, for workloads with drift, stuck runs and a table that stops being updated."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from processors import runs
from processors.health import HealthConfig, HealthEngine
from producers.health_truth import Durations, expected_alerts, expected_drift_links
from producers.simulator import Simulator
from schemas.codec import make_codec

DURATIONS = Durations(run_timeout_ms=30_000, upstream_grace_ms=20_000, unused_after_ms=400_000, model_lag_ms=60_000)
CONFIG = HealthConfig(
    lateness_ms=120_000,
    run_timeout_ms=DURATIONS.run_timeout_ms,
    upstream_grace_ms=DURATIONS.upstream_grace_ms,
    unused_after_ms=DURATIONS.unused_after_ms,
    model_lag_ms=DURATIONS.model_lag_ms,
)
SCENARIO: dict[str, Any] = {
    "teams": 2,
    "rag_apps": 1,
    "docs_per_cycle": 2,
    "chunks_per_doc": 2,
    "drift_rate": 0.4,
    "stuck_rate": 0.02,
    "stop_ingest_after": 6,
}


@pytest.mark.parametrize("seed", [1, 2])
def test_every_alert_and_drift_link_matches_the_simulator(seed: int) -> None:
    sim = Simulator(make_codec("lineage_event"), seed=seed, **SCENARIO)
    engine = HealthEngine(CONFIG)
    states: dict[str, runs.RunState] = {}
    watermark = 0
    for i, message in enumerate(sim.messages(1000)):
        if message.event is None:
            continue
        event = message.event.to_record()
        if event["event_type"] != "RUNNING":  # the event clock moves with run starts and ends
            watermark = max(watermark, event["event_time"])
        state, changed = runs.merge(states.get(event["run_id"]), event)
        states[event["run_id"]] = state
        if changed:
            engine.add_run(runs.run_record(state, 0))
        engine.advance(engine.watermark)
        if i % 97 == 0:
            engine.sweep()
    engine.sweep()
    settled = watermark - CONFIG.lateness_ms
    assert engine.settled == settled
    last = {a["alert_id"]: a for a in engine.out_alerts}
    got = {(a["kind"], a["subject"], a["opened_at"], a["resolved_at"]) for a in last.values()}
    expected = expected_alerts(sim.truth, settled, DURATIONS)
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5])
    kinds = Counter(k for k, *_ in expected)
    assert {"STALE", "INCOMPLETE_RUN", "MISSING_UPSTREAM", "DRIFT_IMPACT", "UNUSED", "STALE_MODEL"} <= set(kinds)
    assert ("STALE", "dataset:warehouse/growth.raw_events") in {(k, s) for k, s, *_ in expected}
    links = {
        (x["signal_time"], x["source"], x["target"], x["target_version"], x["distance"])
        for x in engine.out_links
        if x["direction"] == "DOWNSTREAM"
    }
    assert links == expected_drift_links(sim.truth, settled)
    assert {kind for _, _, target, _, _ in links for kind in [target.split(":")[0]]} == {"model", "deployment"}
    assert engine.late_facts == 0
