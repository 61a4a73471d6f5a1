"""The quick part of the fault suite (in `make test`): one workload with the worker SIGKILLed three times,
one with the sink SIGKILLed three times, each counted against the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from faults.harness import (
    TwoWorkerPipeline,
    fault_settings,
    kill_sink,
    kill_worker,
    run_openlineage_scenario,
    run_scenario,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name,fault", [("worker-sigkill", kill_worker), ("sink-sigkill", kill_sink)])
def test_killed_processes_lose_nothing(kafka_bootstrap: str, tmp_path: Path, name: str, fault: object) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path, "fq")
    result = run_scenario(name, settings, fault, seed=7, events=6_000)  # type: ignore[arg-type]
    assert result.ok, result.record()
    assert result.events == 6_000 and result.malformed > 0


def test_a_killed_worker_loses_no_openlineage_edges(kafka_bootstrap: str, tmp_path: Path) -> None:
    """OpenLineage JSON keyed by job on the OpenLineage topic (a run's events not on its run id's partition), the
    worker SIGKILLed three times: one worker owns every partition, so it handles every event where it read it.
    Counted against the spec's edges of the stream."""
    settings = fault_settings(kafka_bootstrap, tmp_path, "fo")
    result = run_openlineage_scenario("openlineage-worker-sigkill", settings, kill_worker, seed=11, runs=1_200)
    assert result.ok, result.record()
    assert result.events > 2_400 and result.malformed > 0


def test_two_workers_split_openlineage_runs_exactly(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The same stream with two workers in the group, no faults: each handles in place the runs whose events-topic
    partition it owns and sends the others on to the events topic; the store holds the spec's edges exactly.
    The group settles with both members before the stream starts: a rebalance while partitions were never
    committed (a member joining, or killed) can leave them uncommitted, a known defect (docs/operations.md)."""
    settings = fault_settings(kafka_bootstrap, tmp_path, "ft")
    pipe = TwoWorkerPipeline(settings, settle=True)
    result = run_openlineage_scenario("openlineage-two-workers", settings, kill_worker, seed=12, runs=1_200,
                                      faults=0, pipeline=pipe)  # fmt: skip
    assert result.ok, result.record()
    assert result.events > 2_400 and result.malformed > 0
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "probe", "log_level": 3})
    try:
        ends = [consumer.get_watermark_offsets(TopicPartition(settings.topics.events, p), timeout=10)[1]
                for p in range(settings.topics.partitions)]  # fmt: skip
    finally:
        consumer.close()
    assert 0 < sum(ends) < result.events, ends  # some events were sent on, the others handled where read
