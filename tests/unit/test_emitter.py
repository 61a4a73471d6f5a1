"""producers.emitter without a broker: failed deliveries surface as DeliveryError, never silently."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from producers.emitter import DeliveryError, LineageEmitter, new_event
from producers.kafka import PRODUCER_DEFAULTS
from producers.ndjson import to_json
from schemas.model import ArtifactRef
from upriver.cli.main import main


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens here once the socket is closed


def test_undeliverable_events_raise_delivery_error_on_flush() -> None:
    emitter = LineageEmitter(
        {"bootstrap.servers": f"127.0.0.1:{_closed_port()}", "log_level": 0},
        "upriver.events.v1",
        producer_overrides={"message.timeout.ms": 1500},
    )
    emitter.emit(new_event("ns", "job", "START", run_id="run-1", inputs=[ArtifactRef("DATASET", "w", "t")]))
    with pytest.raises(DeliveryError) as info:
        emitter.flush(10)
    assert len(info.value.failures) == 1
    assert info.value.failures[0] == (b"run-1", "_MSG_TIMED_OUT: Local: Message timed out")  # key: which run
    assert emitter.stats.failed == 1 and emitter.stats.delivered == 0


def test_an_event_over_the_size_limit_fails_alone_without_raising_from_emit(caplog: pytest.LogCaptureFixture) -> None:
    emitter = LineageEmitter(
        {"bootstrap.servers": f"127.0.0.1:{_closed_port()}", "log_level": 0},
        "upriver.events.v1",
        producer_overrides={"message.timeout.ms": 1500},
    )
    blob = "x" * 1_100_000
    big = new_event("ns", "job", "COMPLETE", run_id="run-big", facets=json.dumps({"blob": blob}))
    with caplog.at_level(logging.ERROR, logger="producers.emitter"):
        emitter.emit(big)  # librdkafka refuses it in produce(); that must not stop the next event
        emitter.emit(new_event("ns", "job", "START", run_id="run-small"))
    assert emitter.stats.sent == 2 and emitter.stats.failed == 1
    with pytest.raises(DeliveryError) as info:
        emitter.flush(10)
    (big_key, big_reason), (small_key, small_reason) = info.value.failures
    assert (big_key, small_key) == (b"run-big", b"run-small")
    size = int(big_reason.split("too large: ")[1].split(" bytes")[0])
    assert len(blob) < size < len(blob) + 1_000
    assert big_reason == f"too large: {size} bytes, over message.max.bytes = 1000000 (MSG_SIZE_TOO_LARGE)"
    assert small_reason == "_MSG_TIMED_OUT: Local: Message timed out"  # no broker: the small one times out
    assert (emitter.stats.sent, emitter.stats.delivered, emitter.stats.failed) == (2, 0, 2)
    assert [r for r in caplog.records if big.event_id in r.getMessage() and f"{size} bytes" in r.getMessage()]


def test_emit_command_reports_each_reason_and_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    small = [new_event("ns", "job", "START", run_id=f"run-{i}") for i in range(3)]
    big = new_event("ns", "job", "COMPLETE", run_id="run-big", facets=json.dumps({"blob": "x" * 1_100_000}))
    path = tmp_path / "events.ndjson"
    path.write_text("".join(to_json(e) + "\n" for e in [*small, big]))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{_closed_port()}")
    assert main(["emit", str(path), "--wait", "1"]) == 1
    out, err = capsys.readouterr()
    assert "delivered 0 of 4 event(s) to upriver.events.v1" in out
    assert "NOT DELIVERED: 4 of 4 event(s) (waited up to 1s for Kafka, --wait):" in err
    assert "  3 x _MSG_TIMED_OUT: Local: Message timed out" in err
    assert "  1 x too large: " in err and "over message.max.bytes = 1000000" in err


@pytest.mark.parametrize("wait", ["0", "-1", "nan", "soon"])
def test_emit_wait_must_be_a_positive_number_of_seconds(wait: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["emit", str(tmp_path / "events.ndjson"), "--wait", wait])
    assert info.value.code == 2  # argparse's usage error, before any Kafka client exists


def test_idempotence_cannot_be_switched_off() -> None:
    assert PRODUCER_DEFAULTS["acks"] == "all"
    emitter = LineageEmitter(
        {"bootstrap.servers": "127.0.0.1:1", "enable.idempotence": False},
        "t",
        producer_overrides={"enable.idempotence": False, "linger.ms": 50},
    )
    assert emitter._config["enable.idempotence"] is True
    assert emitter._config["acks"] == "all"
    assert emitter._config["linger.ms"] == 50  # other overrides are honoured


def test_new_event_fixes_identity_at_build_time() -> None:
    a = new_event("ns", "job", "COMPLETE", run_id="r", event_time_ms=1_767_225_600_000)
    b = new_event("ns", "job", "COMPLETE", run_id="r", event_time_ms=1_767_225_600_000)
    assert a.event_id != b.event_id  # two events
    assert a.event_time == b.event_time == 1_767_225_600_000
