"""processors.edges: one typed edge per (input, output) pair, upstream -> downstream."""

from __future__ import annotations

from processors.edges import DERIVED_FROM, derive, edge_type
from schemas.model import ArtifactRef, EventType, JobKind, LineageEvent


def _event(kind: JobKind, inputs: tuple[ArtifactRef, ...], outputs: tuple[ArtifactRef, ...]) -> LineageEvent:
    return LineageEvent(
        event_id="3f1c2a9e-8b7d-4c21-9f0e-5a6b7c8d9e01",
        event_time=1_767_225_600_000,
        producer="p",
        event_type=EventType.COMPLETE,
        job_namespace="pipelines",
        job_name="job",
        job_kind=kind,
        run_id="run-1",
        inputs=inputs,
        outputs=outputs,
    )


def test_training_run_yields_trained_on_edges_from_each_input() -> None:
    ev = _event(
        JobKind.TRAIN,
        (ArtifactRef("FEATURE", "feast", "f1", "d1"), ArtifactRef("DATASET", "wh", "labels")),
        (ArtifactRef("MODEL", "registry", "churn", "v2"),),
    )
    edges = derive(ev.to_record(), derived_at=5)
    assert [(e["src"], e["dst"], e["edge_type"]) for e in edges] == [
        ("feature:feast/f1", "model:registry/churn", "TRAINED_ON"),
        ("dataset:wh/labels", "model:registry/churn", "TRAINED_ON"),
    ]
    first = edges[0]
    assert (first["src_version"], first["dst_version"]) == ("d1", "v2")
    assert (first["run_id"], first["job"], first["event_id"]) == ("run-1", "pipelines/job", ev.event_id)
    assert (first["event_time"], first["derived_at"]) == (ev.event_time, 5)


def test_cross_product_of_inputs_and_outputs() -> None:
    ins = tuple(ArtifactRef("DATASET", "wh", f"in{i}") for i in range(3))
    outs = tuple(ArtifactRef("DATASET", "wh", f"out{i}") for i in range(2))
    edges = derive(_event(JobKind.TRANSFORM, ins, outs).to_record(), 0)
    assert len(edges) == 6
    assert {e["edge_type"] for e in edges} == {DERIVED_FROM}


def test_no_edges_without_both_sides() -> None:
    ref = ArtifactRef("DATASET", "wh", "t")
    assert derive(_event(JobKind.INGEST, (ref,), ()).to_record(), 0) == []
    assert derive(_event(JobKind.INGEST, (), (ref,)).to_record(), 0) == []


def test_artifact_rewritten_in_place_is_not_its_own_upstream() -> None:
    ref = ArtifactRef("DATASET", "wh", "t")
    assert derive(_event(JobKind.TRANSFORM, (ref,), (ref,)).to_record(), 0) == []


def test_edge_type_table() -> None:
    assert edge_type("TRAIN", "MODEL") == "TRAINED_ON"
    assert edge_type("DEPLOY", "DEPLOYMENT") == "DEPLOYED_AS"
    assert edge_type("PREDICT", "PREDICTION") == "PREDICTED_BY"
    assert edge_type("EVALUATE", "EVALUATION") == "EVALUATED_ON"
    assert edge_type("OTHER", "MODEL") == "TRAINED_ON"  # the output kind says enough
    assert edge_type("TRANSFORM", "DATASET") == DERIVED_FROM
