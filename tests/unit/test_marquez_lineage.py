"""`GET /api/v1/lineage?nodeId=&depth=` answers Marquez's graph: on the same events, the node set and edge set of
the reference model of Marquez's traversal (tests/marquez_truth.py, written from Marquez's SQL), at depths 2, 5,
10 and 20, for leaf, mid and hub datasets and jobs, on real producers' events (the OpenLineage corpus, the
compatibility scenarios) and on a seeded random multi-job graph (fan-in, fan-out, re-runs that change a job's io,
failed and aborted runs, runs still open, a dataset with two producers, jobs with no inputs or no outputs, a
streaming job). A few hand-worked cases pin the semantics without the model, and the answer's shape is
Marquez's (service/models/Node.java, Edge.java, JobData.java, DatasetData.java, Lineage.java).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from compat_support import NAMES, scenario_events
from marquez_truth import Graph, MarquezModel, MarquezNotFoundError, Vertex, model_of

from schemas.openlineage import to_record
from sinks.writer import ClickHouseWriter
from upriver.http.api import ApiError
from upriver.http.routes import handle
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage-corpus"
DEPTHS = (2, 5, 10, 20)
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/client/python"
Event = dict[str, Any]
# service/models/JobData.java and DatasetData.java: every field but the @JsonIgnore ones (uuid, inputUuids,
# outputUuids); Node.java's @JsonPropertyOrder; Run.java's getters (namespaceName, jobName, location ignored)
JOB_DATA = {"id", "type", "name", "simpleName", "parentJobName", "parentJobUuid", "currentRunUuid", "createdAt",
            "updatedAt", "namespace", "inputs", "outputs", "location", "description", "latestRun"}  # fmt: skip
DATASET_DATA = {"id", "type", "name", "physicalName", "createdAt", "updatedAt", "namespace", "sourceName", "fields",
                "tags", "lastModifiedAt", "description", "lastLifecycleState"}  # fmt: skip
RUN = {"id", "createdAt", "updatedAt", "nominalStartTime", "nominalEndTime", "state", "startedAt", "endedAt",
       "durationMs", "args", "jobVersion", "inputDatasetVersions", "outputDatasetVersions", "facets"}  # fmt: skip


class Loaded:
    """Events loaded into a fresh database, and the reference model fed the same events in the same order."""

    def __init__(self, client: Client, database: str, events: list[Event]) -> None:
        records = []
        for e in events:
            records.append(to_record(e))
        load(ClickHouseWriter(client, database), records, derived_at=0)
        self.reader = LineageReader(client, database)
        self.model = model_of(events)

    def answer(self, node_id: str, depth: int) -> dict[str, Any]:
        body = handle(self.reader, "/api/v1/lineage", f"nodeId={_q(node_id)}&depth={depth}")
        assert isinstance(body, dict)
        return body

    def graph(self, node_id: str, depth: int) -> Graph:
        """Upriver's answer as the model's vertices (a dataset drawn under another name than Marquez's is not)."""
        return as_model(self.model, self.answer(node_id, depth))

    def check(self, node_id: str, depth: int) -> None:
        want = self.model.lineage(node_id, depth)
        got = self.graph(node_id, depth)
        assert got in want, _diff(node_id, depth, got, want[0])


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def as_model(model: MarquezModel, body: dict[str, Any]) -> Graph:
    vertices: dict[str, Vertex] = {}
    for v in body["graph"]:
        ns, name = v["data"]["namespace"], v["data"]["name"]
        if v["type"] == "JOB":
            vertices[v["id"]] = ("JOB", ns, name)
        else:
            uuid = model.dataset(ns, name)  # Marquez names a dataset by the name it was first sent under
            named = uuid == (ns, name) and v["id"] == f"dataset:{ns}:{name}"
            vertices[v["id"]] = ("DATASET", ns, name) if named else ("NOT-MARQUEZ-S-NAME", ns, name)
    edges = {(vertices[e["origin"]], vertices[e["destination"]]) for v in body["graph"] for e in v["inEdges"]}
    edges |= {(vertices[e["origin"]], vertices[e["destination"]]) for v in body["graph"] for e in v["outEdges"]}
    return Graph(frozenset(vertices.values()), frozenset(edges))


def _diff(node_id: str, depth: int, got: Graph, want: Graph) -> str:
    return (
        f"{node_id} depth {depth}: extra nodes {sorted(got.nodes - want.nodes)},"
        f" missing {sorted(want.nodes - got.nodes)}"
        f"; extra edges {sorted(got.edges - want.edges)}, missing {sorted(want.edges - got.edges)}"
    )


def picks(model: MarquezModel) -> list[str]:
    """Marquez node ids of a leaf, a mid and a hub dataset and job: by how many datasets (jobs) the model's
    jobs touch (touch it), over every version, current or not."""
    touch: dict[tuple[str, str, str], set[Any]] = {}
    for job, _version, dataset, _io in model.mapping:
        touch.setdefault(("job", *job), set()).add(dataset)
        touch.setdefault(("dataset", *dataset), set()).add(job)
    for job in model.jobs:
        touch.setdefault(("job", *job), set())
    for uuid in set(model.names.values()):
        touch.setdefault(("dataset", *uuid), set())
    out = []
    for kind in ("dataset", "job"):
        ranked = sorted((len(v), k) for k, v in touch.items() if k[0] == kind)
        for _, (t, ns, name) in (ranked[0], ranked[len(ranked) // 2], ranked[-1]):
            out.append(f"{t}:{ns}:{name}")
    return list(dict.fromkeys(out))


def corpus(name: str) -> list[Event]:
    lines = (CORPUS / f"{name}.ndjson").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def in_time_order(events: list[Event]) -> list[Event]:
    """The events as Marquez would have received them from their producers: by event time (stable)."""
    return sorted(events, key=lambda e: e["eventTime"])


# ---- the model's answer on real producers' events and on a random graph -----------------------------------


@pytest.mark.parametrize("name", ["dbt-postgres-duckdb", "flink1", "python-client"])
def test_corpus_graphs_are_marquez_graphs(ch_client: Client, ch_database: str, name: str) -> None:
    loaded = Loaded(ch_client, ch_database, in_time_order(corpus(name)))
    nodes = picks(loaded.model)
    assert len(nodes) >= 4
    for node in nodes:
        for depth in DEPTHS:
            loaded.check(node, depth)


@pytest.mark.parametrize("name", NAMES)
def test_compatibility_scenario_graphs_are_marquez_graphs(ch_client: Client, ch_database: str, name: str) -> None:
    loaded = Loaded(ch_client, ch_database, in_time_order(scenario_events(name)))
    for node in picks(loaded.model):
        for depth in DEPTHS:
            loaded.check(node, depth)


def random_events(seed: int) -> Iterator[Event]:
    """A multi-job graph over datasets in namespaces with ':' and '/': source loaders (no inputs), fan-in and
    fan-out transforms, readers that write nothing (tests), a dataset with two producers, a job rewriting its
    own input, re-runs that change a job's io (and ones that leave inputs or outputs empty), failed and aborted
    runs, runs still open, a streaming job; inputs and outputs split across a run's events."""
    rng = random.Random(seed)
    spaces = ["warehouse", "s3://bucket/raw", "postgres://db:5432"]
    datasets = [(spaces[i % 3], f"schema.t{i:02d}" if i % 3 != 1 else f"t{i:02d}/part.parquet") for i in range(36)]
    plans: dict[str, list[tuple[list[int], list[int]]]] = {}
    for j in range(14):
        versions = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            ins = rng.sample(range(36), rng.choice((0, 1, 2, 3, 4))) if j >= 2 else []
            outs = rng.sample(range(36), rng.choice((1, 1, 2, 3))) if j < 12 else []
            versions.append((ins, outs))
        plans[f"job_{j:02d}"] = versions
    plans["job_00"].append(([], [5]))  # a second producer of t05 (see job_01)
    plans["job_01"] = [([], [5, 6])]
    plans["merge"] = [([7, 8], [7])]  # reads and rewrites t07
    plans["only_inputs_later"] = [([9], [10]), ([11], [])]  # the second version leaves outputs current
    t = 1_700_000_000
    runs = [(job, v) for job, versions in plans.items() for v in versions for _ in range(rng.choice((1, 2)))]
    rng.shuffle(runs)
    for n, (job, (ins, outs)) in enumerate(runs):
        run_id = f"{seed:04d}-run-{n:04d}"
        end = rng.choices(["COMPLETE", "FAIL", "ABORT", None], weights=(80, 10, 4, 6))[0]
        cut = rng.randint(0, len(ins))  # inputs split between START and the end
        early = outs if rng.random() < 0.3 else []  # outputs declared while running, too
        t += 1
        yield _event(run_id, job, "START", t, [datasets[i] for i in ins[:cut]], [datasets[i] for i in early])
        if end is not None:
            t += 1
            yield _event(run_id, job, end, t, [datasets[i] for i in ins[cut:]], [datasets[i] for i in outs])
    t += 1
    stream = ([datasets[2]], [datasets[3]])
    yield _event("stream-run", "streamer", "START", t, *stream, streaming=True)


def _event(run_id: str, job: str, etype: str, t: int, ins: list[tuple[str, str]], outs: list[tuple[str, str]],
           streaming: bool = False) -> Event:  # fmt: skip
    from datetime import UTC, datetime

    job_type = {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json",
                "processingType": "STREAMING", "integration": "FLINK", "jobType": "JOB"}  # fmt: skip
    facets = {"jobType": job_type} if streaming else {}
    return {
        "eventType": etype, "eventTime": datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z"),
        "producer": PRODUCER, "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "pipelines://etl:8080", "name": job, "facets": facets},
        "inputs": [{"namespace": ns, "name": n, "facets": {}} for ns, n in ins],
        "outputs": [{"namespace": ns, "name": n, "facets": {}} for ns, n in outs],
    }  # fmt: skip


@pytest.mark.parametrize("seed", [3, 11])
def test_random_graph_answers_are_marquez_graphs(ch_client: Client, ch_database: str, seed: int) -> None:
    events = list(random_events(seed))
    loaded = Loaded(ch_client, ch_database, events)
    model = loaded.model
    # the generator made what the test is about
    assert any(e["eventType"] in ("FAIL", "ABORT") for e in events)
    assert sum(1 for j in model.jobs.values() if not j.inputs and j.has_current) >= 2  # jobs with no inputs
    writers = {(d, j) for j, _v, d, io in model.mapping if io == "OUTPUT"}
    assert any(sum(1 for d2, _ in writers if d2 == d) >= 2 for d, _ in writers)  # a dataset with two producers
    ids = [f"dataset:{ns}:{name}" for ns, name in sorted(set(model.names.values()))]
    assert any(len(model.lineage(i, 2)[0].nodes) == 1 for i in ids)  # re-runs left datasets their job no longer touches
    assert any(model.lineage(i, 2) != model.lineage(i, 20) for i in ids)  # depth matters
    for node in picks(model):
        for depth in DEPTHS:
            loaded.check(node, depth)
    for uuid in sorted(set(model.names.values())):  # every dataset at the shallowest depth: the start job matters
        loaded.check(f"dataset:{uuid[0]}:{uuid[1]}", 2)
    for job in sorted(model.jobs):
        loaded.check(f"job:{job[0]}:{job[1]}", 2)


# ---- the semantics by hand (Marquez's SQL read directly, no model) ---------------------------------------


def _run(run_id: str, job: str, t: int, ins: list[str], outs: list[str], end: str | None = "COMPLETE") -> list[Event]:
    events = [_event(run_id, job, "START", t, [("wh", d) for d in ins], [])]
    if end is not None:
        events.append(_event(run_id, job, end, t + 1, [], [("wh", d) for d in outs]))
    return events


HAND = [
    *_run("r1", "load", 10, [], ["a"]),
    *_run("r2", "build", 20, ["a"], ["b"]),
    *_run("r3", "check_a", 30, ["a"], []),  # a sibling reader of a
    *_run("r4", "report", 40, ["b"], ["c"]),
    *_run("r5", "export", 50, ["c"], ["d"]),
    *_run("r6", "build", 60, ["a", "x"], ["b"], end="FAIL"),  # a failed run still makes build's current version
    *_run("r7", "old_writer", 70, [], ["gone"]),
    *_run("r8", "old_writer", 80, [], ["e"]),  # old_writer no longer writes "gone"
    *_run("r9", "load", 90, [], [], end=None),  # still open: changes nothing
    *_run("r10", "export", 100, ["z"], []),  # no outputs: d stays export's current output
]


@pytest.fixture
def hand(ch_client: Client, ch_database: str) -> Loaded:
    return Loaded(ch_client, ch_database, HAND)


def _names(body: dict[str, Any]) -> set[str]:
    return {v["id"] for v in body["graph"]}


def test_depth_counts_job_levels_through_siblings_in_both_directions(hand: Loaded) -> None:
    # report writes c (the start job); level 1: every job whose current io shares b or c: build (b; export read c
    # but r10 made z its current input); level 2: every job sharing a or x with build: load, and check_a, a
    # sibling reader of a; a dataset of a job reached is in the graph
    level0 = {"job:pipelines://etl:8080:report", "dataset:wh:b", "dataset:wh:c"}
    level1 = {"job:pipelines://etl:8080:build", "dataset:wh:a", "dataset:wh:x"}
    level2 = {"job:pipelines://etl:8080:load", "job:pipelines://etl:8080:check_a"}
    assert _names(hand.answer("dataset:wh:c", 0)) == level0
    assert _names(hand.answer("dataset:wh:c", 1)) == level0 | level1
    assert _names(hand.answer("dataset:wh:c", 2)) == level0 | level1 | level2
    assert _names(hand.answer("dataset:wh:c", 20)) == level0 | level1 | level2
    # from a job node the walk starts at that job; from a reader-only dataset, at its reader
    assert _names(hand.answer("job:pipelines://etl:8080:check_a", 1)) == {
        "job:pipelines://etl:8080:check_a", "dataset:wh:a", "job:pipelines://etl:8080:load",
        "job:pipelines://etl:8080:build", "dataset:wh:x", "dataset:wh:b"}  # fmt: skip
    export = {"job:pipelines://etl:8080:export", "dataset:wh:z", "dataset:wh:d"}
    assert _names(hand.answer("dataset:wh:z", 20)) == export
    for node, depth in (("dataset:wh:c", 1), ("dataset:wh:c", 2), ("job:pipelines://etl:8080:check_a", 1)):
        assert hand.graph(node, depth) in hand.model.lineage(node, depth)


def test_current_io_is_the_newest_version_with_inputs_and_the_newest_with_outputs(hand: Loaded) -> None:
    graph = {v["id"]: v for v in hand.answer("job:pipelines://etl:8080:export", 0)["graph"]}
    export = graph["job:pipelines://etl:8080:export"]
    # r10 (inputs z, no outputs) made z the current input and left d the current output
    assert [e["origin"] for e in export["inEdges"]] == ["dataset:wh:z"]
    assert export["outEdges"] == [{"origin": "job:pipelines://etl:8080:export", "destination": "dataset:wh:d"}]
    assert export["data"]["inputs"] == [{"namespace": "wh", "name": "z"}]
    assert export["data"]["outputs"] == [{"namespace": "wh", "name": "d"}]
    # build's failed run r6 is its newest version: inputs a and x
    build = {v["id"]: v for v in hand.answer("job:pipelines://etl:8080:build", 0)["graph"]}
    assert {e["origin"] for e in build["job:pipelines://etl:8080:build"]["inEdges"]} == {"dataset:wh:a", "dataset:wh:x"}
    assert build["job:pipelines://etl:8080:build"]["data"]["latestRun"]["state"] == "FAILED"


def test_a_dataset_its_job_no_longer_touches_or_no_version_touched_is_answered_alone(hand: Loaded) -> None:
    gone = hand.answer("dataset:wh:gone", 20)["graph"]
    assert [(v["id"], v["type"], v["inEdges"], v["outEdges"]) for v in gone] == [("dataset:wh:gone", "DATASET", [], [])]


def test_open_runs_make_no_version(ch_client: Client, ch_database: str) -> None:
    pending = [*_run("r11", "pending", 200, ["a"], ["only_open"], end=None),
               _event("r11", "pending", "RUNNING", 202, [], [("wh", "only_open")])]  # fmt: skip
    loaded = Loaded(ch_client, ch_database, [*HAND, *pending])
    assert _names(loaded.answer("dataset:wh:only_open", 5)) == {"dataset:wh:only_open"}
    alone = loaded.answer("job:pipelines://etl:8080:pending", 5)["graph"]
    assert [v["id"] for v in alone] == ["job:pipelines://etl:8080:pending"]  # lineage_outside_job_io
    assert alone[0]["data"]["latestRun"]["state"] == "RUNNING" and alone[0]["inEdges"] == []
    assert "job:pipelines://etl:8080:pending" not in _names(loaded.answer("dataset:wh:a", 20))


def test_the_start_of_a_dataset_is_its_newest_writer_even_among_two(ch_client: Client, ch_database: str) -> None:
    events = [*_run("w1", "first_writer", 10, ["p"], ["shared"]), *_run("w2", "second_writer", 20, ["q"], ["shared"]),
              *_run("w3", "first_writer", 30, ["p"], ["shared"]),  # the same version again: created_at stays 10
              *_run("rd", "reader", 40, ["shared"], ["out"])]  # fmt: skip
    loaded = Loaded(ch_client, ch_database, events)
    # depth 0: the start job alone with its io: second_writer's version (created 20) is newer than first_writer's
    assert _names(loaded.answer("dataset:wh:shared", 0)) == {
        "job:pipelines://etl:8080:second_writer", "dataset:wh:q", "dataset:wh:shared"}  # fmt: skip
    assert _names(loaded.answer("dataset:wh:out", 0)) == {
        "job:pipelines://etl:8080:reader", "dataset:wh:shared", "dataset:wh:out"}  # fmt: skip
    assert loaded.graph("dataset:wh:shared", 0) in loaded.model.lineage("dataset:wh:shared", 0)


def test_as_of_answers_the_graph_marquez_drew_then(hand: Loaded) -> None:
    # at t=45s (epoch seconds 1970 + 45: HAND's times) build's version is r2's (a -> b), export has not run
    body = handle(hand.reader, "/api/v1/lineage", "nodeId=dataset%3Awh%3Ac&depth=20&as_of=45000")
    assert isinstance(body, dict)
    assert "dataset:wh:x" not in _names(body) and "job:pipelines://etl:8080:export" not in _names(body)
    assert {"job:pipelines://etl:8080:report", "job:pipelines://etl:8080:build", "dataset:wh:a"} <= _names(body)


# ---- Marquez's shapes and refusals ------------------------------------------------------------------------


def test_vertices_edges_and_data_have_marquez_shapes_and_order(hand: Loaded) -> None:
    graph = hand.answer("dataset:wh:c", 20)["graph"]
    ids = [v["id"] for v in graph]
    assert ids == sorted(ids)  # Lineage.withSortedNodes: by NodeId string
    by_id = {v["id"]: v for v in graph}
    for v in graph:
        assert list(v) == ["id", "type", "data", "inEdges", "outEdges"]  # Node's @JsonPropertyOrder
        assert set(v["data"]) == (JOB_DATA if v["type"] == "JOB" else DATASET_DATA)
        for side, end in (("inEdges", "destination"), ("outEdges", "origin")):
            assert all(e[end] == v["id"] for e in v[side])
            pairs = [(e["origin"], e["destination"]) for e in v[side]]
            assert pairs == sorted(pairs)  # ImmutableSortedSet of Edge: origin, then destination
            other = "outEdges" if side == "inEdges" else "inEdges"
            assert all(e in by_id[e["origin" if side == "inEdges" else "destination"]][other] for e in v[side])
    report = by_id["job:pipelines://etl:8080:report"]["data"]
    assert report["id"] == {"namespace": "pipelines://etl:8080", "name": "report"} and report["type"] == "BATCH"
    assert set(report["latestRun"]) == RUN and report["latestRun"]["id"] == "r4" == report["currentRunUuid"]
    assert report["latestRun"]["state"] == "COMPLETED" and report["createdAt"] == "1970-01-01T00:00:40Z"
    c = by_id["dataset:wh:c"]["data"]
    assert (c["id"], c["type"], c["physicalName"], c["tags"]) == ({"namespace": "wh", "name": "c"}, "DB_TABLE", "c", [])
    assert c["lastModifiedAt"] == "1970-01-01T00:00:41Z"


def _refusal(reader: LineageReader, query: str) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiError) as info:
        handle(reader, "/api/v1/lineage", query)
    body = info.value.body()  # type: ignore[attr-defined]
    return info.value.status, body


def test_unknown_nodes_and_other_node_types_are_refused_as_marquez_refuses_them(hand: Loaded) -> None:
    # api/exceptions/DatasetNotFoundException, JobNotFoundException; service/NodeIdNotFoundException
    assert _refusal(hand.reader, "nodeId=dataset%3Awh%3Anothing") == (
        404, {"code": 404, "message": "Dataset 'nothing' not found."})  # fmt: skip
    assert _refusal(hand.reader, "nodeId=job%3Apipelines%3A%2F%2Fetl%3A8080%3Anobody") == (
        404, {"code": 404, "message": "Job 'nobody' not found."})  # fmt: skip
    assert _refusal(hand.reader, "nodeId=run%3Ar1") == (
        404, {"code": 404, "message": "Node 'run:r1' must be of type dataset or job!"})  # fmt: skip
    assert _refusal(hand.reader, "nodeId=run%3Anope") == (404, {"code": 404, "message": "Run 'nope' not found."})
    assert _refusal(hand.reader, "depth=3") == (400, {"errors": ["query param nodeId must not be null"]})


def test_the_model_refuses_what_marquez_refuses(hand: Loaded) -> None:
    for node in ("dataset:wh:nothing", "job:pipelines://etl:8080:nobody", "run:r1"):
        with pytest.raises(MarquezNotFoundError):
            hand.model.lineage(node, 2)


def test_upriver_ids_and_other_artifact_kinds_are_taken_as_marquez_nodes(ch_client: Client, ch_database: str) -> None:
    # every Upriver artifact is a Marquez dataset: a MODEL written by a training job answers to dataset:ns:name
    train = [to_record(e) for e in _run("t1", "train", 10, ["features"], ["churn"])]
    for record in train:
        for artifact in record["outputs"]:
            artifact.update(kind="MODEL", namespace="registry")
    load(ClickHouseWriter(ch_client, ch_database), train, derived_at=0)
    reader = LineageReader(ch_client, ch_database)
    for node in ("dataset:registry:churn", "model:registry/churn", "dataset:wh/features",
                 "job:pipelines://etl:8080/train", "job:pipelines://etl:8080:train"):  # fmt: skip
        body = handle(reader, "/api/v1/lineage", f"nodeId={_q(node)}&depth=5")
        assert isinstance(body, dict), node
        assert _names(body) == {"dataset:registry:churn", "dataset:wh:features", "job:pipelines://etl:8080:train"}
