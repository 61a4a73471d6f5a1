"""`upriver emit` against a broker that is down when it starts: it waits `--wait` seconds for Kafka, then
reports how many events were delivered, how many were not and librdkafka's reason, exiting non-zero.

These tests start and stop their OWN broker (upriver.local.broker.LocalBroker in a tmp dir), never the session's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from producers.emitter import new_event
from producers.ndjson import to_json
from schemas.codec import SingleObjectCodec
from schemas.model import ArtifactRef, LineageEvent
from upriver.local.broker import LocalBroker, ensure_jars

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CODEC = SingleObjectCodec("lineage_event")
EVENTS = 5
OUTAGE_S = 10.0
# Past every 30 s default on the way: the old fixed 30 s flush, and librdkafka's
# topic.metadata.propagation.max.ms, after which a topic the returning broker has not created yet fails
# every queued event with UNKNOWN_TOPIC_OR_PART.
LONG_OUTAGE_S = 40.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    cache = Path(os.environ.get("UPRIVER_CACHE_DIR", ROOT / ".cache"))
    ensure_jars(cache)
    own = LocalBroker(tmp_path_factory.mktemp("emit-faults-kafka"), cache)
    own.start()
    yield own
    own.stop()


def _events_file(tmp_path: Path) -> tuple[Path, list[LineageEvent]]:
    events = [
        new_event("pipelines.faults", f"job-{i}", "COMPLETE", run_id=f"run-{uuid.uuid4()}",
                  inputs=[ArtifactRef("DATASET", "wh", f"raw_{i}")], outputs=[ArtifactRef("MODEL", "reg", f"m_{i}")])
        for i in range(EVENTS)
    ]  # fmt: skip
    path = tmp_path / "events.ndjson"
    path.write_text("".join(to_json(e) + "\n" for e in events))
    return path, events


def _emit(bootstrap: str, topic: str, path: Path, home: Path, wait: float) -> subprocess.Popen[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "UPRIVER_EVENTS_TOPIC": topic,
           "UPRIVER_HOME": str(home)}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "upriver", "emit", str(path), "--wait", str(wait)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _read_topic(bootstrap: str, topic: str, expect: int, seconds: float) -> list[LineageEvent]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest"})  # fmt: skip
    consumer.subscribe([topic])
    out: list[LineageEvent] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(out) < expect:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            out.append(LineageEvent.from_record(CODEC.decode(msg.value())))
    consumer.close()
    return out


@pytest.mark.parametrize("outage", [OUTAGE_S, pytest.param(LONG_OUTAGE_S, marks=pytest.mark.slow)])
def test_emit_started_while_kafka_is_down_delivers_everything_once_it_is_back(
    broker: LocalBroker, tmp_path: Path, outage: float
) -> None:
    path, events = _events_file(tmp_path)
    topic = f"emit-outage-{uuid.uuid4().hex}"
    bootstrap = broker.bootstrap_servers
    broker.stop()
    wait = outage + 60  # room for the broker's own restart on 2 busy cores
    proc = _emit(bootstrap, topic, path, tmp_path, wait=wait)
    time.sleep(outage)
    assert proc.poll() is None, "emit gave up during the outage, although its wait is longer"
    assert broker.start() == bootstrap  # the same port: the producer's bootstrap address is valid again
    out, err = proc.communicate(timeout=wait + 30)
    assert proc.returncode == 0, (out, err)
    assert f"delivered {EVENTS} of {EVENTS} event(s) to {topic}" in out
    assert "NOT DELIVERED" not in err
    got = _read_topic(bootstrap, topic, EVENTS, seconds=30)
    assert sorted(e.event_id for e in got) == sorted(e.event_id for e in events)


@pytest.mark.slow
def test_emit_whose_wait_is_shorter_than_the_outage_says_what_was_lost_and_why(
    broker: LocalBroker, tmp_path: Path
) -> None:
    path, _ = _events_file(tmp_path)
    topic = f"emit-lost-{uuid.uuid4().hex}"
    bootstrap = broker.bootstrap_servers
    broker.stop()
    wait = 3.0
    started = time.monotonic()
    proc = _emit(bootstrap, topic, path, tmp_path, wait=wait)
    out, err = proc.communicate(timeout=OUTAGE_S + 30)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, (out, err)
    assert elapsed < wait + 15, f"emit took {elapsed:.1f}s; --wait {wait} should bound it"
    assert f"delivered 0 of {EVENTS} event(s) to {topic}" in out
    assert f"NOT DELIVERED: {EVENTS} of {EVENTS} event(s)" in err
    # librdkafka's own reason for an event that waited message.timeout.ms (= --wait) without a broker.
    assert f"{EVENTS} x _MSG_TIMED_OUT: Local: Message timed out" in err, err
    time.sleep(max(0.0, OUTAGE_S - elapsed))
    broker.start()  # the outage ends only after emit gave up: nothing of it may turn up late
    assert _read_topic(bootstrap, topic, 1, seconds=5) == []
