"""upriver/deploy/lag.py StallClock: how long a (group, topic) has made no progress while messages wait; and the
monitor's wiring of it into the gauges (through the documented `measure` hook, with a given clock)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace

import pytest
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from upriver.deploy.kafka import TopicOffsets
from upriver.deploy.lag import STALL_WARN_AFTER_S, LagMonitor, StallClock
from upriver.settings import Settings

KEY = ("upriver-sink", "upriver.edges.v1")


def test_lag_0_is_never_stalled() -> None:
    clock = StallClock()
    assert [clock.update(KEY, 0, 500, t) for t in (0.0, 5.0, 600.0)] == [0.0, 0.0, 0.0]


def test_offsets_moving_with_lag_is_not_stalled() -> None:
    clock = StallClock()
    assert [clock.update(KEY, 100, 500 + 10 * i, 5.0 * i) for i in range(50)] == [0.0] * 50


def test_offsets_frozen_with_lag_count_the_seconds_since_they_last_moved() -> None:
    clock = StallClock()
    assert clock.update(KEY, 100, 500, 0.0) == 0.0
    assert clock.update(KEY, 100, 510, 5.0) == 0.0  # moved: the clock starts here
    assert clock.update(KEY, 120, 510, 10.0) == 5.0
    assert clock.update(KEY, 150, 510, 185.0) == 180.0
    assert clock.update(KEY, 150, 520, 190.0) == 0.0  # moved again
    assert clock.update(KEY, 150, 520, 200.0) == 10.0
    assert clock.update(KEY, 0, 520, 205.0) == 0.0  # drained: lag 0
    assert clock.update(KEY, 30, 520, 210.0) == 0.0  # new messages wait: counted from here
    assert clock.update(KEY, 30, 520, 250.0) == 40.0


def test_a_group_that_never_committed_is_stalled_from_the_first_measurement() -> None:
    clock = StallClock()
    assert clock.update(KEY, 1000, 0, 100.0) == 0.0
    assert clock.update(KEY, 1000, 0, 105.0) == 5.0
    assert clock.update(KEY, 1200, 0, 400.0) == 300.0


def test_keys_are_independent() -> None:
    clock = StallClock()
    other = ("upriver-processor", "upriver.events.v1")
    clock.update(KEY, 10, 0, 0.0)
    clock.update(other, 10, 0, 0.0)
    assert clock.update(KEY, 10, 0, 60.0) == 60.0
    assert clock.update(other, 10, 5, 60.0) == 0.0


def test_the_monitor_exports_the_stall_and_logs_it_once(caplog: pytest.LogCaptureFixture) -> None:
    group, topic = f"g-{uuid.uuid4().hex[:8]}", "t"
    state = {"now": 0.0, "committed": 7}

    def fixed(admin: AdminClient, g: str, topics: Sequence[str]) -> dict[str, TopicOffsets]:
        return {topic: TopicOffsets(lag=40, committed=int(state["committed"]))}

    # nothing listens there: the admin client is never used through the hook
    monitor = LagMonitor(
        {"bootstrap.servers": "127.0.0.1:9"}, {group: [topic]}, measure=fixed, clock=lambda: state["now"]
    )

    def sample(name: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"group": group, "topic": topic})

    caplog.set_level(logging.INFO, logger="upriver.deploy.lag")
    for now in (0.0, 60.0, STALL_WARN_AFTER_S + 10, STALL_WARN_AFTER_S + 20):
        state["now"] = now
        monitor.poll_once()
    assert sample("upriver_consumer_stalled_seconds") == STALL_WARN_AFTER_S + 20
    assert sample("upriver_consumer_lag") == 40
    assert sample("upriver_consumer_committed_offsets") == 7
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"consumer group {group} makes no progress on {topic}" in warnings[0], warnings

    state["committed"], state["now"] = 8, 300.0
    monitor.poll_once()
    assert sample("upriver_consumer_stalled_seconds") == 0
    assert any("makes progress on t again" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_lag_now_returns_every_group_and_topic_measured_and_publishes_nothing() -> None:
    run = uuid.uuid4().hex[:8]
    groups = {f"g1-{run}": ["a", "b"], f"g22-{run}": ["b"]}

    expected = {(f"g1-{run}", "a"): 3, (f"g1-{run}", "b"): 0, (f"g22-{run}", "b"): 41}

    def by_name(admin: AdminClient, g: str, topics: Sequence[str]) -> dict[str, TopicOffsets]:
        return {t: TopicOffsets(lag=expected[(g, t)], committed=0) for t in topics}

    monitor = LagMonitor({"bootstrap.servers": "127.0.0.1:9"}, groups, measure=by_name)
    assert monitor.lag_now() == expected
    for g, t in expected:
        assert REGISTRY.get_sample_value("upriver_consumer_lag", {"group": g, "topic": t}) is None


@pytest.mark.parametrize("health", [True, False])
def test_the_processor_group_is_measured_on_the_runs_topic_only_when_its_health_agent_reads_it(health: bool) -> None:
    settings = replace(Settings.from_env(), kafka_bootstrap="127.0.0.1:9", health_enabled=health)
    asked: dict[str, list[str]] = {}

    def record(admin: AdminClient, g: str, topics: Sequence[str]) -> dict[str, TopicOffsets]:
        asked[g] = list(topics)
        return {}

    monitor = LagMonitor.for_pipeline(settings)
    monitor.measure = record
    monitor.lag_now()
    t = settings.topics
    assert (t.runs in asked[settings.processor_id]) is health
    assert t.events in asked[settings.processor_id]
    assert {t.edges, t.runs} <= set(asked[settings.sink_group])  # the sink always loads run records
