"""The producers' one door to librdkafka: confluent-kafka's producer, its defaults and its errors in words.

`LineageEmitter` (blocking, raises what was not delivered) and the SDK's `KafkaTransport` (never blocks,
never raises) are both built on this module; no other module of producers/ imports confluent-kafka.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

__all__ = [
    "PRODUCER_DEFAULTS",
    "KafkaError",
    "KafkaException",
    "Message",
    "Producer",
    "delivery_failure_reason",
    "is_too_large",
    "produce_failure_reason",
]

# Why each default: idempotence and acks=all so a retried produce never duplicates or loses a record
# (librdkafka's default for enable.idempotence is false); lz4 is cheap on 2 cores; a short linger
# lets batches fill at high volume without hurting latency much.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 10,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 512 * 1024,
}



def is_too_large(exc: BaseException) -> bool:
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    return isinstance(err, KafkaError) and err.code() == KafkaError.MSG_SIZE_TOO_LARGE


def produce_failure_reason(exc: BaseException, size: int, limit: int) -> str:
    """Why produce() refused an event of `size` bytes (key + value), with librdkafka's error name."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if isinstance(err, KafkaError):
        if err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            return f"too large: {size} bytes, over message.max.bytes = {limit} ({err.name()})"
        return f"refused by the producer: {err.name()}: {err.str()}"
    return f"refused by the producer: {type(exc).__name__}: {exc}"


def delivery_failure_reason(err: KafkaError) -> str:
    """librdkafka's reason for a failed delivery, e.g. `_MSG_TIMED_OUT: Local: Message timed out`."""
    return f"{err.name()}: {err.str()}"
