"""Consumer lag of the pipeline's consumer groups (processor, sink), measured with the Kafka admin API
(`upriver.deploy.kafka.measure_offsets`).

Lag = log end offset - committed offset per partition, summed per (group, topic), over every partition of
each topic: a partition the group never committed counts from the log start (a worker that never commits
shows its whole backlog, not 0). Exposed as `upriver_consumer_lag` by the process running it, with the
committed offsets' sum (`upriver_consumer_committed_offsets`) and `upriver_consumer_stalled_seconds`: how
long the committed offsets have not moved while messages wait (`StallClock`; alert UpriverConsumerStalled).

A failed measurement is transient (broker away or restarting: timeouts, transport errors) and only sets
`upriver_consumer_lag_errors`, except a fatal Kafka error or one that retrying cannot fix (authentication,
authorization): that ends the monitor with the reason in `LagMonitor.failure`, for whoever supervises it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from upriver import metrics
from upriver.deploy.kafka import AdminClient, Consumer, TopicOffsets, is_permanent, measure_offsets
from upriver.settings import Settings

log = logging.getLogger(__name__)

# The alert UpriverConsumerStalled fires past this (compose/prometheus/alerts.yml); the log says it too.
STALL_WARN_AFTER_S = 120.0


class StallClock:
    """Per key (group, topic): seconds the committed offsets have not moved while lag > 0. Pure: time is given.

    `update` returns 0 while the lag is 0 and at the measurement that sees the offsets move (or sees lag
    appear, or sees the key first); otherwise the time since that measurement. So a group that never
    commits is counted from the first measurement that saw its lag.
    """

    def __init__(self) -> None:
        self._since: dict[tuple[str, str], tuple[int, float | None]] = {}  # committed, stalled since

    def update(self, key: tuple[str, str], lag: int, committed: int, now: float) -> float:
        last = self._since.get(key)
        if lag <= 0:
            self._since[key] = (committed, None)
            return 0.0
        if last is None or last[0] != committed or last[1] is None:
            self._since[key] = (committed, now)
            return 0.0
        return max(0.0, now - last[1])


# Kafka errors a retry cannot fix: the configuration (credentials, ACLs) must change.


Measure = Callable[[AdminClient, str, Sequence[str]], Mapping[str, TopicOffsets]]


class LagMonitor:
    """Measures the lag of `groups` (group -> topics it reads) every `interval_s` into the gauges, and how
    long each (group, topic) has made no progress with lag (`StallClock` over `clock`, monotonic seconds).

    `measure` is the measuring function (`measure(admin, group, topics)` -> topic -> `TopicOffsets`; by
    default `measure_offsets` with a Consumer per group reading its committed offsets): the hook through
    which a test makes the admin API fail, since a plaintext test broker cannot refuse credentials or
    ACLs. After a permanent failure (`is_permanent`) the thread ends and `failure` holds the reason;
    `alive()` is False from then on.
    """

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        groups: Mapping[str, Sequence[str]],
        interval_s: float = 5.0,
        measure: Measure | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._config = {**kafka_config, "log_level": 3}
        self._admin = AdminClient(self._config)
        self._consumers: dict[str, Consumer] = {}  # group -> its offsets reader (never subscribes)
        self._groups = dict(groups)
        self._interval = interval_s
        self.measure: Measure = measure if measure is not None else self._measure
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: str | None = None
        self._clock = clock
        self._stalls = StallClock()
        self._warned: set[tuple[str, str]] = set()  # stalls logged, until they end

    @classmethod
    def for_pipeline(cls, settings: Settings) -> LagMonitor:
        """The processor's and the sink's groups over the topics each reads (the processor reads the runs
        topic only for its health agent: with health off its lag there grows for ever, and is no stall)."""
        t = settings.topics
        ol = [t.openlineage] if t.openlineage else []
        health = [t.runs] if settings.health_enabled else []
        groups = {
            settings.processor_id: [t.events, *health, *ol],
            settings.sink_group: [t.edges, t.runs, t.dlq, t.alerts, t.health, t.drift_links, t.tags, *ol],
        }
        return cls(settings.kafka_config(), groups)

    def lag_now(self) -> dict[tuple[str, str], int]:
        """One measurement, returned rather than published: (group, topic) -> messages not yet consumed."""
        return {
            (group, topic): offsets.lag
            for group, topics in self._groups.items()
            for topic, offsets in self.measure(self._admin, group, topics).items()
        }

    def poll_once(self) -> None:
        """One measurement of every group; raises only a permanent failure (`is_permanent`)."""
        try:
            for group, topics in self._groups.items():
                measured = self.measure(self._admin, group, topics)
                now = self._clock()
                for topic, offsets in measured.items():
                    stalled = self._stalls.update((group, topic), offsets.lag, offsets.committed, now)
                    metrics.CONSUMER_LAG.labels(group, topic).set(offsets.lag)
                    metrics.CONSUMER_COMMITTED.labels(group, topic).set(offsets.committed)
                    metrics.CONSUMER_STALLED.labels(group, topic).set(stalled)
                    self._log_stall(group, topic, offsets.lag, stalled)
            metrics.LAG_ERRORS.set(0)
        except Exception as exc:
            metrics.LAG_ERRORS.set(1)
            if is_permanent(exc):
                raise
            # the broker may be restarting: report, keep the last figures
            log.debug("lag measurement failed: %s", exc)

    def _measure(self, admin: AdminClient, group: str, topics: Sequence[str]) -> dict[str, TopicOffsets]:
        consumer = self._consumers.get(group)
        if consumer is None:
            # group.id is the group measured; it never subscribes, so it never joins the group
            consumer = Consumer({**self._config, "group.id": group, "enable.auto.commit": False})
            self._consumers[group] = consumer
        return measure_offsets(admin, group, topics, consumer=consumer)

    def _log_stall(self, group: str, topic: str, lag: int, stalled: float) -> None:
        key = (group, topic)
        if stalled >= STALL_WARN_AFTER_S and key not in self._warned:
            self._warned.add(key)
            log.warning(
                "consumer group %s makes no progress on %s: committed offsets unchanged for %.0fs with %d "
                "messages waiting (a stuck or crash-looping consumer; see docs/operations.md)",
                group,
                topic,
                stalled,
                lag,
            )
        elif stalled == 0 and key in self._warned:
            self._warned.discard(key)
            log.info("consumer group %s makes progress on %s again (lag %d)", group, topic, lag)

    def start(self) -> LagMonitor:
        def loop() -> None:
            try:
                while not self._stop.wait(self._interval):
                    self.poll_once()
            except BaseException as exc:  # the supervisor (LocalStack) reports it; the thread ends
                self.failure = f"lag measurement failed and retrying will not help: {type(exc).__name__}: {exc}"

        self._thread = threading.Thread(target=loop, name="upriver-lag", daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        """Whether the measuring thread runs (False before start, after stop and after a failure)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """Whether `stop()` was called (so the thread ending is intended)."""
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._thread is None or not self._thread.is_alive():
            for consumer in self._consumers.values():
                consumer.close()
            self._consumers.clear()
