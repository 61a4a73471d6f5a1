"""The OpenLineage compatibility tests (consumer scenarios) through the real stack, over both ingest paths:
every scenario's events POSTed to the HTTP endpoint of one stack and produced to the OpenLineage Kafka
topic of another, then each scenario's expected.json checked through the HTTP API of each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from compat_support import NAMES, expected_state, scenario_events
from confluent_kafka import Producer
from ol_check import Http, converged
from stack_support import isolated_settings

from upriver.local.stack import LocalStack, free_port

pytestmark = pytest.mark.integration


def _read(stack: LocalStack) -> Http:
    assert stack.api is not None
    return Http(stack.api.url, TOKEN)


TOKEN = "compat-token"


def _stack(kafka_bootstrap: str, chdb_url: str, home: Any, name: str) -> LocalStack:
    settings = isolated_settings(kafka_bootstrap, chdb_url, home, name, api_token=TOKEN, health_enabled=False)
    return LocalStack(settings, api_port=free_port())


@pytest.fixture(scope="module")
def http_stack(kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with _stack(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("compat-http"), "compat_http") as s:
        s.wait_worker_ready()
        for name in NAMES:
            _read(s).send(scenario_events(name))
        yield s


@pytest.fixture(scope="module")
def kafka_stack(kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with _stack(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("compat-kafka"), "compat_kafka") as s:
        s.wait_worker_ready()
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
        for name in NAMES:
            for event in scenario_events(name):
                # the openlineage-python Kafka transport's key: the run's job (shared/notes/real-producers.md)
                key = f"run:{event['job']['namespace']}/{event['job']['name']}".encode()
                producer.produce(s.settings.topics.openlineage, value=json.dumps(event).encode(), key=key)
        assert producer.flush(30) == 0
        yield s


@pytest.mark.parametrize("path", ["http", "kafka"])
@pytest.mark.parametrize("name", NAMES)
def test_scenario_through_the_stack(name: str, path: str, request: pytest.FixtureRequest) -> None:
    stack: LocalStack = request.getfixturevalue(f"{path}_stack")
    want = expected_state(name)
    assert converged(_read(stack), want) == []
