"""The oracle of benchmarks/peers.py (Upriver beside Data.Rentgen): the stream it writes is valid OpenLineage
with UUIDv7 run ids, and its expected answers follow the spec's rule, so an `exact` count there means what it says."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter

from openlineage.client import event_v2 as ev2
from openlineage.client.transport.kafka import KafkaTransport

from benchmarks.peers import make_stream, truth, uuid7
from processors.lineage.validation import problems
from schemas.openlineage import decode, to_record


def test_uuid7_carries_its_millisecond_version_and_variant() -> None:
    ms = 1_796_300_000_123
    u = uuid.UUID(uuid7(ms, random.Random(1)))
    assert u.version == 7
    assert u.variant == uuid.RFC_4122
    assert u.int >> 80 == ms


def test_truth_is_every_dataset_within_depth_hops() -> None:
    a, b, c, d, e = (("ns", x) for x in "abcde")
    down = {a: {b, d}, b: {c}, c: {e, a}}  # a cycle back to a: a is never its own descendant
    assert truth(down, a, 1) == {b, d}
    assert truth(down, a, 2) == {b, c, d}
    assert truth(down, a, 10) == {b, c, d, e}
    assert truth(down, e, 5) == set()


def test_the_stream_is_valid_openlineage_keyed_as_the_kafka_transport_keys_it() -> None:
    stream = make_stream(3, n_jobs=12, n_datasets=20, runs_per_job=2)
    assert len(stream.messages) == 12 * 2 * 2
    kinds: Counter[tuple[str, str]] = Counter()
    for key, value in stream.messages:
        doc = json.loads(value)
        assert key == f"run:{doc['job']['namespace']}/{doc['job']['name']}".encode()
        record = to_record(decode(value))
        assert problems(record, record["event_time"]) == []
        assert uuid.UUID(doc["run"]["runId"]).version == 7
        kinds[(doc["run"]["runId"], doc["eventType"])] += 1
    # every run: one START and one COMPLETE
    assert set(Counter(kind for _, kind in kinds).items()) == {("START", 24), ("COMPLETE", 24)}
    assert all(n == 1 for n in kinds.values())
    # every dataset is read or written, and the edges are what the messages say
    named = {(d["namespace"], d["name"]) for _, v in stream.messages for side in ("inputs", "outputs")
             for d in json.loads(v)[side]}  # fmt: skip
    assert named == set(stream.datasets)


def test_the_keys_are_the_openlineage_python_kafka_transports() -> None:
    # the real client's KafkaTransport decides the key of each event as the benchmark's producer does; its
    # __init__ would open a producer, so the key method is called on an instance built without it
    transport = object.__new__(KafkaTransport)
    for key, value in make_stream(5, n_jobs=6, n_datasets=10, runs_per_job=1).messages:
        doc = json.loads(value)
        event = ev2.RunEvent(eventType=ev2.RunState[doc["eventType"]], eventTime=doc["eventTime"],
                             run=ev2.Run(runId=doc["run"]["runId"]),
                             job=ev2.Job(namespace=doc["job"]["namespace"], name=doc["job"]["name"]))  # fmt: skip
        assert key.decode() == transport._get_message_key(event)
