"""The partition-key policy of the events topic, as one documented pure function.

Key = the run id. All events of one run land on one partition, so a run's events stay ordered, and
a duplicate (same event, so same run) lands on the partition whose dedup state already holds its
event_id: dedup needs no cross-partition lookups. Signal events without a run use their own run id,
which the SDK sets to the subject's id. Changing this policy re-partitions dedup state: don't.
"""

from __future__ import annotations


def partition_key(run_id: str) -> bytes:
    return run_id.encode()
