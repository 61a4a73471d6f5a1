"""Pipeline statistics read from ClickHouse (what the demo prints and the benchmark records). Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Latency:
    p50: float
    p95: float
    p99: float
    events: int


class PipelineStats:
    def __init__(self, client: Any, database: str) -> None:
        self._client = client
        self._db = database

    def _scalar(self, sql: str) -> Any:
        return self._client.query(sql).result_rows[0][0]

    def edge_rows(self) -> set[tuple[str, str, str, str]]:
        """Distinct stored artifact edges (column edges left out) as (src, dst, edge_type, run_id)."""
        rows = self._client.query(
            f"SELECT src, dst, edge_type, run_id FROM {self._db}.edges WHERE position(src, '#') = 0"
            " GROUP BY src, dst, edge_type, run_id"
        ).result_rows
        return {(r[0], r[1], r[2], r[3]) for r in rows}

    def distinct_edges(self) -> int:
        return int(self._scalar(f"SELECT uniqExact(src, dst, edge_type, run_id) FROM {self._db}.edges"))

    def duplicate_edge_rows(self) -> int:
        """Rows stored beyond one per (edge, run revision): what a failed dedup or a replayed insert leaves.
        (A run re-publishes its edges at each new revision; those rows are expected, not duplicates.)"""
        return int(
            self._scalar(f"SELECT count() - uniqExact(src, dst, edge_type, run_id, revision) FROM {self._db}.edges")
        )

    def dead_letters(self) -> int:
        return int(
            self._scalar(
                f"SELECT uniqExact(source_topic, source_partition, source_offset) FROM {self._db}.dead_letters"
            )
        )

    def dead_letter_reasons(self) -> list[tuple[str, str, int]]:
        return [
            (r[0], r[1], int(r[2]))
            for r in self._client.query(
                f"SELECT error_kind, reason, count() FROM {self._db}.dead_letters "
                "GROUP BY error_kind, reason ORDER BY count() DESC, reason"
            ).result_rows
        ]

    def last_insert_ms(self) -> int:
        return int(self._scalar(f"SELECT toUnixTimestamp64Milli(max(inserted_at)) FROM {self._db}.edges"))

    def latency(self, since_ms: int = 0) -> Latency:
        """Event time -> all of its edges queryable, per event, for events at or after `since_ms`."""
        row = self._client.query(
            "SELECT quantiles(0.5, 0.95, 0.99)(lat), count() FROM ("
            " SELECT event_id, toUnixTimestamp64Milli(max(inserted_at))"
            " - toUnixTimestamp64Milli(any(event_time)) AS lat"
            f" FROM {self._db}.edges WHERE toUnixTimestamp64Milli(event_time) >= {int(since_ms)}"
            " GROUP BY event_id)"
        ).result_rows[0]
        q = row[0] or [0.0, 0.0, 0.0]
        return Latency(float(q[0]), float(q[1]), float(q[2]), int(row[1]))
