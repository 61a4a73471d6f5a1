"""processors.lineage.validation: every rule names what is wrong; valid events pass untouched."""

from __future__ import annotations

import dataclasses

import pytest

from processors.lineage.validation import INVALID, UNDECODABLE, Rejection, accept, problems
from schemas.codec import SingleObjectCodec
from schemas.model import ArtifactRef, EventType, JobKind, LineageEvent

CODEC = SingleObjectCodec("lineage_event")
GOOD = LineageEvent(
    event_id="3f1c2a9e-8b7d-4c21-9f0e-5a6b7c8d9e01",
    event_time=1_767_225_600_000,
    producer="https://example.test/p",
    event_type=EventType.COMPLETE,
    job_namespace="pipelines",
    job_name="train",
    job_kind=JobKind.TRAIN,
    run_id="run-1",
    inputs=(ArtifactRef("DATASET", "warehouse", "t"),),
    outputs=(ArtifactRef("MODEL", "registry", "m", "v1"),),
)


def test_valid_event_is_accepted_as_decoded_record() -> None:
    result = accept(CODEC, CODEC.encode(GOOD.to_record()))
    assert not isinstance(result, Rejection)
    assert LineageEvent.from_record(result) == GOOD


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"event_id": "not-a-uuid"}, "event_id 'not-a-uuid' is not a UUID"),
        ({"event_time": 1_767_225_600}, "before 2000-01-01"),
        ({"job_name": ""}, "job_name is empty"),
        ({"job_namespace": " pipelines"}, "white space"),
        ({"run_id": ""}, "run_id is empty"),
        ({"producer": ""}, "producer is empty"),
        ({"inputs": (ArtifactRef("dataset", "w", "t"),)}, "inputs[0].kind 'dataset'"),
        # `$` matched before a trailing newline: accepted, then IdentityError in processors/lineage/runs.py (fuzz)
        ({"inputs": (ArtifactRef("DATASET\n", "w", "t"),)}, "inputs[0].kind 'DATASET\\n'"),
        ({"outputs": (ArtifactRef("MODEL", "", "m"),)}, "outputs[0].namespace is empty"),
        ({"outputs": (ArtifactRef("MODEL", "r", ""),)}, "outputs[0].name is empty"),
    ],
)
def test_invalid_events_are_rejected_with_the_rule_they_break(change: dict[str, object], fragment: str) -> None:
    bad = dataclasses.replace(GOOD, **change)  # type: ignore[arg-type]
    result = accept(CODEC, CODEC.encode(bad.to_record()))
    assert isinstance(result, Rejection)
    assert result.error_kind == INVALID
    assert fragment in result.reason


def test_all_problems_are_reported_at_once() -> None:
    bad = dataclasses.replace(GOOD, job_name="", run_id="")
    assert len(problems(bad.to_record())) == 2


@pytest.mark.parametrize("payload", [b"", b"\x00\x01garbage", b'{"json": true}'])
def test_undecodable_payloads(payload: bytes) -> None:
    result = accept(CODEC, payload)
    assert isinstance(result, Rejection)
    assert result.error_kind == UNDECODABLE
    assert result.reason
