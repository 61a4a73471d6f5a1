"""producers.simulator: deterministic, and its ground truth agrees with the processor's derivation."""

from __future__ import annotations

from producers.simulator import Simulator
from schemas.codec import SingleObjectCodec

CODEC = SingleObjectCodec("lineage_event")


def _run(n: int, seed: int = 3) -> tuple[list[tuple[bytes, bytes]], Simulator]:
    sim = Simulator(CODEC, seed=seed, duplicate_rate=0.05, malformed_rate=0.02)
    out = [
        (m.key, CODEC.encode(m.event.to_record()) if m.event else (m.payload or b""))
        for m in sim.messages(n)
    ]
    return out, sim


def test_same_seed_same_messages() -> None:
    a, _ = _run(500)
    b, _ = _run(500)
    c, _ = _run(500, seed=4)
    assert a == b
    assert a != c


def test_counts_add_up() -> None:
    msgs, sim = _run(2_000)
    t = sim.truth
    assert t.events == 2_000
    assert t.duplicates > 0 and t.malformed > 0
    assert len(msgs) == t.events + t.duplicates + t.malformed


def test_production_deployment_reaches_raw_sources_upstream() -> None:
    _, sim = _run(2_000)
    up = sim.truth.upstream(sim.truth.production_deployment)
    assert sim.truth.production_model in up
    assert "dataset:s3://landing/growth/events" in up
    assert not any("risk" in n for n in up)  # another team's lineage stays apart


def test_successive_calls_continue_one_workload() -> None:
    sim = Simulator(CODEC, seed=3, duplicate_rate=0, malformed_rate=0)
    first = [m.event for m in sim.messages(100)]
    second = [m.event for m in sim.messages(50)]
    assert (len(first), len(second), sim.truth.events) == (100, 50, 150)
    assert not {e.event_id for e in first if e} & {e.event_id for e in second if e}
