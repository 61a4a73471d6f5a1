"""Dedup decisions by event_id: pure functions over the state the wiring keeps in a faust table.

State per event_id is where it was first seen (partition, offset) and when. Seeing the same message
again at the same position is a replay after a restart (process it again; storage is idempotent),
anywhere else it is a duplicate (drop it). Entries older than the retention are evicted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REPLAY = "replay"


# The stored value: [partition, offset, seen_at_ms] (a JSON list in the changelog).
Seen = Sequence[int]


def seen(partition: int, offset: int, now_ms: int) -> list[int]:
    return [partition, offset, now_ms]


def decide(prior: Seen | None, partition: int, offset: int) -> Verdict:
    if prior is None:
        return Verdict.NEW
    if prior[0] == partition and prior[1] == offset:
        return Verdict.REPLAY
    return Verdict.DUPLICATE


def expired(entries: Iterable[tuple[Any, Seen]], now_ms: int, retention_ms: int, limit: int) -> list[Any]:
    """Keys to evict, scanning entries in first-seen order and stopping at the first one still live.

    Entries are kept in insertion (first-seen) order, so the scan touches only what it evicts
    plus one; `limit` bounds the work of one pass.
    """
    cutoff = now_ms - retention_ms
    out: list[Any] = []
    for key, value in entries:
        if len(out) >= limit or value[2] >= cutoff:
            break
        out.append(key)
    return out


class Positions:
    """The highest offset this process has handled, per partition of the events topic.

    faust may hand a worker messages it already handled in this process (after start-up recovery it
    seeks back to the committed offset). Their output is already queued and is flushed before any
    commit, so skipping them is safe; a crash loses this memory together with that output, and the
    restarted process handles them again (REPLAY).
    """

    def __init__(self) -> None:
        self._done: dict[int, int] = {}

    def handled(self, partition: int, offset: int) -> bool:
        return offset <= self._done.get(partition, -1)

    def mark(self, partition: int, offset: int) -> None:
        if offset > self._done.get(partition, -1):
            self._done[partition] = offset
