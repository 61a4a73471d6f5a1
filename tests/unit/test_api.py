"""upriver.http.routes (`handle`): JSON answers, 400 for bad parameters, 404 for unknown nodes and paths."""

from __future__ import annotations

from typing import Any

import pytest

from sinks.rows import EDGES, edge_row
from upriver.http.api import ApiError
from upriver.http.routes import handle
from upriver.readside.lineage import LineageReader


@pytest.fixture
def reader(ch_client: Any, ch_database: str) -> LineageReader:
    record = {
        "src": "dataset:w/raw", "dst": "model:r/m", "edge_type": "TRAINED_ON", "src_version": None,
        "dst_version": "v1", "run_id": "r", "job": "j", "event_id": "e", "event_time": 1_767_225_600_000,
        "derived_at": 1_767_225_600_000,
    }  # fmt: skip
    ch_client.insert(
        f"{ch_database}.{EDGES.name}", [edge_row(record, 0, 0)],
        column_names=list(EDGES.columns), column_type_names=list(EDGES.types),
    )  # fmt: skip
    return LineageReader(ch_client, ch_database)


def test_upstream_and_downstream(reader: LineageReader) -> None:
    up = handle(reader, "/api/v1/upstream", "node=model:r/m&depth=3")
    assert {n["id"] for n in up["nodes"]} == {"model:r/m", "dataset:w/raw"}
    down = handle(reader, "/api/v1/downstream", "node=dataset:w/raw")
    assert [(e["src"], e["dst"], e["edge_type"]) for e in down["edges"]] == [
        ("dataset:w/raw", "model:r/m", "TRAINED_ON")
    ]
    assert handle(reader, "/healthz", "") == {"status": "ok"}


@pytest.mark.parametrize(
    ("path", "query", "status", "fragment"),
    [
        ("/api/v1/upstream", "", 400, "'node' is required"),
        ("/api/v1/upstream", "node=model:r/m&depth=x", 400, "depth must be an integer"),
        ("/api/v1/upstream", "node=model:r/m&depth=0", 400, "between 1 and"),
        ("/api/v1/upstream", "node=model:r/unknown", 404, "no lineage"),
        ("/api/v1/nothing", "", 404, "no such endpoint"),
    ],
)
def test_errors_say_what_is_wrong(reader: LineageReader, path: str, query: str, status: int, fragment: str) -> None:
    with pytest.raises(ApiError) as info:
        handle(reader, path, query)
    assert info.value.status == status
    assert fragment in str(info.value)
