"""LineageReader on embedded ClickHouse: BFS sets, depth, truncation, cycles, rendering, unknown nodes."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.client import Client

from sinks.rows import EDGES, edge_row, utc_from_millis
from sinks.writer import ClickHouseWriter
from upriver.readside.lineage import LineageGraph, LineageReader, NodeNotFound, render_tree, to_json

# raw -> clean -> features -> model -> deploy, plus a diamond (raw -> {clean, other} -> features)
# and a cycle (loop_a -> loop_b -> loop_c -> loop_a) hanging off model.
GRAPH = [
    ("dataset:s3/raw", "dataset:wh/clean", "DERIVED_FROM"),
    ("dataset:s3/raw", "dataset:wh/other", "DERIVED_FROM"),
    ("dataset:wh/clean", "feature:fs/features", "DERIVED_FROM"),
    ("dataset:wh/other", "feature:fs/features", "DERIVED_FROM"),
    ("feature:fs/features", "model:ml/churn", "TRAINED_ON"),
    ("model:ml/churn", "deployment:prod/churn", "DEPLOYED_AS"),
    ("model:ml/churn", "report:x/loop_a", "EVALUATED_ON"),
    ("report:x/loop_a", "report:x/loop_b", "DERIVED_FROM"),
    ("report:x/loop_b", "report:x/loop_c", "DERIVED_FROM"),
    ("report:x/loop_c", "report:x/loop_a", "DERIVED_FROM"),
]


@pytest.fixture
def reader(ch_client: Client, ch_database: str) -> LineageReader:
    writer = ClickHouseWriter(ch_client, ch_database)
    rows = [
        edge_row(
            {
                "src": s,
                "dst": d,
                "edge_type": t,
                "run_id": "run-1",
                "job": "ns/job",
                "event_id": f"ev-{i}",
                "event_time": 1,
                "derived_at": 2,
            },
            0,
            i,
        )
        for i, (s, d, t) in enumerate(GRAPH)
    ]
    writer.insert("edges", rows, EDGES.columns, EDGES.types, "graph")
    # The same edge again from another batch: ReplacingMergeTree keeps both rows until a merge,
    # so the reader must not report it twice.
    writer.insert("edges", rows[:1], EDGES.columns, EDGES.types, "replay")
    return LineageReader(ch_client, ch_database, chunk=2)


def test_upstream_walks_the_diamond(reader: LineageReader) -> None:
    g = reader.upstream("model:ml/churn")
    assert g.nodes == {
        "model:ml/churn": 0,
        "feature:fs/features": 1,
        "dataset:wh/clean": 2,
        "dataset:wh/other": 2,
        "dataset:s3/raw": 3,
    }
    assert sorted(g.edges) == sorted(e for e in GRAPH if e[1] in g.nodes and e[0] in g.nodes)
    assert len(g.edges) == len(set(g.edges)) == 5
    assert not g.truncated


def test_downstream_terminates_on_cycle(reader: LineageReader) -> None:
    g = reader.downstream("model:ml/churn")
    assert g.nodes == {
        "model:ml/churn": 0,
        "deployment:prod/churn": 1,
        "report:x/loop_a": 1,
        "report:x/loop_b": 2,
        "report:x/loop_c": 3,
    }
    assert ("report:x/loop_c", "report:x/loop_a", "DERIVED_FROM") in g.edges
    assert not g.truncated


def test_depth_limit_sets_truncated(reader: LineageReader) -> None:
    g = reader.downstream("dataset:s3/raw", depth=2)
    assert set(g.nodes) == {"dataset:s3/raw", "dataset:wh/clean", "dataset:wh/other", "feature:fs/features"}
    assert g.truncated
    exact = reader.downstream("report:x/loop_a", depth=2)
    assert exact.truncated  # loop_c -> loop_a was not followed
    full = reader.downstream("dataset:s3/raw", depth=10)
    assert not full.truncated
    leaf = reader.upstream("dataset:wh/clean", depth=1)
    assert leaf.nodes == {"dataset:wh/clean": 0, "dataset:s3/raw": 1}
    assert not leaf.truncated  # raw has nothing further upstream


def test_depth_zero_is_just_the_root(reader: LineageReader) -> None:
    g = reader.upstream("model:ml/churn", depth=0)
    assert g.nodes == {"model:ml/churn": 0}
    assert g.edges == []
    assert g.truncated


def test_unknown_node(reader: LineageReader) -> None:
    with pytest.raises(NodeNotFound, match="kind:namespace/name"):
        reader.upstream("model:ml/nope")
    with pytest.raises(NodeNotFound):
        reader.downstream("model:ml/nope", depth=0)
    # A source node has no upstream but exists: an empty graph, not an error.
    g = reader.upstream("dataset:s3/raw")
    assert g.nodes == {"dataset:s3/raw": 0}
    assert g.edges == []


def test_render_tree_marks_repeats(reader: LineageReader) -> None:
    text = render_tree(reader.upstream("model:ml/churn"))
    assert text == "\n".join(
        [
            "model:ml/churn",
            "└── feature:fs/features [TRAINED_ON]",
            "    ├── dataset:wh/clean [DERIVED_FROM]",
            "    │   └── dataset:s3/raw [DERIVED_FROM]",
            "    └── dataset:wh/other [DERIVED_FROM]",
            "        └── dataset:s3/raw [DERIVED_FROM] (seen above)",
        ]
    )


def test_render_tree_cycle_and_truncation(reader: LineageReader) -> None:
    text = render_tree(reader.downstream("report:x/loop_a"))
    assert text.splitlines() == [
        "report:x/loop_a",
        "└── report:x/loop_b [DERIVED_FROM]",
        "    └── report:x/loop_c [DERIVED_FROM]",
        "        └── report:x/loop_a [DERIVED_FROM] (seen above)",
    ]
    short = render_tree(reader.downstream("report:x/loop_a", depth=1))
    assert short.splitlines()[-1].startswith("... truncated at depth 1")


def test_to_json(reader: LineageReader) -> None:
    doc = to_json(reader.downstream("feature:fs/features", depth=1))
    assert doc["root"] == "feature:fs/features"
    assert doc["direction"] == "downstream"
    assert doc["truncated"] is True
    assert doc["nodes"] == [{"id": "feature:fs/features", "level": 0}, {"id": "model:ml/churn", "level": 1}]
    assert doc["edges"] == [{"src": "feature:fs/features", "dst": "model:ml/churn", "edge_type": "TRAINED_ON"}]


def test_json_round_trip(reader: LineageReader) -> None:
    g = reader.upstream("model:ml/churn", depth=2)
    assert LineageGraph.from_json(to_json(g)) == g
    with pytest.raises(ValueError, match="not a lineage graph"):
        LineageGraph.from_json({"root": "x"})


def test_health_figures_follow_the_latest_pass(ch_client: Client, ch_database: str) -> None:
    """A namespace whose last running run ended drops out of the next pass: it reads zero, not its old 1."""
    from sinks.rows import HEALTH
    from upriver.readside.health import HealthReader

    t1, t2 = utc_from_millis(1000), utc_from_millis(2000)
    rows = [(t1, "jobs", "running_runs", 1.0, 0, 0), (t1, "wh", "artifacts", 2.0, 0, 1)]
    rows.append((t2, "wh", "artifacts", 3.0, 0, 2))
    ClickHouseWriter(ch_client, ch_database).insert("health", rows, HEALTH.columns, HEALTH.types, "h")
    health = HealthReader(ch_client, ch_database)
    assert [(n["namespace"], n["artifacts"], n["running_runs"]) for n in health.health()["namespaces"]] == [
        ("wh", 3, 0)
    ]
    assert health.health("jobs")["namespaces"][0]["running_runs"] == 0
    assert health.health("jobs", as_of=1500)["namespaces"][0]["running_runs"] == 1
    with pytest.raises(LookupError):
        health.health("never")
