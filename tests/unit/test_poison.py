"""Inputs that crashed an agent or vanished (issue 13, items 2 and 3): each is refused with a reason, or
read safely, and a failure handling one message is told apart from the infrastructure's."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from processors.lineage import runs
from processors.lineage.handling import OutputTooLargeError, OutputUnavailableError, poison
from processors.lineage.validation import problems
from processors.worker.publisher import Publisher
from schemas.openlineage import MAX_DEPTH, OpenLineageError, decode, to_record

NOW = 1_790_000_000_000


def native(**changes: Any) -> dict[str, Any]:
    record = {"event_id": str(uuid.uuid4()), "event_time": NOW, "producer": "p", "job_namespace": "ns",
              "job_name": "j", "run_id": "r", "inputs": [], "outputs": []}  # fmt: skip
    return {**record, **changes}


@pytest.mark.parametrize("t", [2**62, 32_503_680_000_000])  # 2^62 ms; the year 3000
def test_absurd_event_times_are_refused(t: int) -> None:
    assert any("after 2100-01-01" in p for p in problems(native(event_time=t)))


def test_event_times_far_ahead_of_the_receiver_are_refused() -> None:
    assert any("ahead of the receiver's clock" in p for p in problems(native(event_time=NOW + 2 * 86_400_000), NOW))
    assert problems(native(event_time=NOW + 3_600_000), NOW) == []  # an hour of clock skew is fine


def _ol(**changes: Any) -> dict[str, Any]:
    doc = {"eventType": "COMPLETE", "eventTime": "2026-06-01T00:00:00Z", "producer": "p",
           "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "ns", "name": "j"}}  # fmt: skip
    return {**doc, **changes}


def test_json_nested_too_deep_is_refused_with_the_limit() -> None:
    for depth in (MAX_DEPTH + 1, 100_000):
        deep = "[" * depth + "]" * depth
        payload = json.dumps(_ol()).replace('"producer": "p"', f'"producer": "p", "x": {deep}').encode()
        with pytest.raises(OpenLineageError, match=f"nested deeper than {MAX_DEPTH}"):
            decode(payload)
    assert decode(json.dumps(_ol(x=[[[1]]])).encode())["x"] == [[[1]]]


def test_the_depth_limit_is_exact_whether_or_not_the_bracket_count_spares_the_walk() -> None:
    # MAX_DEPTH brackets in all: the count alone decides; one more and the walk must find the depth.
    assert decode(("[" * MAX_DEPTH + "]" * MAX_DEPTH).encode()) is not None
    with pytest.raises(OpenLineageError, match=f"nested deeper than {MAX_DEPTH}"):
        decode(("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode())
    # many brackets, shallow: inside strings, or side by side
    assert decode(json.dumps(_ol(x="[{" * 500, y=[[1]] * 100)).encode())["x"] == "[{" * 500


def test_odd_types_where_strings_belong_do_not_crash_the_mapping() -> None:
    assert to_record(_ol(eventType={"a": 1}))["event_type"] == "OTHER"
    column = {"columnLineage": {"fields": {"c": {"inputFields": [{"namespace": {"x": 1}, "name": "t", "field": "f"}]}}}}
    rec = to_record(_ol(inputs=[{"namespace": "ns", "name": "t"}], outputs=[{"namespace": "ns", "name": "o",
                                                                          "facets": column}]))  # fmt: skip
    assert rec["outputs"][0]["name"] == "o"
    assert [e for e in runs.edges(runs.merge(None, rec)[0], 0) if e["edge_type"].startswith("COLUMN")] == []


def test_absurdly_deep_facets_read_as_absent() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert runs.facet('{"columnLineage": ' + deep + "}", "columnLineage") is None


def test_a_message_is_blamed_only_for_its_own_failures() -> None:
    assert poison(RecursionError("deep"))
    assert poison(TypeError("unhashable type: 'dict'"))
    assert poison(OutputTooLargeError("upriver.runs.v1: Message size too large"))
    assert not poison(OutputUnavailableError("upriver.runs.v1: Local: Broker transport failure"))


def test_the_publisher_says_which_refusal_is_the_messages_fault() -> None:
    """librdkafka's own MSG_SIZE_TOO_LARGE (a message over message.max.bytes, raised by produce() with no
    broker needed) becomes OutputTooLargeError, which `poison` blames on the message."""
    publisher = Publisher({"bootstrap.servers": "127.0.0.1:1", "message.max.bytes": 10_000})
    with pytest.raises(OutputTooLargeError) as err:
        publisher.publish("upriver.runs.v1", b"k", b"x" * 20_000)
    assert "upriver.runs.v1" in str(err.value)
    assert isinstance(err.value.__cause__, KafkaException)
    assert err.value.__cause__.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert poison(err.value)


def test_http_batches_nested_too_deep_are_refused_not_crashed() -> None:
    from schemas.codec import make_codec
    from upriver.http.ingest import IngestError, OpenLineageIngest

    ingest = OpenLineageIngest({"bootstrap.servers": "127.0.0.1:9"}, "unused", make_codec("lineage_event"))
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(IngestError, match=f"nested deeper than {MAX_DEPTH}") as err:
        ingest.batch(f"[{deep}]".encode())
    assert err.value.status == 400
    with pytest.raises(IngestError) as one:
        ingest.one(deep.encode())
    assert one.value.status == 400
