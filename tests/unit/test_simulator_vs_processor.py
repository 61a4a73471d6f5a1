"""The simulator's ground truth agrees with what the processor's pure decisions derive from its messages."""

from __future__ import annotations

from typing import Any

from processors.lineage import runs
from processors.lineage.validation import Rejection, accept
from producers.simulator import Simulator
from schemas.codec import SingleObjectCodec

CODEC = SingleObjectCodec("lineage_event")


def test_truth_matches_what_the_processor_derives_from_the_messages() -> None:
    """Replaying the messages through validation, dedup by id and the run merge yields exactly the truth."""
    sim = Simulator(CODEC, seed=3, duplicate_rate=0.05, malformed_rate=0.02)
    seen: set[str] = set()
    accepted: list[dict[str, Any]] = []
    rejected = 0
    for m in sim.messages(3_000):
        payload = CODEC.encode(m.event.to_record()) if m.event else (m.payload or b"")
        result = accept(CODEC, payload)
        if isinstance(result, Rejection):
            rejected += 1
            continue
        if result["event_id"] in seen:
            continue
        seen.add(result["event_id"])
        accepted.append(result)
    rows = {
        (e["src"], e["dst"], e["edge_type"], e["run_id"])
        for state in runs.merge_all(accepted).values()
        for e in runs.edges(state, 0)
        if "#" not in e["src"]  # column edges are checked separately
    }
    assert rejected == sim.truth.malformed
    assert len(seen) == sim.truth.events
    assert rows == sim.truth.edge_rows
