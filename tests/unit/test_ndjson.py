"""producers.ndjson: good lines parse, each bad line says why, one bad line never hides the rest."""

from __future__ import annotations

import json
from pathlib import Path

from producers.ndjson import BadLine, read_events, to_json
from schemas.model import ArtifactRef, EventType, JobKind, LineageEvent

EVENT = LineageEvent(
    event_id="3f1c2a9e-8b7d-4c21-9f0e-5a6b7c8d9e01",
    event_time=1_767_225_600_000,
    producer="p",
    event_type=EventType.COMPLETE,
    job_namespace="ns",
    job_name="job",
    job_kind=JobKind.TRAIN,
    run_id="r",
    inputs=(ArtifactRef("DATASET", "wh", "t", facets='{"a":1}'),),
    outputs=(ArtifactRef("MODEL", "reg", "m", "v1"),),
)


def test_round_trip_and_bad_lines(tmp_path: Path) -> None:
    iso = json.loads(to_json(EVENT))
    iso["event_time"] = "2026-01-01T00:00:00Z"
    iso["facets"] = {"nominalTime": {}}
    missing = json.loads(to_json(EVENT))
    del missing["run_id"]
    path = tmp_path / "events.ndjson"
    path.write_text(
        "\n".join(
            [
                to_json(EVENT),
                "{not json",
                json.dumps(missing),
                "",
                json.dumps(iso),
                "[1,2]",
                json.dumps({**iso, "event_type": "FINISHED"}),
            ]
        )
    )
    items = list(read_events(path))
    assert items[0] == EVENT
    bad = [i for i in items if isinstance(i, BadLine)]
    assert [b.line for b in bad] == [2, 3, 6, 7]
    assert "not JSON" in bad[0].reason
    assert "run_id" in bad[1].reason
    assert "FINISHED" in bad[3].reason
    parsed_iso = items[3]
    assert isinstance(parsed_iso, LineageEvent)
    assert parsed_iso.event_time == 1_767_225_600_000
    assert json.loads(parsed_iso.facets) == {"nominalTime": {}}
