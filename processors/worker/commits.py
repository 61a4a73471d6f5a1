"""Guards faust's offset commits: against a message it lost, and against its own bookkeeping.

faust-streaming (0.15.3) drops fetched records of a partition it does not consider active at that moment
(`Consumer.getmany`: during a rebalance or recovery, after a generation change) while the fetch position
has moved past them, and it forgets acknowledgements it took into a commit that then failed. Either way its
commit bookkeeping (`Consumer._new_offset`) sees acknowledged offsets that start above the committed one:
with a hole of two or more it never commits that partition again (the worker idles with lag: issue 13,
"offset commits stall"), and with a hole of exactly one it commits past it. After a graceful restart it
was also seen holding every acknowledged offset twice: its commit takes the first run of consecutive
offsets from the sorted list, so each commit then moved one offset per 2.8 s interval and a restarted
worker "drained" for minutes with its lag frozen. tests/unit/test_commits.py shows all three on faust's
own Consumer.

Before every commit (`FlushBeforeCommit`), `CommitGuard`:
- tidies the acknowledgement list: repeats and already committed offsets dropped
  (`upriver_processor_commit_acks_tidied_total`);
- for each partition whose acknowledged offsets start above the committed one, asks
  `processors.lineage.dedup.Positions` about the offsets in between: if this process handled them all, they are
  acknowledged again and the commit goes through (`upriver_processor_commit_holes_filled_total`); if one
  was never handled, the partition's acknowledgements are held back from that commit (nothing is committed
  past it) and the partition is sought back to its committed offset on faust's consumer thread: faust hands
  the messages over again, Positions skips the handled ones (their output is queued and flushed before the
  commit) and the lost ones are handled (`upriver_processor_commit_rewinds_total`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from processors import metrics

log = logging.getLogger(__name__)

RETRY_S = 10.0  # a partition still holed at the same committed offset is sought back again after this


def tidy(acked: Sequence[int], committed: int | None) -> list[int] | None:
    """`acked` without repeats and without offsets below the committed one, or None when it has neither.
    faust's commit takes the first run of consecutive offsets from its sorted list, so one repeated offset
    ends the run: with every offset acknowledged twice (seen after a worker restart) each commit moves one
    offset, and a backlog of thousands takes hours (issue 13: "drained 4-10x slower", "held 8,024 messages
    of lag for 300 s")."""
    distinct = set(acked)
    below = committed is not None and bool(acked) and min(acked) < committed
    if len(distinct) == len(acked) and not below:
        return None
    return sorted(o for o in distinct if committed is None or o >= committed)


def holes(acked: Mapping[Any, Sequence[int]], committed: Mapping[Any, int | None]) -> dict[Any, tuple[int, int]]:
    """Partitions whose acknowledged offsets start above the committed one (the next offset to read):
    tp -> (committed, lowest acknowledged). A partition never committed (None) is left out: its first
    offset is not known here."""
    out: dict[Any, tuple[int, int]] = {}
    for tp, offsets in acked.items():
        if not offsets:
            continue
        start = committed.get(tp)
        low = min(offsets)
        if start is not None and low > start:
            out[tp] = (start, low)
    return out


Handled = Callable[[str, int, int], "bool | None"]  # (topic, partition, offset) -> handled here? None: unknown


class CommitGuard:
    """`handled` says whether this process handled a message (None for a topic it does not track: left to
    faust). A hole whose offsets were all handled here is not a loss: faust dropped their acknowledgement
    (a commit that failed after its bookkeeping forgot them, e.g. during a rebalance), so they are
    acknowledged again and the commit goes through. A hole with an offset never handled is held back."""

    def __init__(self, handled: Handled, clock: Callable[[], float] = time.monotonic) -> None:
        self._handled = handled
        self._clock = clock
        self._sought: dict[Any, tuple[int, float]] = {}  # tp -> (offset sought back to, when)
        self._seeks: set[asyncio.Future[Any]] = set()  # running seeks (kept referenced until done)

    def _tidy(self, consumer: Any) -> None:
        for tp, acked in list(consumer._acked.items()):
            clean = tidy(acked, consumer._committed_offset.get(tp))
            if clean is not None:
                log.info("%s/%d: %d acknowledgement(s) repeated or already committed, dropped before the commit",
                         tp.topic, tp.partition, len(acked) - len(clean))  # fmt: skip
                consumer._acked[tp] = clean
                metrics.COMMIT_ACKS_TIDIED.inc()

    def before_commit(self, consumer: Any) -> None:
        """Called by faust right before it computes the offsets to commit (no await in between)."""
        self._tidy(consumer)
        found = holes(consumer._acked, consumer._committed_offset)
        for tp in [tp for tp in self._sought if tp not in found]:
            del self._sought[tp]  # the hole closed
        lost: dict[Any, tuple[int, int]] = {}
        for tp, (start, low) in found.items():
            known = [self._handled(tp.topic, tp.partition, offset) for offset in range(start, low)]
            if None in known:
                continue  # a topic this process does not track: faust's own bookkeeping decides
            if all(known):
                consumer._acked[tp].extend(range(start, low))
                consumer._acked_index[tp].update(range(start, low))
                metrics.COMMIT_HOLES_FILLED.inc()
            else:
                lost[tp] = (start, low)
        if not lost:
            return
        loop = asyncio.get_running_loop()
        held: dict[Any, list[int]] = {tp: consumer._acked.pop(tp) for tp in lost}

        def restore() -> None:  # after faust computed this commit's offsets (its first await)
            for tp, offsets in held.items():
                consumer._acked[tp].extend(offsets)

        loop.call_soon(restore)
        now = self._clock()
        for tp, (start, low) in lost.items():
            last = self._sought.get(tp)
            if last is not None and last[0] == start and now - last[1] < RETRY_S:
                continue
            self._sought[tp] = (start, now)
            metrics.COMMIT_REWINDS.inc()
            log.warning(
                "faust lost message(s) of %s/%d between committed offset %d and acknowledged offset %d; "
                "holding its commit and seeking back to %d (handled messages are skipped, none is lost)",
                tp.topic,
                tp.partition,
                start,
                low,
                start,
            )
            # seek_wait runs the seek on the consumer's own thread (faust's aiokafka consumer lives there;
            # Consumer.seek would call it from this thread)
            seek = asyncio.ensure_future(consumer.seek_wait({tp: start}))
            self._seeks.add(seek)
            seek.add_done_callback(self._seeks.discard)
