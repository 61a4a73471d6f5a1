"""processors.lineage.dedup: first sighting, duplicate, replay after restart, bounded eviction."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from processors.lineage.dedup import Verdict, decide, expired, seen


def test_first_sighting_is_new() -> None:
    assert decide(None, 0, 10) is Verdict.NEW


def test_same_event_at_another_offset_is_a_duplicate() -> None:
    assert decide(seen(0, 10, 1_000), 0, 11) is Verdict.DUPLICATE
    assert decide(seen(0, 10, 1_000), 1, 10) is Verdict.DUPLICATE


def test_same_message_read_again_is_a_replay_not_a_duplicate() -> None:
    # After a crash the worker re-reads uncommitted messages; dropping them would lose their edges.
    assert decide(seen(3, 42, 1_000), 3, 42) is Verdict.REPLAY


def test_an_openlineage_message_is_placed_by_its_own_position_on_either_path() -> None:
    # Mapped from the OpenLineage message at partition 2, offset 42, its state on table partition 5: read again
    # (handled in place, or sent on to the events topic and read there at any offset) it is a replay.
    entry = seen(5, 42, 1_000, origin=(2, 42))
    assert entry[0] == 5 and entry[2] == 1_000  # the table partition and the time, where eviction reads them
    assert decide(entry, 5, 42, origin=(2, 42)) is Verdict.REPLAY
    assert decide(entry, 5, 7, origin=(2, 42)) is Verdict.REPLAY
    assert decide(entry, 5, 43, origin=(2, 43)) is Verdict.DUPLICATE  # the producer sent it again
    assert decide(entry, 5, 42, origin=(3, 42)) is Verdict.DUPLICATE
    assert decide(entry, 5, 42) is Verdict.DUPLICATE  # the same event emitted as Avro to the events topic
    assert decide(seen(2, 42, 1_000), 2, 42, origin=(2, 42)) is Verdict.DUPLICATE  # an events-topic position


def test_expired_stops_at_first_live_entry_and_respects_limit() -> None:
    entries = [("a", seen(0, 1, 100)), ("b", seen(0, 2, 200)), ("c", seen(0, 3, 900)), ("d", seen(0, 4, 150))]
    assert expired(entries, now_ms=1_000, retention_ms=500, limit=10) == ["a", "b"]
    assert expired(entries, now_ms=1_000, retention_ms=500, limit=1) == ["a"]
    assert expired(entries, now_ms=1_000, retention_ms=5_000, limit=10) == []


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=200), st.integers(0, 20_000))
def test_expired_never_evicts_a_live_entry(times: list[int], now: int) -> None:
    entries = [(i, seen(0, i, t)) for i, t in enumerate(sorted(times))]
    gone = set(expired(entries, now_ms=now, retention_ms=1_000, limit=1_000))
    for key, value in entries:
        assert (key in gone) == (value[2] < now - 1_000)


def test_positions_skip_exactly_what_this_process_already_handled() -> None:
    """faust can drop fetched messages and hand them over later, after higher offsets were handled: an offset
    below the highest handled one that was never handled is not skipped (a high-water mark lost it)."""
    from processors.lineage.dedup import Positions

    positions = Positions()
    assert not positions.handled(0, 0)
    positions.mark(0, 5)
    positions.mark(0, 3)
    assert positions.handled(0, 5) and positions.handled(0, 3)
    assert not positions.handled(0, 4) and not positions.handled(0, 0) and not positions.handled(0, 6)
    assert positions.gaps(0) == 1
    positions.mark(0, 4)
    assert positions.gaps(0) == 0 and positions.handled(0, 4)
    assert not positions.handled(1, 5)  # partitions are independent


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 60)), max_size=300))
def test_positions_know_exactly_the_marked_offsets(marks: list[tuple[int, int]]) -> None:
    from processors.lineage.dedup import Positions

    positions = Positions()
    for p, o in marks:
        positions.mark(p, o)
    marked = set(marks)
    for p in range(3):
        for o in range(62):
            assert positions.handled(p, o) == ((p, o) in marked), (p, o)
        offsets = sorted(o for q, o in marked if q == p)
        holes = sum(1 for a, b in itertools.pairwise(offsets) if b > a + 1)
        assert positions.gaps(p) == holes
