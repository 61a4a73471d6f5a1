"""upriver/local/workload.py Report.exact: a run counts only with every expected edge stored and none other."""

from __future__ import annotations

import pytest

from upriver.local.workload import Report


def _report(complete: bool, missing: int, unexpected: int) -> Report:
    return Report(
        events_sent=10, duplicates_sent=0, malformed_sent=0, messages_sent=10, failed_runs=0, edges_expected=12,
        edges_stored=12 - missing + unexpected, missing_edges=missing, unexpected_edges=unexpected,
        duplicate_edges_stored=0, duplicates_dropped=0, dlq_count=0, send_s=1.0, pipeline_s=2.0, events_per_s=5.0,
        latency_ms={"p50": 1.0, "p95": 2.0, "p99": 3.0}, complete=complete,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("complete", "missing", "unexpected", "exact"),
    [(True, 0, 0, True), (False, 0, 0, False), (True, 1, 0, False), (True, 0, 1, False)],
)
def test_exact_needs_complete_and_no_missing_and_no_unexpected_edge(
    complete: bool, missing: int, unexpected: int, exact: bool
) -> None:
    report = _report(complete, missing, unexpected)
    assert report.exact is exact
    assert report.to_json()["exact"] is exact
