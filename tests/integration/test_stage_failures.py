"""A stage of the local stack that dies is reported, not hidden (issue 13, item 5): the sink thread on a
permanent ClickHouse error, the worker child killed, the lag monitor on a permanent admin API failure each
turn /healthz into 503 naming the stage and its reason, set `upriver_stage_up{stage}` to 0 and log once
at ERROR; `upriver up` (the real CLI) exits non-zero with the reason when its sink dies."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY
from stack_support import isolated_settings, ready_stack, wait_until

from upriver.deploy.kafka import measure
from upriver.local.stack import LocalStack, free_port
from upriver.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(kafka_bootstrap: str, chdb_url: str, tmp_path: Path) -> Iterator[LocalStack]:
    with ready_stack(kafka_bootstrap, chdb_url, tmp_path / "home", "stagefail", health_enabled=False) as s:
        yield s


def healthz(stack: LocalStack) -> tuple[int, dict[str, Any]]:
    assert stack.api is not None
    try:
        with urllib.request.urlopen(f"{stack.api.url}/healthz", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def stage_up(stack: LocalStack, stage: str) -> float:
    """`upriver_stage_up{stage}` as the API's /metrics exports it."""
    assert stack.api is not None
    with urllib.request.urlopen(f"{stack.api.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(f'upriver_stage_up{{stage="{stage}"}} '):
            return float(line.rpartition(" ")[2])
    raise AssertionError(f"upriver_stage_up{{stage={stage!r}}} is not exported:\n{text}")


def unhealthy(stack: LocalStack, timeout: float = 60.0) -> dict[str, Any]:
    """The 503 /healthz body, once the stack reports a dead stage."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = healthz(stack)
        if status != 200:
            assert status == 503, (status, body)
            return body
        time.sleep(0.25)
    raise AssertionError(f"/healthz still answers 200 after {timeout}s: {healthz(stack)}")


def send_events(settings: Settings, n: int = 3) -> None:
    """OpenLineage COMPLETE events (each yields a run record and an edge) on the stack's ingest topic."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    tag = uuid.uuid4().hex[:8]
    for i in range(n):
        run = str(uuid.uuid4())
        event = {
            "eventType": "COMPLETE", "eventTime": f"2026-06-01T00:00:{i % 60:02d}Z", "producer": "https://example.com/p",
            "run": {"runId": run}, "job": {"namespace": "stagefail", "name": f"job-{tag}-{i}"},
            "inputs": [{"namespace": "wh", "name": f"src-{tag}-{i}"}],
            "outputs": [{"namespace": "wh", "name": f"dst-{tag}-{i}"}],
        }  # fmt: skip
        producer.produce(settings.topics.openlineage, value=json.dumps(event).encode(), key=run.encode())
    assert producer.flush(30) == 0


def error_lines(caplog: pytest.LogCaptureFixture, stage: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.ERROR and r.getMessage().startswith(f"stage {stage} stopped:")]  # fmt: skip


def test_a_permanent_insert_error_stops_the_sink_and_healthz_names_it(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="upriver.local.stack")
    assert healthz(stack)[0] == 200
    assert stack.storage is not None
    db = stack.storage.database
    # First a working sink: it has read the stored offsets of every edges partition it was given.
    send_events(stack.settings, 40)
    stored = lambda: int(stack.storage.read_client.command(f"SELECT count() FROM `{db}`.edges"))  # noqa: E731
    wait_for(lambda: stored() >= 40, "the first edges to be stored", timeout=90)
    # Then an operator renames the table the sink writes to (a botched manual migration): the next
    # insert into edges fails with UNKNOWN_TABLE, which no retry can fix.
    stack.storage.write_client.command(f"RENAME TABLE `{db}`.edges TO `{db}`.edges_moved")
    send_events(stack.settings, 40)

    body = unhealthy(stack)
    assert body["status"] == "unhealthy"
    assert body["stages"] == {"worker": "up", "sink": "down", "lag": "up"}, body
    [failed] = body["failed"]
    assert failed["stage"] == "sink"
    assert failed["reason"].startswith("insert on table edges failed permanently, the sink stopped"), failed
    assert "edges" in failed["reason"] and "UNKNOWN_TABLE" in failed["reason"], failed
    assert failed["log"] == "this process's log"
    assert stage_up(stack, "sink") == 0 and stage_up(stack, "worker") == 1
    assert [f.stage for f in stack.failures()] == ["sink"]
    time.sleep(1.5)  # a few supervisor rounds and /healthz calls later: still one ERROR line
    healthz(stack)
    assert len(error_lines(caplog, "sink")) == 1, caplog.records
    assert "UNKNOWN_TABLE" in error_lines(caplog, "sink")[0]
    # the sink committed nothing past what it stored: the second round of edges is still waiting for it
    admin = AdminClient({"bootstrap.servers": stack.settings.kafka_bootstrap, "log_level": 3})
    edges = stack.settings.topics.edges
    assert measure(admin, stack.settings.sink_group, [edges])[edges] > 0


def test_a_killed_worker_is_named_with_its_exit_status(stack: LocalStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="upriver.local.stack")
    assert stack.worker is not None
    stack.worker.kill()  # SIGKILL from outside: not stop_worker, the intended stop

    body = unhealthy(stack)
    [failed] = body["failed"]
    assert failed["stage"] == "worker"
    assert "killed by SIGKILL (exit status -9)" in failed["reason"], failed
    assert failed["log"] == str(stack.log_dir / "worker.log")
    assert body["stages"]["worker"] == "down" and body["stages"]["sink"] == "up"
    assert stage_up(stack, "worker") == 0
    assert len(error_lines(caplog, "worker")) == 1


def test_a_healthy_stack_says_so_and_stopping_a_stage_on_purpose_is_not_a_failure(stack: LocalStack) -> None:
    assert healthz(stack) == (200, {"status": "ok", "stages": {"worker": "up", "sink": "up", "lag": "up"}})
    assert stage_up(stack, "sink") == stage_up(stack, "worker") == stage_up(stack, "lag") == 1
    stack.stop_worker()
    time.sleep(1.5)  # three supervisor rounds
    assert stack.failures() == []
    assert healthz(stack)[0] == 200


def test_the_lag_monitor_keeps_going_on_transient_errors_and_stops_on_a_permanent_one(stack: LocalStack) -> None:
    lag = stack.lag
    assert lag is not None

    # The documented hook (LagMonitor.measure): a plaintext test broker cannot refuse credentials or ACLs.
    def broker_away(admin: AdminClient, group: str, topics: Sequence[str]) -> dict[str, int]:
        raise TimeoutError("the broker does not answer")

    def not_authorized(admin: AdminClient, group: str, topics: Sequence[str]) -> dict[str, int]:
        raise KafkaException(
            KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED, f"Not authorized to access group {group}")
        )

    lag.measure = broker_away
    wait_for(lambda: REGISTRY.get_sample_value("upriver_consumer_lag_errors") == 1, "the monitor to see the failure")
    time.sleep(6)  # another round: still running, still healthy
    assert lag.alive() and healthz(stack)[0] == 200

    lag.measure = not_authorized
    body = unhealthy(stack, timeout=30)
    [failed] = body["failed"]
    assert failed["stage"] == "lag"
    assert "GROUP_AUTHORIZATION_FAILED" in failed["reason"] and "Not authorized" in failed["reason"], failed
    assert stage_up(stack, "lag") == 0 and stage_up(stack, "sink") == 1


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    wait_until(check, timeout, what)


# -- `upriver up`, the real CLI ---------------------------------------------------------------------
_BREAK_EDGES = """
import sys
from sinks.clickhouse import connect
from sinks.migrations import apply_migrations
client = connect(sys.argv[1])
apply_migrations(client, sys.argv[2])
client.command(f"RENAME TABLE `{sys.argv[2]}`.edges TO `{sys.argv[2]}`.edges_moved")
"""


def test_upriver_up_exits_non_zero_with_the_reason_when_its_sink_dies(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Its own chDB directory (one process per directory): migrated, then its edges table renamed away,
    # by a helper process before `upriver up` opens it; migrations do not re-create an applied table.
    chdb = f"chdb://{(tmp_path / 'chdb').resolve()}"
    settings = isolated_settings(kafka_bootstrap, chdb, tmp_path / "home", "upfail", health_enabled=False)
    settings = replace(settings, api_port=free_port(), metrics_port=free_port())
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", _BREAK_EDGES, chdb, settings.clickhouse_database], env=env, check=True,
                   cwd=ROOT, timeout=120)  # fmt: skip
    up = subprocess.Popen([sys.executable, "-m", "upriver", "up"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        state = tmp_path / "home" / "stack.json"  # written once the stack started
        wait_for(lambda: state.exists() or up.poll() is not None, "upriver up to start", timeout=120)
        assert up.poll() is None, up.communicate()
        send_events(settings)
        out, err = up.communicate(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
    assert up.returncode == 1, (out, err)
    assert "upriver up: stage sink stopped:" in err and "UNKNOWN_TABLE" in err, err
    assert "ERROR upriver.local.stack: stage sink stopped:" in err, err  # the log line, once
    assert err.count("ERROR upriver.local.stack: stage sink stopped:") == 1, err
    assert "stopping..." in out
