"""The partition-key policy of the events topic, as one documented pure function.

Key = the run id. All events of one run land on one partition, so a run's events stay ordered, and
a duplicate (same event, so same run) lands on the partition whose dedup state already holds its
event_id: dedup needs no cross-partition lookups. Signal events without a run use their own run id,
which the SDK sets to the subject's id. Changing this policy re-partitions dedup state: don't.
"""

from __future__ import annotations

import zlib


def partition_key(run_id: str) -> bytes:
    return run_id.encode()


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a producer with librdkafka's default partitioner (`consistent_random`: the key's CRC-32
    modulo the partition count) gives a message of a non-empty `key`: where an emitter's or the HTTP
    ingest's event of that run lands (tests/integration/test_keys.py checks it against a real broker). The
    worker places the state of an OpenLineage run it handles in place on this partition of its tables."""
    if not key:
        raise ValueError("an empty key is partitioned at random")
    return zlib.crc32(key) % partitions
