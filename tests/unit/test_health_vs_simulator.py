"""The health engine against the simulator's ground truth, in process (no Kafka): every alert and every
drift link, for workloads with drift, stuck runs and a table that stops being updated."""

from __future__ import annotations

from collections import Counter

import pytest
from health_support import DURATIONS, SCENARIO, config, feed
from health_truth import expected_alerts, expected_drift_links

from processors.health.engine import HealthEngine
from producers.simulator import Simulator
from schemas.codec import make_codec

CONFIG = config(lateness_ms=120_000)


@pytest.mark.parametrize("seed", [1, 2])
def test_every_alert_and_drift_link_matches_the_simulator(seed: int) -> None:
    sim = Simulator(make_codec("lineage_event"), seed=seed, **SCENARIO)
    engine = HealthEngine(CONFIG)
    events = [m.event.to_record() for m in sim.messages(1000) if m.event is not None]
    watermark = feed(engine, events, sweep_every=97)
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
