"""A walk level judged in Python (`queries.valid_rows`, small levels) answers what ClickHouse's judging query
(`_valid_sql`, large levels) answers, on stored rows drawn at random: revisions inserted in any order,
FAIL/ABORT revisions, APPEND rows, several jobs into one dst, ties on valid_from, any as-of time.

The rules themselves (supersession, failed runs, append) are tested against the spec's examples in
tests/unit/test_time_travel.py, through both paths; this test pins the two paths to each other on inputs
those examples do not reach."""

from __future__ import annotations

import random

from clickhouse_connect.driver.client import Client

from sinks.rows import EDGES, edge_row
from sinks.writer import ClickHouseWriter
from upriver.readside.queries import ClickHouseLineage, valid_rows

DSTS = [f"dataset:wh/d{i}" for i in range(6)]
SRCS = [f"dataset:wh/s{i}" for i in range(5)]
JOBS = ["job:p/a", "job:p/b"]


def _stored(rng: random.Random) -> list[tuple[object, ...]]:
    """Edge rows of 40 runs into the dsts: each run writes its srcs into one dst, in 1-3 revisions (the
    last may FAIL or ABORT), some in APPEND mode; valid_from drawn from a few values, so runs tie."""
    rows = []
    offset = 0
    for r in range(40):
        run, job, dst = f"run-{r:02d}", rng.choice(JOBS), rng.choice(DSTS)
        srcs = rng.sample(SRCS, rng.randint(1, 3))
        append = rng.random() < 0.25
        valid_from = rng.choice([100, 200, 200, 300, 400])
        revisions = rng.randint(1, 3)
        for rev in range(1, revisions + 1):
            status = "RUNNING" if rev < revisions else rng.choice(["COMPLETE", "COMPLETE", "FAIL", "ABORT"])
            for src in srcs:
                offset += 1
                record = {
                    "src": src, "dst": dst, "edge_type": "DERIVED_FROM", "run_id": run, "job": job,
                    "event_id": f"{run}-{rev}", "event_time": valid_from + rev, "derived_at": 1_000,
                    "valid_from": valid_from, "run_status": status, "revision": rev, "append": append,
                }  # fmt: skip
                rows.append(edge_row(record, 0, offset))
    rng.shuffle(rows)  # revisions stored in any order
    return rows


def test_python_and_clickhouse_judge_a_level_alike(ch_client: Client, ch_database: str) -> None:
    rng = random.Random(11)
    writer = ClickHouseWriter(ch_client, ch_database)
    rows = _stored(rng)
    # Parts stay as inserted: a background merge between the two readers' reads would change what they read
    # (ReplacingMergeTree keeps the row inserted last of a key, whatever its revision).
    ch_client.command(f"SYSTEM STOP MERGES `{ch_database}`.edges")
    for i in range(0, len(rows), 25):  # several parts, unmerged
        writer.insert("edges", rows[i : i + 25], EDGES.columns, EDGES.types, f"b{i}")
    parts = ch_client.query(
        "SELECT count() FROM system.parts WHERE database = {d:String} AND table = 'edges' AND active",
        parameters={"d": ch_database},
    ).result_rows[0][0]
    assert parts == -(-len(rows) // 25)  # one part per insert: nothing merged
    in_clickhouse = ClickHouseLineage(ch_client, ch_database, raw_rows=0)
    # the default, and a limit so low that most levels overflow it and fall back (both fallbacks taken)
    in_python = [ClickHouseLineage(ch_client, ch_database), ClickHouseLineage(ch_client, ch_database, raw_rows=5)]
    compared = 0
    for as_of in [None, 50, 100, 199, 200, 250, 300, 400]:
        for frontier in [DSTS, DSTS[:1], DSTS[2:5], ["dataset:wh/none"]]:
            expected = sorted(in_clickhouse.edges_into(frontier, as_of))
            for port in in_python:
                assert sorted(port.edges_into(frontier, as_of)) == expected, (frontier, as_of)
            compared += len(expected)
        for sources in [SRCS, SRCS[:1], SRCS[1:3], ["dataset:wh/none"]]:
            expected = sorted(in_clickhouse.edges_out_of(sources, as_of))
            for port in in_python:
                assert sorted(port.edges_out_of(sources, as_of)) == expected, (sources, as_of)
            compared += len(expected)
    assert compared > 200  # the draw produced valid edges to compare, not only empty levels


def test_valid_rows_rules() -> None:
    """The rules on hand-written rows: the highest revision decides, a failed newer run supersedes nothing,
    the newest run per (dst, job) wins, APPEND rows stay, valid_from bounds the as-of view."""
    rows = [
        ("a", "m", "T", "r1", "j", 100, "COMPLETE", 2, False),
        ("a", "m", "T", "r1", "j", 100, "RUNNING", 1, False),
        ("b", "m", "T", "r2", "j", 200, "RUNNING", 1, False),
        ("b", "m", "T", "r2", "j", 200, "FAIL", 2, False),  # r2 failed: r1 stays newest
        ("c", "m", "T", "r3", "k", 150, "COMPLETE", 1, False),  # another job into m: its own newest
        ("e1", "idx", "T", "i1", "j", 100, "COMPLETE", 1, True),
        ("e2", "idx", "T", "i2", "j", 300, "COMPLETE", 1, True),
        ("d", "n", "T", "r4", "j", 100, "COMPLETE", 1, False),
        ("e", "n", "T", "r5", "j", 300, "COMPLETE", 1, False),  # supersedes r4 from 300 on
    ]
    now = sorted(valid_rows(rows, None))
    assert now == [
        ("a", "m", "T", 100, "j"), ("c", "m", "T", 150, "k"), ("e", "n", "T", 300, "j"),
        ("e1", "idx", "T", 100, "j"), ("e2", "idx", "T", 300, "j"),
    ]  # fmt: skip
    assert sorted(valid_rows(rows, 250)) == [
        ("a", "m", "T", 100, "j"), ("c", "m", "T", 150, "k"), ("d", "n", "T", 100, "j"),
        ("e1", "idx", "T", 100, "j"),
    ]  # fmt: skip
    assert valid_rows(rows, 99) == []
