"""A message whose handling fails goes to the dead-letter topic with its reason and the agent goes on,
through the real stack (issue 13, item 2): three OpenLineage events of one run, each under the stack's message
limit, whose merged run record is over it (the worker cannot publish it), then a good event in the same batch."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from stack_support import ready_stack

from schemas.identity import node_id
from schemas.openlineage import MAX_MESSAGE_BYTES
from upriver.local.stack import LocalStack
from upriver.readside.stats import PipelineStats

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with ready_stack(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("poison"), "poison", health_enabled=False) as s:
        yield s


def _event(run: str, etype: str, second: int, ins: list[str], outs: list[Any]) -> dict[str, Any]:
    return {
        "eventType": etype, "eventTime": f"2026-06-01T00:00:{second:02d}Z", "producer": "https://example.com/p",
        "run": {"runId": run}, "job": {"namespace": "poison", "name": f"job-{run[:8]}"},
        "inputs": [{"namespace": "wh", "name": n} for n in ins], "outputs": outs,
    }  # fmt: skip


def test_an_output_over_kafkas_limit_is_dead_lettered_and_the_batch_goes_on(stack: LocalStack) -> None:
    big, good = str(uuid.uuid4()), str(uuid.uuid4())
    blob = {"doc": {"description": "x" * (MAX_MESSAGE_BYTES // 3 + 10_000)}}  # ~2.8 MB a dataset: three in one run
    events = [
        _event(big, "START", 1, ["src"], [{"namespace": "wh", "name": "a", "facets": blob}]),
        _event(big, "RUNNING", 2, ["src"], [{"namespace": "wh", "name": "b", "facets": blob}]),
        _event(big, "COMPLETE", 3, ["src"], [{"namespace": "wh", "name": "c", "facets": blob}]),
        _event(good, "COMPLETE", 4, ["src"], [{"namespace": "wh", "name": "good"}]),
    ]
    producer = Producer({"bootstrap.servers": stack.settings.kafka_bootstrap, "enable.idempotence": True,
                         "message.max.bytes": MAX_MESSAGE_BYTES})  # fmt: skip
    for event in events:  # one partition key: the four arrive in order, in one batch or consecutive ones
        producer.produce(stack.settings.topics.openlineage, value=json.dumps(event).encode(), key=b"poison")
    assert producer.flush(30) == 0
    assert stack.storage is not None
    stats = PipelineStats(stack.storage.read_client, stack.storage.database)
    want = (node_id("DATASET", "wh", "src"), node_id("DATASET", "wh", "good"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not ({e[:2] for e in stats.edge_rows()} >= {want} and stats.dead_letters()):
        time.sleep(0.5)
    reasons = stats.dead_letter_reasons()
    assert [(kind, count) for kind, _, count in reasons] == [("PROCESSING", 1)], reasons
    assert "MSG_SIZE_TOO_LARGE" in reasons[0][1] or "too large" in reasons[0][1].lower(), reasons
    assert want in {e[:2] for e in stats.edge_rows()}  # the good event after it was handled
    assert stack.worker is not None and stack.worker.poll() is None  # the worker is alive
