"""Consumer lag of the pipeline's consumer groups (processor, sink), measured with the Kafka admin API.

Lag = log end offset - committed offset per partition, summed per (group, topic); a partition the group
never committed counts from the log start. Exposed as `upriver_consumer_lag` by the process running it.

A failed measurement is transient (broker away or restarting: timeouts, transport errors) and only sets
`upriver_consumer_lag_errors`, except a fatal Kafka error or one that retrying cannot fix (authentication,
authorization): that ends the monitor with the reason in `LagMonitor.failure`, for whoever supervises it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from upriver import metrics
from upriver.settings import Settings

log = logging.getLogger(__name__)


def measure(admin: AdminClient, group: str, topics: Sequence[str], timeout: float = 10.0) -> dict[str, int]:
    """Lag per topic of `group` over `topics` (topics the group never consumed are left out)."""
    committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout)
    offsets = {(tp.topic, tp.partition): tp.offset for tp in committed.topic_partitions or [] if tp.topic in topics}
    if not offsets:
        return {}
    latest, earliest = OffsetSpec.latest(), OffsetSpec.earliest()  # type: ignore[no-untyped-call]
    ends = admin.list_offsets({TopicPartition(t, p): latest for t, p in offsets})
    starts = admin.list_offsets({TopicPartition(t, p): earliest for t, p in offsets})
    lag: dict[str, int] = {}
    for (topic, partition), offset in offsets.items():
        end = ends[TopicPartition(topic, partition)].result(timeout).offset
        start = starts[TopicPartition(topic, partition)].result(timeout).offset
        behind = end - (offset if offset >= 0 else start)
        lag[topic] = lag.get(topic, 0) + max(0, behind)
    return lag


# Kafka errors a retry cannot fix: the configuration (credentials, ACLs) must change.
_PERMANENT_CODES = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)

Measure = Callable[[AdminClient, str, Sequence[str]], Mapping[str, int]]


def is_permanent(exc: BaseException) -> bool:
    """Whether a failed measurement will fail again however often it is retried."""
    if not isinstance(exc, KafkaException):
        return False  # TimeoutError and the like: the broker may be restarting
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and (err.fatal() or err.code() in _PERMANENT_CODES)


class LagMonitor:
    """Measures the lag of `groups` (group -> topics it reads) every `interval_s` into the gauge.

    `measure` is the measuring function (`measure(admin, group, topics)`, this module's by default): the
    hook through which a test makes the admin API fail, since a plaintext test broker cannot refuse
    credentials or ACLs. After a permanent failure (`is_permanent`) the thread ends and `failure` holds
    the reason; `alive()` is False from then on.
    """

    def __init__(
        self,
        kafka_config: Mapping[str, Any],
        groups: Mapping[str, Sequence[str]],
        interval_s: float = 5.0,
        measure: Measure = measure,
    ):
        self._admin = AdminClient({**kafka_config, "log_level": 3})
        self._groups = dict(groups)
        self._interval = interval_s
        self.measure = measure
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: str | None = None

    @classmethod
    def for_pipeline(cls, settings: Settings) -> LagMonitor:
        """The processor's and the sink's groups over the topics each reads."""
        t = settings.topics
        groups = {
            settings.processor_id: [t.events, t.runs],
            settings.sink_group: [t.edges, t.runs, t.dlq, t.alerts, t.health, t.drift_links],
        }
        return cls(settings.kafka_config(), groups)

    def poll_once(self) -> None:
        """One measurement of every group; raises only a permanent failure (`is_permanent`)."""
        try:
            for group, topics in self._groups.items():
                for topic, lag in self.measure(self._admin, group, topics).items():
                    metrics.CONSUMER_LAG.labels(group, topic).set(lag)
            metrics.LAG_ERRORS.set(0)
        except Exception as exc:
            metrics.LAG_ERRORS.set(1)
            if is_permanent(exc):
                raise
            # the broker may be restarting: report, keep the last figures
            log.debug("lag measurement failed: %s", exc)

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
