"""producers.emitter without a broker: failed deliveries surface as DeliveryError, never silently."""

from __future__ import annotations

import socket

import pytest

from producers.emitter import PRODUCER_DEFAULTS, DeliveryError, LineageEmitter, new_event
from schemas.model import ArtifactRef


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
    assert info.value.failures[0][0] == b"run-1"  # the key says which run to re-emit
    assert emitter.stats.failed == 1 and emitter.stats.delivered == 0


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
