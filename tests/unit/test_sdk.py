"""producers.sdk with the in-memory transport: run lifecycle, nesting, decorator, signals, facets."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from producers.sdk import Emitter, RunContext, artifact, lineage_step, parse_ref
from producers.transports import FlushReport, InMemoryTransport, KafkaTransport
from schemas.model import ArtifactRef, EventType


@pytest.fixture
def emitter() -> Emitter:
    return Emitter.in_memory(namespace="pipelines.test")


def _events(emitter: Emitter) -> list[Any]:
    assert isinstance(emitter.transport, InMemoryTransport)
    return emitter.transport.events


def test_run_emits_start_then_complete_with_io(emitter: Emitter) -> None:
    with emitter.run("train", "TRAIN") as run:
        run.read("dataset:wh/raw@d1")
        run.wrote("model:reg/m@v1")
    start, complete = _events(emitter)
    assert (start.event_type, complete.event_type) == (EventType.START, EventType.COMPLETE)
    assert start.run_id == complete.run_id == run.run_id
    assert complete.inputs == (ArtifactRef("DATASET", "wh", "raw", "d1"),)
    assert complete.outputs == (ArtifactRef("MODEL", "reg", "m", "v1"),)
    assert complete.job_namespace == "pipelines.test" and complete.job_kind.value == "TRAIN"


def test_exception_emits_fail_with_type_and_message_and_propagates(emitter: Emitter) -> None:
    with pytest.raises(ValueError, match="bad rows"), emitter.run("clean"):
        raise ValueError("bad rows")
    fail = _events(emitter)[-1]
    assert fail.event_type is EventType.FAIL
    assert json.loads(fail.facets)["errorMessage"]["message"] == "ValueError: bad rows"


def test_nested_runs_get_the_parent_and_siblings_do_not(emitter: Emitter) -> None:
    with emitter.run("outer") as outer:
        with emitter.run("inner") as inner:
            pass
        with emitter.run("sibling") as sibling:
            pass
    with emitter.run("after") as after:
        pass
    assert inner.parent_run_id == outer.run_id and sibling.parent_run_id == outer.run_id
    assert outer.parent_run_id is None and after.parent_run_id is None


def test_decorator_sync_and_async_with_run_parameter(emitter: Emitter) -> None:
    @lineage_step(emitter, kind="FEATURE", inputs=["dataset:wh/raw"])
    def build(day: str, run: RunContext) -> str:
        run.wrote(f"feature:fs/f@{day}")
        return day

    @lineage_step(emitter, job="embed", kind="EMBED", outputs=["embedding:v/e"])
    async def embed() -> int:
        return 3

    assert build("d1") == "d1"
    assert asyncio.run(embed()) == 3
    runs = emitter.transport.runs()  # type: ignore[attr-defined]
    assert len(runs) == 2
    assert emitter.transport.edges() == {  # type: ignore[attr-defined]
        ("dataset:wh/raw", "feature:fs/f"),
    }  # embed read nothing, so no edge
    names = {e.job_name for e in _events(emitter)}
    assert names == {"test_decorator_sync_and_async_with_run_parameter.<locals>.build", "embed"}


def test_signal_helpers(emitter: Emitter) -> None:
    drift = emitter.drift("feature:fs/f", "psi", 0.3, 0.2)
    assert drift.event_type is EventType.DRIFT and drift.inputs[0].kind == "FEATURE"
    assert json.loads(drift.facets)["drift"] == {"metric": "psi", "value": 0.3, "threshold": 0.2, "drifted": True}
    quality = emitter.quality("dataset:wh/t", "null_rate", 0.5, threshold=0.9)
    assert json.loads(quality.facets)["quality"]["passed"] is False
    dep = emitter.deployed("model:reg/m@v2", "deployment:serving/api")
    assert dep.event_type is EventType.DEPLOY and dep.job_kind.value == "DEPLOY"
    assert (dep.inputs[0].version, dep.outputs[0].name) == ("v2", "api")
    assert emitter.retired("dataset:wh/old").event_type is EventType.RETIRE
    assert len({e.run_id for e in _events(emitter)}) == 4


def test_failed_runs_are_not_lineage_edges(emitter: Emitter) -> None:
    with pytest.raises(RuntimeError), emitter.run("j") as run:
        run.read("dataset:a/x").wrote("dataset:a/y")
        raise RuntimeError("boom")
    assert emitter.transport.edges() == set()  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["dataset", "dataset:ns", "model:/x", "a b:ns/x", ":ns/x", "dataset:ns/x@v1@v2"])
def test_bad_reference_strings_are_refused_clearly(bad: str) -> None:
    with pytest.raises(ValueError, match="kind:namespace/name"):
        parse_ref(bad)


def test_references_read_namespaces_that_hold_slashes_and_colons() -> None:
    ref = parse_ref("dataset:s3://landing/core%2Fusers@v3")
    assert (ref.kind, ref.namespace, ref.name, ref.version) == ("DATASET", "s3://landing", "core/users", "v3")
    ref = parse_ref("dataset:postgres://db:5432/public.orders")
    assert (ref.namespace, ref.name, ref.version) == ("postgres://db:5432", "public.orders", None)
    assert parse_ref(ref.node_id) == ref


def test_facets_have_the_documented_shapes() -> None:
    ref = artifact(
        "dataset", "wh", "t", "v1",
        schema={"id": "INT", "email": "STRING"}, owner="team:growth", tags={"tier": "gold"}, pii=["email"],
        column_lineage={"id": ["dataset:wh/raw#user_id"]}, append=True,
    )  # fmt: skip
    assert ref.kind == "DATASET"
    facets = json.loads(ref.facets or "{}")
    assert facets["schema"]["fields"] == [{"name": "id", "type": "INT"}, {"name": "email", "type": "STRING"}]
    assert facets["ownership"]["owners"][0] == {"name": "team:growth", "type": "TEAM"}
    assert {"key": "PII", "value": "true", "field": "email"} in facets["tags"]["tags"]
    assert facets["columnLineage"]["fields"]["id"]["inputFields"][0] == {
        "namespace": "wh", "name": "raw", "field": "user_id", "transformations": [{"type": "DIRECT"}]
    }  # fmt: skip
    assert facets["writeMode"] == {"mode": "APPEND"}
    with pytest.raises(ValueError, match="needs a field"):
        artifact("dataset", "wh", "t", column_lineage={"c": ["dataset:wh/raw"]})


def test_docs_example_runs() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None
    scope: dict[str, Any] = {}
    exec(compile(block.group(1), "docs/sdk.md", "exec"), scope)
    emitter = scope["emitter"]
    kinds = [e.event_type.value for e in emitter.transport.events]
    assert kinds.count("START") == kinds.count("COMPLETE") == 2
    assert {"DEPLOY", "DRIFT"} <= set(kinds)


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed


def _too_large_total() -> float:
    return REGISTRY.get_sample_value("upriver_sdk_events_dropped_total", {"reason": "too_large"}) or 0.0


def test_an_event_kafka_refuses_never_raises_and_is_reported_failed_with_its_size(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # librdkafka refuses an event over message.max.bytes (1 MB by default) in produce(), before any
    # broker is involved: no broker is needed to see it, and nothing else is queued.
    blob = "x" * 1_100_000
    emitter = Emitter(KafkaTransport(_closed_port(), "t", message_timeout_ms=500))
    before = _too_large_total()
    reached_the_end = False
    with caplog.at_level(logging.WARNING, logger="producers.transports"), emitter.run("dump", facets={"blob": blob}):
        reached_the_end = True  # START (over 1 MB) did not raise into the block
    assert reached_the_end
    report = emitter.flush(timeout=1)
    # START and COMPLETE both carry the run's facets, so both are over the limit.
    assert (report.sent, report.delivered, report.failed, report.dropped, report.pending) == (2, 0, 2, 0, 0)
    assert not report.ok and "all delivered" not in str(report)
    assert len(report.lost) == 2 and len({lost.event_id for lost in report.lost}) == 2
    for lost in report.lost:
        assert lost.size is not None and lost.size > len(blob)
        assert f"too large: {lost.size} bytes, over message.max.bytes = 1000000" in lost.reason
        assert lost.reason in str(report)
    assert _too_large_total() - before == 2
    logged = [r.getMessage() for r in caplog.records if r.name == "producers.transports"]
    for lost in report.lost:  # logged once each, with the event's id and size
        assert len([m for m in logged if lost.event_id in m and f"({lost.size} bytes)" in m]) == 1


def test_flush_report_text_matches_its_counts() -> None:
    assert str(FlushReport(3, 3, 0, 0, 0)).startswith("all delivered: 3 sent, 3 delivered")
    lossy = FlushReport(5, 2, 1, 1, 1, reasons=(("too large: 2000000 bytes", 1), ("local buffer full", 1)))
    text = str(lossy)
    assert not lossy.ok and "all delivered" not in text
    assert text.startswith("INCOMPLETE, 3 of 5 not delivered: 5 sent, 2 delivered, 1 failed, 1 dropped, 1 still")
    assert "1 x too large: 2000000 bytes" in text and "1 x local buffer full" in text
