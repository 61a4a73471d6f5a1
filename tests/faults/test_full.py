"""The full fault suite (`make test-faults`, not in `make test`): many runs per fault, each counted against
the simulator's truth; the figures go to benchmarks/results/faults.json (tests/faults/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_support import ready_stack

from faults.harness import (
    Pipeline,
    RunResult,
    StackPipeline,
    fault_settings,
    kill_broker,
    kill_sink,
    kill_worker,
    lose_table,
    refuse_inserts,
    restart_gracefully,
    run_openlineage_scenario,
    run_scenario,
)
from upriver.local.broker import LocalBroker
from upriver.local.stack import LocalStack

pytestmark = [pytest.mark.integration, pytest.mark.faults]

RUNS = 10
EVENTS = 12_000


def _check(result: RunResult, results: list[RunResult]) -> None:
    results.append(result)
    assert result.ok, result.record()


@pytest.mark.parametrize("seed", range(RUNS))
def test_worker_sigkill(kafka_bootstrap: str, tmp_path: Path, fault_results: list[RunResult], seed: int) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path, "fw")
    _check(
        run_scenario("worker-sigkill", settings, kill_worker, seed=100 + seed, events=EVENTS, faults=4), fault_results
    )


@pytest.mark.parametrize("seed", range(RUNS))
def test_worker_sigkill_openlineage(
    kafka_bootstrap: str, tmp_path: Path, fault_results: list[RunResult], seed: int
) -> None:
    """OpenLineage JSON keyed by job on the OpenLineage topic (tests/ol_stream.py), the one worker handling every
    event where it read it, SIGKILLed four times; counted against the spec's edges of the stream."""
    settings = fault_settings(kafka_bootstrap, tmp_path, "fwo")
    result = run_openlineage_scenario("openlineage-worker-sigkill", settings, kill_worker, seed=400 + seed,
                                      runs=2_000, faults=4)  # fmt: skip
    _check(result, fault_results)


@pytest.mark.parametrize("seed", range(RUNS))
def test_sink_sigkill(kafka_bootstrap: str, tmp_path: Path, fault_results: list[RunResult], seed: int) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path, "fs")
    _check(run_scenario("sink-sigkill", settings, kill_sink, seed=200 + seed, events=EVENTS, faults=4), fault_results)


@pytest.mark.parametrize("seed", range(3))
def test_graceful_restarts(kafka_bootstrap: str, tmp_path: Path, fault_results: list[RunResult], seed: int) -> None:
    settings = fault_settings(kafka_bootstrap, tmp_path, "fg")
    result = run_scenario("graceful-restart", settings, restart_gracefully, seed=300 + seed, events=EVENTS, faults=3)
    _check(result, fault_results)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    broker = LocalBroker(tmp_path / "kafka", Path(__file__).resolve().parents[2] / ".cache")
    broker.start()
    yield broker
    broker.stop()


@pytest.mark.parametrize("seed", range(3))
def test_broker_sigkill(own_broker: LocalBroker, tmp_path: Path, fault_results: list[RunResult], seed: int) -> None:
    settings = fault_settings(own_broker.bootstrap_servers, tmp_path, "fb")
    pipe = Pipeline(settings)
    pipe.restart_on_exit = True  # a worker whose output Kafka did not acknowledge stops; supervision restarts it
    result = run_scenario(
        "broker-sigkill", settings, kill_broker(own_broker), seed=400 + seed, events=EVENTS, faults=2, pipeline=pipe
    )
    _check(result, fault_results)


@pytest.fixture
def stack(kafka_bootstrap: str, chdb_url: str, tmp_path: Path) -> Iterator[LocalStack]:
    with ready_stack(kafka_bootstrap, chdb_url, tmp_path / "home", "fc", api_port=-1) as running:
        yield running


@pytest.mark.parametrize("seed", range(2))
def test_clickhouse_refuses_inserts(stack: LocalStack, fault_results: list[RunResult], seed: int) -> None:
    pipe = StackPipeline(stack)
    result = run_scenario(
        "clickhouse-refuses", stack.settings, refuse_inserts, seed=500 + seed, events=EVENTS, faults=2, pipeline=pipe
    )
    _check(result, fault_results)


def test_a_table_goes_away(stack: LocalStack, fault_results: list[RunResult]) -> None:
    pipe = StackPipeline(stack)
    result = run_scenario("table-lost", stack.settings, lose_table, seed=600, events=EVENTS, faults=1, pipeline=pipe)
    _check(result, fault_results)
