"""Bulk load: lineage events straight into ClickHouse with the processor's own derivation, no Kafka.

For benchmarks that need graphs of millions of edges, backfills, and tests of the read side. Each run is
merged with `processors.lineage.runs` exactly as the worker does and only its final revision is written (the
rows a live pipeline converges to). Kafka positions are written as partition 0 with made-up offsets,
so never bulk-load into a database a live sink also writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from processors.lineage import runs
from sinks.rows import EDGES, RUNS, Row, edge_row, run_row
from sinks.writer import RowWriter


@dataclass
class BulkStats:
    events: int = 0
    runs: int = 0
    edges: int = 0


def derive_rows(events: Iterable[Mapping[str, Any]], derived_at: int) -> tuple[list[Row], list[Row]]:
    """(run rows, edge rows) of the final merged state of every run in `events` (Avro dict form)."""
    states = runs.merge_all(events)
    run_rows = [run_row(runs.run_record(s, derived_at), 0, i) for i, s in enumerate(states.values())]
    edge_rows: list[Row] = []
    for state in states.values():
        for edge in runs.edges(state, derived_at):
            edge_rows.append(edge_row(edge, 0, len(edge_rows)))
    return run_rows, edge_rows


def load_stream(
    writer: RowWriter,
    events: Iterable[Mapping[str, Any]],
    derived_at: int,
    *,
    window: int = 100_000,
    batch_rows: int = 500_000,
    token: str = "bulk",
) -> BulkStats:
    """Like `load` for workloads too big to hold: a run is written once no event of it has arrived in
    the last `window` events (a later event of it would start a new, partial state — the processor's
    eviction rule). Memory stays proportional to `window`, not to the workload."""
    stats = BulkStats()
    states: dict[str, runs.RunState] = {}
    last_seen: dict[str, int] = {}
    run_buf: list[Row] = []
    edge_buf: list[Row] = []

    def flush_rows(final: bool = False) -> None:
        for layout, buf in ((RUNS, run_buf), (EDGES, edge_buf)):
            if buf and (final or len(buf) >= batch_rows):
                writer.insert(layout.name, buf, layout.columns, layout.types, f"{token}:{layout.name}:{stats.events}")
                buf.clear()

    def retire(run_id: str) -> None:
        state = states.pop(run_id)
        del last_seen[run_id]
        run_buf.append(run_row(runs.run_record(state, derived_at), 0, stats.runs))
        stats.runs += 1
        for edge in runs.edges(state, derived_at):
            edge_buf.append(edge_row(edge, 0, stats.edges))
            stats.edges += 1

    for event in events:
        run_id = event["run_id"]
        states[run_id] = runs.merge(states.get(run_id), event)[0]
        last_seen.pop(run_id, None)
        last_seen[run_id] = stats.events  # dict order is last-seen order
        stats.events += 1
        if stats.events % window == 0:
            cutoff = stats.events - window
            quiet = []
            for old, seen_at in last_seen.items():
                if seen_at >= cutoff:
                    break
                quiet.append(old)
            for old in quiet:
                retire(old)
            flush_rows()
    for run_id in list(states):
        retire(run_id)
    flush_rows(final=True)
    return stats


def load(
    writer: RowWriter,
    events: Iterable[Mapping[str, Any]],
    derived_at: int,
    *,
    batch_rows: int = 200_000,
    token: str = "bulk",
) -> BulkStats:
    """Derive and insert; runs are merged over all of `events`, so pass a whole workload (or whole runs)."""
    run_rows, edge_rows = derive_rows(events, derived_at)
    stats = BulkStats(runs=len(run_rows), edges=len(edge_rows))
    for layout, rows in ((RUNS, run_rows), (EDGES, edge_rows)):
        for start in range(0, len(rows), batch_rows):
            batch = rows[start : start + batch_rows]
            writer.insert(layout.name, batch, layout.columns, layout.types, f"{token}:{layout.name}:{start}")
    return stats
