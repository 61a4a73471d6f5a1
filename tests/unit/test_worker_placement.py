"""processors.worker.app.placement: what the OpenLineage agent asks faust before each batch (which runs it may
handle where it read them: processors/lineage/handling.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from processors.worker.app import placement


def _app(count: Any, actives: set[TP]) -> Any:
    consumer = SimpleNamespace(topic_partitions=lambda topic: count if topic == "events" else None)
    return SimpleNamespace(consumer=consumer, assignor=SimpleNamespace(assigned_actives=lambda: actives))


def test_the_events_partitions_this_worker_owns_actively() -> None:
    actives = {TP("events", 0), TP("events", 2), TP("openlineage", 1), TP("app-runs-changelog", 3)}
    assert placement(_app(4, actives), "events") == (4, {0, 2})


def test_before_the_first_assignment_nothing_is_known() -> None:
    assert placement(_app(None, set()), "events") is None


def test_a_consumer_that_cannot_say_sends_everything_on() -> None:
    app = SimpleNamespace(consumer=SimpleNamespace(), assignor=SimpleNamespace(assigned_actives=set))
    assert placement(app, "events") is None
