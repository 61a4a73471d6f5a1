"""Dedup decisions by event_id: pure functions over the state the wiring keeps in a faust table.

State per event_id is where it was first seen (partition, offset) and when. Seeing the same message
again at the same position is a replay after a restart (process it again; storage is idempotent),
anywhere else it is a duplicate (drop it). Entries older than the retention are evicted.

An event mapped from an OpenLineage topic message is placed by that message (its `origin`: the partition and
offset it was read at), whether the worker handled it where it read it or sent it on to the events topic
(with the origin in a header, processors/lineage/handling.py): a replay of the OpenLineage message after a
crash is a REPLAY on either path, and the same event id sent again by the producer a DUPLICATE.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REPLAY = "replay"


# The stored value (a JSON list in the changelog): [partition, offset, seen_at_ms] for an event read from the
# events topic at (partition, offset); [partition, offset, seen_at_ms, origin_partition] for one mapped from the
# OpenLineage message at (origin_partition, offset). `partition` is the table partition holding the entry.
Seen = Sequence[int]
Origin = tuple[int, int]  # (partition, offset) of the OpenLineage topic message an event was mapped from


def seen(partition: int, offset: int, now_ms: int, origin: Origin | None = None) -> list[int]:
    if origin is None:
        return [partition, offset, now_ms]
    return [partition, origin[1], now_ms, origin[0]]


def decide(prior: Seen | None, partition: int, offset: int, origin: Origin | None = None) -> Verdict:
    if prior is None:
        return Verdict.NEW
    if origin is None:
        same = len(prior) == 3 and prior[0] == partition and prior[1] == offset
    else:
        same = len(prior) == 4 and prior[3] == origin[0] and prior[1] == origin[1]
    return Verdict.REPLAY if same else Verdict.DUPLICATE


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
    """Exactly which offsets this process has handled, per partition of the events topic.

    faust may hand a worker messages it already handled in this process (after start-up recovery it
    seeks back to the committed offset). Their output is already queued and is flushed before any
    commit, so skipping them is safe; a crash loses this memory together with that output, and the
    restarted process handles them again (REPLAY). Exact, not a high-water mark: faust can drop fetched
    messages of a partition it considers inactive and hand them over later (after a seek back), and a
    message below the highest handled offset that was never handled must be handled then, not skipped.
    Kept as the contiguous handled prefix per partition plus the handled offsets above it.
    """

    def __init__(self) -> None:
        # partition -> sorted, disjoint, non-adjacent [first, last] runs of handled offsets (usually one)
        self._runs: dict[int, list[list[int]]] = {}

    def handled(self, partition: int, offset: int) -> bool:
        runs = self._runs.get(partition)
        if not runs:
            return False
        last = runs[-1]
        if last[0] <= offset <= last[1]:  # the common case: inside the newest run
            return True
        i = bisect.bisect_right(runs, [offset, 2**63]) - 1
        return i >= 0 and runs[i][0] <= offset <= runs[i][1]

    def mark(self, partition: int, offset: int) -> None:
        runs = self._runs.setdefault(partition, [])
        if runs and runs[-1][1] + 1 == offset:  # the common case: the next offset
            runs[-1][1] = offset
            return
        if self.handled(partition, offset):
            return
        i = bisect.bisect_right(runs, [offset, 2**63])  # runs[:i] start at or before offset
        joins_left = i > 0 and runs[i - 1][1] + 1 == offset
        joins_right = i < len(runs) and runs[i][0] - 1 == offset
        if joins_left and joins_right:
            runs[i - 1][1] = runs[i][1]
            del runs[i]
        elif joins_left:
            runs[i - 1][1] = offset
        elif joins_right:
            runs[i][0] = offset
        else:
            runs.insert(i, [offset, offset])

    def gaps(self, partition: int) -> int:
        """How many holes lie between the offsets handled (0: one contiguous run)."""
        return max(0, len(self._runs.get(partition, ())) - 1)
