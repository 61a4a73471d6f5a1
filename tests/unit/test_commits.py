"""processors.worker.commits on faust's own consumer bookkeeping: a message faust lost between fetch and stream
is never committed past, and the partition is sought back to it."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.types import TP

from processors.worker.commits import CommitGuard, holes

TP0 = TP("events", 0)


@pytest.fixture
def consumer() -> Any:
    app = faust.App("commits-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    return app.consumer  # faust's aiokafka Consumer; nothing here connects


def ack(consumer: Any, *offsets: int) -> None:
    """What faust's Consumer.ack records for a message at each offset."""
    for offset in offsets:
        consumer._acked[TP0].append(offset)
        consumer._acked_index[TP0].add(offset)


def test_faust_alone_commits_past_a_lost_message_or_never_commits_again(consumer: Any) -> None:
    """The defect: offset 10 never acknowledged (faust dropped it), 11-13 handled."""
    consumer._committed_offset[TP0] = 10
    ack(consumer, 11, 12, 13)
    assert consumer._new_offset(TP0) == 14  # would commit past 10: the message is never handled
    consumer._acked[TP0].clear()
    ack(consumer, 12, 13)
    assert consumer._new_offset(TP0) is None  # a hole of two: this partition is never committed again


def test_holes() -> None:
    assert holes({TP0: [11, 12]}, {TP0: 10}) == {TP0: (10, 11)}
    assert holes({TP0: [10, 11]}, {TP0: 10}) == {}
    assert holes({TP0: []}, {TP0: 10}) == {}
    assert holes({TP0: [5]}, {}) == {}  # never committed: its first offset is not known


def never(topic: str, partition: int, offset: int) -> bool | None:
    return False if topic == "events" else None


def test_the_guard_holds_the_commit_and_seeks_back(consumer: Any) -> None:
    sought: list[tuple[TP, int]] = []

    async def seek_wait(partitions: dict[TP, int]) -> None:
        sought.extend(partitions.items())

    consumer.seek_wait = seek_wait
    consumer._committed_offset[TP0] = 10
    ack(consumer, 11, 12, 13)
    other = TP("events", 1)
    consumer._committed_offset[other] = 0
    consumer._acked[other].extend([0, 1])
    consumer._acked_index[other].update([0, 1])
    clock = [100.0]
    guard = CommitGuard(never, clock=lambda: clock[0])

    async def commit() -> dict[TP, int]:
        guard.before_commit(consumer)
        # what faust does next, with no await in between (Consumer.commit)
        offsets = consumer._filter_committable_offsets(list(consumer._filter_tps_with_pending_acks()))
        await asyncio.sleep(0)  # faust's first await: the held acknowledgements come back
        await asyncio.sleep(0)
        return dict(offsets)

    offsets = asyncio.run(commit())
    assert offsets == {other: 2}  # nothing committed past the lost offset 10; the other partition goes on
    assert sought == [(TP0, 10)]
    assert sorted(consumer._acked[TP0]) == [11, 12, 13]  # the acknowledgements are kept for later
    # faust hands offset 10 over again after the seek; then the partition commits through 13
    ack(consumer, 10)
    offsets = asyncio.run(commit())
    assert offsets == {TP0: 14}
    assert sought == [(TP0, 10)]


def test_a_hole_that_stays_is_sought_again_after_a_while(consumer: Any) -> None:
    sought: list[int] = []

    async def seek_wait(partitions: dict[TP, int]) -> None:
        sought.extend(partitions.values())

    consumer.seek_wait = seek_wait
    consumer._committed_offset[TP0] = 10
    ack(consumer, 12)
    clock = [0.0]
    guard = CommitGuard(never, clock=lambda: clock[0])

    async def commit() -> None:
        guard.before_commit(consumer)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(commit())
    clock[0] = 5.0
    asyncio.run(commit())
    assert sought == [10]
    clock[0] = 11.0
    asyncio.run(commit())
    assert sought == [10, 10]


def test_acknowledgements_faust_forgot_for_handled_messages_are_given_back(consumer: Any) -> None:
    """A commit that failed after faust's bookkeeping took offset 10 out of its list leaves the same picture
    as a lost message; this process handled 10, so it is acknowledged again and the commit goes through."""
    sought: list[int] = []

    async def seek_wait(partitions: dict[TP, int]) -> None:
        sought.extend(partitions.values())

    consumer.seek_wait = seek_wait
    consumer._committed_offset[TP0] = 10
    ack(consumer, 11, 12, 13)
    handled = {10, 11, 12, 13}
    guard = CommitGuard(lambda topic, partition, offset: offset in handled)

    async def commit() -> dict[TP, int]:
        guard.before_commit(consumer)
        offsets = consumer._filter_committable_offsets(list(consumer._filter_tps_with_pending_acks()))
        await asyncio.sleep(0)
        return dict(offsets)

    assert asyncio.run(commit()) == {TP0: 14}
    assert sought == []


def test_a_topic_the_handler_does_not_track_is_left_to_faust(consumer: Any) -> None:
    consumer._committed_offset[TP0] = 10
    ack(consumer, 11, 12)
    guard = CommitGuard(lambda topic, partition, offset: None)

    async def commit() -> dict[TP, int]:
        guard.before_commit(consumer)
        return dict(consumer._filter_committable_offsets(list(consumer._filter_tps_with_pending_acks())))

    assert asyncio.run(commit()) == {TP0: 13}  # faust's own rule (it commits past a one-offset hole)


def test_repeated_acknowledgements_make_faust_commit_one_offset_at_a_time(consumer: Any) -> None:
    """Seen after a graceful worker restart: every offset acknowledged twice (and one already committed);
    faust's commit then moves one offset per commit interval. Tidied, it commits the whole run."""
    consumer._committed_offset[TP0] = 984
    consumer._acked[TP0].extend([983, *range(984, 990), *range(984, 990)])
    consumer._acked_index[TP0].update(range(983, 990))
    assert consumer._new_offset(TP0) == 985  # faust alone: one offset

    consumer._acked[TP0].clear()
    consumer._acked[TP0].extend([983, *range(984, 990), *range(984, 990)])
    guard = CommitGuard(lambda topic, partition, offset: True)

    async def commit() -> dict[TP, int]:
        guard.before_commit(consumer)
        return dict(consumer._filter_committable_offsets(list(consumer._filter_tps_with_pending_acks())))

    assert asyncio.run(commit()) == {TP0: 990}


def test_tidy() -> None:
    from processors.worker.commits import tidy

    assert tidy([5, 6, 7], 5) is None
    assert tidy([5, 5, 6], 5) == [5, 6]
    assert tidy([4, 5, 6], 5) == [5, 6]
    assert tidy([], None) is None
