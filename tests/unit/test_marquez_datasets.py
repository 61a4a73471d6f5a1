"""Marquez's dataset, dataset-version, source and search routes (upriver/http/marquez/datasets.py, search.py,
open_search.py) over embedded ClickHouse, loaded with real producers' events (dbt-ol, the Python client, Flink,
OpenLineage compatibility-tests scenarios) and a few made here (names holding `/`, `%`, `#`, `:`, spaces and
non-ASCII; reads before writes; a failed write; producer versions; a DatasetEvent with tags). Every expected
value is computed below from the events (`Truth`) by the rules docs/marquez.md states for Marquez's model:
runs merged per runId, a dataset's facets those sent since its latest write, a version per write, its first
source kept; 404 and 400 bodies are Marquez's (its exception classes, Dropwizard's messages). Answers are also
checked against Marquez's own OpenAPI schemas (tests/marquez_spec.py)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from clickhouse_connect.driver.client import Client
from compat_support import scenario_events
from marquez_calls import call, instant, ms, ok
from marquez_spec import Contract
from tag_support import acknowledge, load_changes, tag

from schemas.openlineage import to_record
from sinks.writer import ClickHouseWriter
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage-corpus"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/client/python"
SCHEMA = "https://openlineage.io/spec/facets/1-0-0/Facet.json"
TERMINAL = {"COMPLETE": 1, "ABORT": 2, "FAIL": 3}
OPEN = {"OTHER": 0, "START": 1, "RUNNING": 2}
NOT_DATASET_FACETS = {"outputStatistics", "icebergCommitReport"}  # Marquez's OUTPUT facets
DBT_NS = "postgres://postgres:5432"
NS, JOB_NS = "s3://bücket/raw zone#1", "sched/odd: ünï"  # names sent as they are; path segments percent-encoded
READ_ONLY, WRITTEN, LATER, VERSIONED, EVENTED = "in/a%b:c.parquet", "out/ü#1 名", "later/written", "v/ed", "ds/event"
LAKE = {"name": "lake", "uri": "s3://bücket/raw"}


def t(second: int) -> str:
    return f"2026-03-01T00:00:{second:02d}.{second * 7 % 1000:03d}Z"


def schema(*fields: tuple[str, str, str | None]) -> dict[str, Any]:
    return {"fields": [{"name": n, "type": k, **({"description": d} if d else {})} for n, k, d in fields]}


def stamped(facets: dict[str, Any] | None) -> dict[str, Any]:
    """Facets as clients send them: each with `_producer` and `_schemaURL`."""
    return {k: {"_producer": PRODUCER, "_schemaURL": f"{SCHEMA}#/$defs/{k}", **v} for k, v in (facets or {}).items()}


def ds(name: str, facets: dict[str, Any] | None = None, **run_facets: dict[str, Any]) -> dict[str, Any]:
    return {"namespace": NS, "name": name, "facets": stamped(facets), **{k: stamped(v) for k, v in run_facets.items()}}


def event(run: str, etype: str, at: str, job: str, ins: Any = (), outs: Any = ()) -> dict[str, Any]:
    job = {"namespace": JOB_NS, "name": job, "facets": {}}
    return {"eventType": etype, "eventTime": at, "producer": PRODUCER, "run": {"runId": run, "facets": {}},
            "job": job, "inputs": list(ins), "outputs": list(outs)}  # fmt: skip


R = [f"5a0c8e1e-0000-4000-8000-00000000000{i}" for i in range(8)]
IDENTITY = [{"type": "DIRECT", "subtype": "IDENTITY"}]
CLL = {"fields": {"name": {"inputFields": [{"namespace": NS, "name": READ_ONLY, "field": "id",
                                            "transformations": IDENTITY}]}}}  # fmt: skip
V1 = schema(("id", "INT", "the id"), ("name", "STRING", None))


def made_here() -> list[dict[str, Any]]:
    first_read = ds(READ_ONLY, {"schema": schema(("id", "INT", None)), "dataSource": LAKE})
    return [
        # r1 reads READ_ONLY and LATER, writes WRITTEN (no dataSource: its source stays Marquez's default)
        event(R[1], "START", t(1), "job/one", [first_read, ds(LATER)], [ds(WRITTEN, {"schema": V1})]),
        event(R[1], "COMPLETE", t(5), "job/one", [first_read, ds(LATER)],
              [ds(WRITTEN, {"schema": V1, "documentation": {"description": "first"}, "columnLineage": CLL},
                  outputFacets={"outputStatistics": {"rowCount": 3}})]),
        # r3 reads WRITTEN (an input facet of the current version, until the next write)
        event(R[3], "COMPLETE", t(7), "job/check",
              [ds(WRITTEN, {"schema": V1}, inputFacets={"dataQualityAssertions": {"assertions": []}})]),
        # r2 writes WRITTEN again and fails: a new version all the same, facets from it only
        event(R[2], "START", t(10), "job/one", [ds(READ_ONLY)], [ds(WRITTEN)]),
        event(R[2], "FAIL", t(12), "job/one", [ds(READ_ONLY)],
              [ds(WRITTEN, {"schema": schema(("id", "BIGINT", None)), "dataSource": LAKE,
                            "lifecycleStateChange": {"lifecycleStateChange": "DROP"}})]),
        event(R[4], "COMPLETE", t(20), "job/two", [ds(READ_ONLY)],
              [ds(LATER), ds(VERSIONED, {"version": {"datasetVersion": "7"}})]),
        event(R[5], "COMPLETE", t(25), "job/two", outs=[ds(VERSIONED, {"version": {"datasetVersion": "7"}})]),
        event(R[6], "COMPLETE", t(30), "job/two", outs=[ds(VERSIONED, {"version": {"datasetVersion": "8"}})]),
        {"eventTime": t(40), "producer": PRODUCER,
         "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
         "dataset": ds(EVENTED, {"schema": schema(("email", "STRING", None)), "tags": {"tags": [
             {"key": "pii", "value": "true", "source": "MANUAL"},
             {"key": "sensitive", "value": "true", "source": "MANUAL", "field": "email"}]}})},
    ]  # fmt: skip


def events() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name in ("dbt-postgres-duckdb", "python-client", "flink1"):
        found += [json.loads(line) for line in (CORPUS / f"{name}.ndjson").read_text().splitlines() if line.strip()]
    for scenario in ("airflow", "CLL", "spark_dataproc_simple_producer_test"):
        found += scenario_events(scenario)
    return found + made_here()


@dataclass
class RunSeen:
    """One run as Upriver merges it: its events' times, status, and per dataset and side the facets and
    version of the latest event naming it (an event with a version first)."""

    run_id: str
    design: bool = False
    times: list[int] = field(default_factory=list)
    winner: tuple[Any, ...] = ()
    sides: dict[tuple[str, tuple[str, str]], tuple[tuple[bool, int], dict[str, Any], str]] = field(default_factory=dict)

    def add(self, doc: dict[str, Any], datasets: list[tuple[str, dict[str, Any]]]) -> None:
        etype, at = doc.get("eventType") or "OTHER", ms(doc["eventTime"])
        self.times.append(at)
        key = (2, at, TERMINAL[etype]) if etype in TERMINAL else (1, OPEN.get(etype, 0), at)
        if key > self.winner[:3]:
            self.winner = (*key, etype)
        for side, d in datasets:
            facets = {**(d.get("facets") or {}), **(d.get("inputFacets" if side == "in" else "outputFacets") or {})}
            version = str((facets.get("version") or {}).get("datasetVersion") or "")
            rank = (bool(version), at)
            name = (side, (d["namespace"], d["name"]))
            if name not in self.sides or rank > self.sides[name][0]:
                self.sides[name] = (rank, facets, version)

    @property
    def status(self) -> str:
        return str(self.winner[-1])

    @property
    def t0(self) -> int:
        return min(self.times)

    @property
    def t(self) -> int:
        return int(self.winner[1]) if self.status in TERMINAL else self.t0


class Truth:
    """What Marquez's model makes of the events for datasets (docs/marquez.md's mapping)."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.runs: dict[Any, RunSeen] = {}
        for doc in docs:
            if "run" in doc:
                seen = self.runs.setdefault(doc["run"]["runId"], RunSeen(doc["run"]["runId"]))
                sides = [("in", d) for d in doc.get("inputs") or ()] + [("out", d) for d in doc.get("outputs") or ()]
                seen.add(doc, sides)
            elif "dataset" in doc:  # a DatasetEvent: one declaration per dataset, a write without a run
                key = ("dataset", doc["dataset"]["namespace"], doc["dataset"]["name"])
                self.runs.setdefault(key, RunSeen(str(key), design=True)).add(doc, [("in", doc["dataset"])])

    def rows(self, key: tuple[str, str]) -> list[tuple[RunSeen, bool, dict[str, Any], str]]:
        """(run, written, facets, version) of every run naming the dataset."""
        out = []
        for run in self.runs.values():
            for side in ("in", "out"):
                if (side, key) in run.sides:
                    _, facets, version = run.sides[(side, key)]
                    out.append((run, side == "out" or run.design, facets, version))
        assert len({r[0].run_id for r in out}) == len(out), f"{key} on both sides of a run: the rules tie"
        return out

    def dataset(self, key: tuple[str, str]) -> dict[str, Any]:
        rows = self.rows(key)
        written = [r for r in rows if r[1]]
        since = max((r[0].t for r in written), default=0)
        facets: dict[str, Any] = {}
        for run, _, found, _ in sorted(rows, key=lambda r: (r[0].t, r[0].run_id)):
            if run.t >= since:
                facets.update(found)
        first = min(rows, key=lambda r: (r[0].t0, r[0].run_id))
        source = next((r for r in sorted(rows, key=lambda r: (r[0].t0, r[0].run_id)) if "dataSource" in r[2]), None)
        completes = [r[0].t for r in written if r[0].status == "COMPLETE" and not r[0].design]
        return {
            "facets": {k: v for k, v in facets.items() if k not in NOT_DATASET_FACETS},
            "createdAt": instant(min(r[0].t0 for r in rows)),
            "updatedAt": instant(max(r[0].t for r in rows)),
            "lastModifiedAt": instant(max(completes)) if completes else None,
            "sourceName": source[2]["dataSource"]["name"] if source and source[0].t0 == first[0].t0 else "default",
            "current": max(written, key=lambda r: (r[0].t, r[0].run_id))[0].run_id if written else "",
        }

    def versions(self, key: tuple[str, str]) -> list[tuple[str, int]]:
        """(writing run, "" for a first read's version; created) newest first, one per producer version."""
        rows = self.rows(key)
        writes = sorted((r for r in rows if r[1]), key=lambda r: (r[0].t0, r[0].run_id), reverse=True)
        found, seen = [], set()
        for run, _, _, version in writes:
            if (version or run.run_id) not in seen:
                seen.add(version or run.run_id)
                found.append((run.run_id, run.t0))
        reads = [r[0].t0 for r in rows if not r[1]]
        if reads and (not writes or min(reads) < min(r[0].t0 for r in writes)):
            found.append(("", min(reads)))
        return found


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return events()


@pytest.fixture
def api(ch_client: Client, ch_database: str, docs: list[dict[str, Any]]) -> tuple[LineageReader, Truth]:
    load(ClickHouseWriter(ch_client, ch_database), [to_record(e) for e in docs], derived_at=0)
    return LineageReader(ch_client, ch_database), Truth(docs)


def path(namespace: str, name: str | None = None, rest: str = "") -> str:
    base = f"/api/v1/namespaces/{quote(namespace, safe='')}/datasets"
    return base if name is None else f"{base}/{quote(name, safe='')}{rest}"


def names_in(docs: list[dict[str, Any]], namespace: str) -> list[str]:
    found = set()
    for doc in docs:
        for d in [*(doc.get("inputs") or ()), *(doc.get("outputs") or ()), *([doc["dataset"]] if "dataset" in doc
                                                                            else [])]:  # fmt: skip
            if d["namespace"] == namespace:
                found.add(d["name"])
    return sorted(found)


def test_a_namespace_lists_its_datasets_by_name_with_paging_and_total(
    api: tuple[LineageReader, Truth], docs: list[dict[str, Any]]
) -> None:
    reader, _ = api
    names = names_in(docs, DBT_NS)
    assert len(names) > 10
    first = ok(reader, path(DBT_NS))
    assert [d["name"] for d in first["datasets"]] == names and first["totalCount"] == len(names)
    page = ok(reader, path(DBT_NS), limit=5, offset=5)
    assert [d["name"] for d in page["datasets"]] == names[5:10] and page["totalCount"] == len(names)
    assert ok(reader, path(DBT_NS), offset=len(names) + 3) == {"datasets": [], "totalCount": len(names)}
    assert ok(reader, path(DBT_NS), limit=0) == {"datasets": [], "totalCount": len(names)}
    odd = ok(reader, path(NS))
    assert [d["name"] for d in odd["datasets"]] == names_in(docs, NS) == sorted(
        [READ_ONLY, WRITTEN, LATER, VERSIONED, EVENTED])  # fmt: skip
    assert all(d["namespace"] == NS and d["id"] == {"namespace": NS, "name": d["name"]} for d in odd["datasets"])


def test_each_dataset_shows_its_current_facets_fields_times_and_source(
    api: tuple[LineageReader, Truth], docs: list[dict[str, Any]]
) -> None:
    reader, truth = api
    listed = {d["name"]: d for d in ok(reader, path(DBT_NS))["datasets"] + ok(reader, path(NS))["datasets"]}
    for namespace in (DBT_NS, NS):
        for name in names_in(docs, namespace):
            want, got = truth.dataset((namespace, name)), ok(reader, path(namespace, name))
            assert got == listed[name], name  # the list page shows what the dataset's own page shows
            assert got["facets"] == want["facets"], name
            schema_fields = want["facets"].get("schema", {}).get("fields", [])
            assert got["fields"] == [
                {"name": f["name"], "type": f.get("type"), "tags": got["fields"][i]["tags"],
                 "description": f.get("description")} for i, f in enumerate(schema_fields)
            ], name  # fmt: skip
            for key in ("createdAt", "updatedAt", "lastModifiedAt", "sourceName"):
                assert got[key] == want[key], (name, key)
            assert (got["type"], got["physicalName"], got["namespace"]) == ("DB_TABLE", name, namespace)
            doc = want["facets"].get("documentation") or {}
            assert got["description"] == doc.get("description")
            versions = ok(reader, path(namespace, name, "/versions"))["versions"]
            current = [v for v in versions if (v["createdByRun"] or {}).get("id", "") == want["current"]]
            if want["current"] and not current:  # a design-time write: no run recorded
                current = [v for v in versions if v["createdByRun"] is None]
            assert got["currentVersion"] == current[0]["version"], name


def test_a_failed_write_starts_a_version_and_drop_marks_the_dataset_deleted(api: tuple[LineageReader, Truth]) -> None:
    reader, _ = api
    got = ok(reader, path(NS, WRITTEN))
    assert got["fields"] == [{"name": "id", "type": "BIGINT", "tags": [], "description": None}]
    assert sorted(got["facets"]) == ["dataSource", "lifecycleStateChange", "schema"]  # r3's assertions predate r2
    assert (got["lastLifecycleState"], got["deleted"], got["description"]) == ("DROP", True, None)
    assert got["sourceName"] == "default"  # its first event had no dataSource facet; Marquez keeps the first
    assert (got["createdAt"], got["updatedAt"], got["lastModifiedAt"]) == (instant(ms(t(1))), instant(ms(t(12))),
                                                                           instant(ms(t(5))))  # fmt: skip
    assert got["createdAt"] == "2026-03-01T00:00:01.007Z"
    # CLL gives the input field's `transformations` only: Marquez stores the output field's own
    # transformationDescription and transformationType (OpenLineageDao.upsertColumnLineage), absent here
    assert got["columnLineage"] == [{
        "name": "name", "transformationDescription": None, "transformationType": None,
        "inputFields": [{"namespace": NS, "dataset": READ_ONLY, "field": "id", "transformationDescription": None,
                         "transformationType": None}]}]  # fmt: skip
    assert ok(reader, path(NS, READ_ONLY))["columnLineage"] is None
    assert ok(reader, path(NS, READ_ONLY))["sourceName"] == "lake"
    assert ok(reader, path(NS, READ_ONLY))["lastLifecycleState"] == ""


def test_versions_newest_first_with_the_run_that_wrote_each(api: tuple[LineageReader, Truth]) -> None:
    reader, truth = api
    for name in (READ_ONLY, WRITTEN, LATER, VERSIONED, EVENTED):
        got = ok(reader, path(NS, name, "/versions"))
        want = truth.versions((NS, name))
        assert got["totalCount"] == len(want), name
        assert [((v["createdByRun"] or {}).get("id", ""), v["createdAt"]) for v in got["versions"]] == [
            (run if run in R else "", instant(at)) for run, at in want], name  # fmt: skip
        assert len({v["version"] for v in got["versions"]}) == len(want)
        for v in got["versions"]:
            assert v["id"] == {"namespace": NS, "name": name, "version": v["version"]} and uuid.UUID(v["version"])
            assert ok(reader, path(NS, name, f"/versions/{v['version']}")) == v
    written = ok(reader, path(NS, WRITTEN, "/versions"))["versions"]
    assert [v["createdByRun"]["state"] for v in written] == ["FAILED", "COMPLETED"]
    assert written[1]["fields"] == [{"name": "id", "type": "INT", "tags": [], "description": "the id"},
                                    {"name": "name", "type": "STRING", "tags": [], "description": None}]  # fmt: skip
    assert sorted(written[1]["facets"]) == ["columnLineage", "documentation", "schema"]  # not outputStatistics
    assert (written[0]["lifecycleState"], written[1]["lifecycleState"]) == ("DROP", "")
    assert ok(reader, path(NS, WRITTEN, "/versions"), limit=1, offset=1) == {"versions": written[1:], "totalCount": 2}
    assert ok(reader, path(NS, WRITTEN, "/versions"), offset=5) == {"versions": [], "totalCount": 2}
    assert ok(reader, path(NS, LATER, "/versions"))["versions"][-1]["createdByRun"] is None  # its first read's
    assert [v["createdByRun"]["id"] for v in ok(reader, path(NS, VERSIONED, "/versions"))["versions"]] == [R[6], R[5]]


def test_tags_come_from_the_tags_facet_and_its_field_entries(api: tuple[LineageReader, Truth]) -> None:
    reader, _ = api
    got = ok(reader, path(NS, EVENTED))
    assert got["tags"] == ["pii"] and got["fields"] == [{"name": "email", "type": "STRING", "tags": ["sensitive"],
                                                         "description": None}]  # fmt: skip
    listed = next(d for d in ok(reader, path(NS))["datasets"] if d["name"] == EVENTED)
    assert (listed["tags"], listed["fields"]) == (got["tags"], got["fields"])
    (version,) = ok(reader, path(NS, EVENTED, "/versions"))["versions"]
    assert version["createdByRun"] is None and version["tags"] == ["pii"]


def test_tags_written_through_the_tag_api_show_on_the_list_page_as_on_the_dataset_page(
    api: tuple[LineageReader, Truth], docs: list[dict[str, Any]], ch_client: Client, ch_database: str
) -> None:
    reader, _ = api
    # EVENTED's `tags` facet says "pii" and, on field email, "sensitive": the tag API removes "pii" and adds a
    # dataset tag and a field tag (loaded into tag_changes as the sink loads them, or only acknowledged so far)
    load_changes(ch_client, ch_database, tag("REMOVE", "DATASET", NS, EVENTED, "pii"),
                 tag("ADD", "FIELD", NS, EVENTED, "PII", field="email"))  # fmt: skip
    acknowledge(reader, tag("ADD", "DATASET", NS, EVENTED, "gold/1 #x"), tag("ADD", "DATASET", NS, READ_ONLY, "raw"))
    dbt = names_in(docs, DBT_NS)[2]
    acknowledge(reader, tag("ADD", "DATASET", DBT_NS, dbt, "modelled"))
    got = ok(reader, path(NS, EVENTED))
    assert got["tags"] == ["gold/1 #x"]
    assert got["fields"] == [{"name": "email", "type": "STRING", "tags": ["PII", "sensitive"], "description": None}]
    for namespace in (NS, DBT_NS):
        listed = ok(reader, path(namespace))["datasets"]
        for d in listed:  # each shows the tags (and field tags) its own page shows
            one = ok(reader, path(namespace, d["name"]))
            assert (d["tags"], d["fields"]) == (one["tags"], one["fields"]), d["name"]
    tags = {d["name"]: d["tags"] for d in ok(reader, path(NS))["datasets"] + ok(reader, path(DBT_NS))["datasets"]}
    assert (tags[EVENTED], tags[READ_ONLY], tags[dbt]) == (["gold/1 #x"], ["raw"], ["modelled"])


def test_a_dataset_answers_under_every_name_it_was_sent_under(api: tuple[LineageReader, Truth]) -> None:
    """R__Datasets_view.sql joins each dataset_symlinks row (the name sent and each symlinks identifier), and
    findDatasetByName finds the row of the name asked: the path and the TABLE symlink are each a dataset row,
    echoing their own namespace and name, with the dataset's content (the datasets row: physical_name is
    the name sent). tests/unit/test_marquez_dataset_names.py covers every scenario name."""
    reader, _ = api
    events = scenario_events("spark_dataproc_simple_producer_test")
    sent = events[-1]["outputs"][0]
    (table,) = sent["facets"]["symlinks"]["identifiers"]  # a TABLE symlink: Upriver's node is named by it
    by_path, by_table = ok(reader, path(sent["namespace"], sent["name"])), ok(reader, path(table["namespace"],
                                                                                           table["name"]))  # fmt: skip
    assert (by_path["id"], by_path["namespace"], by_path["name"]) == (
        {"namespace": sent["namespace"], "name": sent["name"]}, sent["namespace"], sent["name"])  # fmt: skip
    assert (by_table["id"], by_table["namespace"], by_table["name"]) == (
        {"namespace": table["namespace"], "name": table["name"]}, table["namespace"], table["name"])  # fmt: skip
    same = ("physicalName", "fields", "facets", "createdAt", "updatedAt", "currentVersion", "columnLineage", "tags")
    assert {k: by_path[k] for k in same} == {k: by_table[k] for k in same}
    assert by_path["physicalName"] == sent["name"]
    inputs = [(d["namespace"], d["name"]) for d in events[-1]["inputs"]]
    symlink_of = {(d["namespace"], d["name"]): d["facets"]["symlinks"]["identifiers"][0] for d in events[-1]["inputs"]}
    for column in by_table["columnLineage"]:  # each input field names the source dataset, by a name it answers
        for f in column["inputFields"]:
            src = (f["namespace"], f["dataset"])
            assert src in inputs or src in {(s["namespace"], s["name"]) for s in symlink_of.values()}
            assert ok(reader, path(*src))["name"] == f["dataset"]
    listed = ok(reader, path(table["namespace"]))["datasets"]
    assert [d["name"] for d in listed] == [*sorted(s["name"] for s in symlink_of.values()), table["name"]]
    by_paths = ok(reader, path(sent["namespace"]))  # the names sent: their rows are listed too
    assert [d["name"] for d in by_paths["datasets"]] == sorted([sent["name"], *(n for _, n in inputs)])
    assert by_paths["totalCount"] == 2
    for name in (sent, table):
        versions = ok(reader, path(name["namespace"], name["name"], "/versions"))
        assert versions["totalCount"] == 1
        assert versions["versions"][0]["version"] == by_path["currentVersion"]


def test_missing_datasets_versions_and_bad_paging_answer_marquez_s_bodies(api: tuple[LineageReader, Truth]) -> None:
    reader, _ = api
    assert call(reader, path("nowhere")) == (404, {"code": 404, "message": "Namespace 'nowhere' not found."})
    assert call(reader, path("nowhere", "x")) == (404, {"code": 404, "message": "Namespace 'nowhere' not found."})
    assert call(reader, path(NS, "a/b #1")) == (404, {"code": 404, "message": "Dataset 'a/b #1' not found."})
    assert call(reader, path(NS, "a/b", "/versions")) == (404, {"code": 404, "message": "Dataset 'a/b' not found."})
    missing = str(uuid.uuid4())
    assert call(reader, path(NS, WRITTEN, f"/versions/{missing}")) == (
        404, {"code": 404, "message": f"Dataset version '{missing}' not found."})  # fmt: skip
    assert call(reader, path(NS, WRITTEN, "/versions/not-a-uuid"))[0] == 404
    for route in (path(NS), path(NS, WRITTEN, "/versions"), "/api/v1/sources"):
        for name in ("limit", "offset"):
            assert call(reader, route, **{name: -1}) == (
                400, {"errors": [f"query param {name} must be greater than or equal to 0"]})  # fmt: skip
            status, body = call(reader, route, **{name: "ten"})
            assert status == 400 and body["code"] == 400 and name in body["message"]
    assert ok(reader, "/api/v1/namespaces/" + quote(JOB_NS, safe="") + "/datasets") == {"datasets": [], "totalCount": 0}


def test_sources_are_the_data_source_facets_and_marquez_s_default(
    api: tuple[LineageReader, Truth], docs: list[dict[str, Any]]
) -> None:
    reader, _ = api
    named: dict[str, list[int]] = {}
    for doc in docs:
        for d in [*(doc.get("inputs") or ()), *(doc.get("outputs") or ()), *([doc["dataset"]] if "dataset" in doc
                                                                            else [])]:  # fmt: skip
            source = ((d.get("facets") or {}).get("dataSource") or {}).get("name") or "default"
            named.setdefault(source, [])
    got = ok(reader, "/api/v1/sources")["sources"]
    assert [s["name"] for s in got] == sorted(named)
    lake = ok(reader, "/api/v1/sources/lake")
    assert lake == next(s for s in got if s["name"] == "lake")
    times = {"createdAt": instant(ms(t(1))), "updatedAt": instant(ms(t(12)))}
    assert lake == {"type": "POSTGRESQL", "name": "lake", **times, "connectionUrl": "s3://b%C3%BCcket/raw",
                    "description": None}  # fmt: skip
    assert ok(reader, "/api/v1/sources/default")["connectionUrl"] == ""
    assert ok(reader, "/api/v1/sources", limit=2, offset=1)["sources"] == got[1:3]
    assert call(reader, "/api/v1/sources/" + quote("no/such ü", safe="")) == (
        404, {"code": 404, "message": "Source 'no/such ü' not found."})  # fmt: skip


def _jobs_updated(docs: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    truth = Truth(docs)
    by_job: dict[tuple[str, str], int] = {}
    for doc in docs:
        if "run" in doc:
            key = (doc["job"]["namespace"], doc["job"]["name"])
            by_job[key] = max(by_job.get(key, 0), truth.runs[doc["run"]["runId"]].t)
    return by_job


def test_search_answers_marquez_s_results_and_upriver_s_nodes(
    api: tuple[LineageReader, Truth], docs: list[dict[str, Any]]
) -> None:
    reader, _ = api
    updated = _jobs_updated(docs)
    mine = sorted(k for k in updated if k[0] == JOB_NS)
    got = ok(reader, "/api/v1/search", q="job/", filter="job")
    assert [(r["type"], r["namespace"], r["name"]) for r in got["results"]] == [("JOB", *k) for k in mine]
    assert got["totalCount"] == len(mine) == 3 and got["query"] == "job/"
    assert [r["nodeId"] for r in got["results"]] == [f"job:{ns}:{n}" for ns, n in mine]
    assert [r["updatedAt"] for r in got["results"]] == [instant(updated[k]) for k in mine]
    newest = ok(reader, "/api/v1/search", q="JOB/", filter="JOB", sort="UPDATE_AT")["results"]
    assert [r["name"] for r in newest] == [k[1] for k in sorted(mine, key=lambda k: -updated[k])]
    assert ok(reader, "/api/v1/search", q="job/", limit=2)["totalCount"] == 2
    wildcard = ok(reader, "/api/v1/search", q="v_ed")  # `_` matches one character, as in Marquez's ILIKE
    assert [(r["type"], r["name"], r["nodeId"]) for r in wildcard["results"]] == [
        ("DATASET", VERSIONED, f"dataset:{NS}:{VERSIONED}")]  # fmt: skip
    assert wildcard["nodes"] == []  # Upriver's search matches the text as it is
    assert [r["name"] for r in ok(reader, "/api/v1/search", q="名", filter="dataset")["results"]] == [WRITTEN]
    assert ok(reader, "/api/v1/search", q="/", namespace=NS, filter="DATASET")["totalCount"] == 5
    assert ok(reader, "/api/v1/search", q="job/", before="2026-03-01")["results"] == []
    assert ok(reader, "/api/v1/search", q="job/", after="2026-03-01")["totalCount"] == 3
    plain = ok(reader, "/api/v1/search", q="a")
    assert len(plain["results"]) == plain["totalCount"] == 10 and len(plain["nodes"]) == 20
    assert [r["name"] for r in plain["results"]] == sorted(r["name"] for r in plain["results"])
    native = ok(reader, "/api/v1/search", q="later/written")
    assert native["nodes"] == ["dataset:s3://bücket/raw zone%231/later%2Fwritten"]  # Upriver's id of (NS, LATER)


def test_search_refuses_as_marquez_and_upriver_do(api: tuple[LineageReader, Truth]) -> None:
    reader, _ = api
    assert call(reader, "/api/v1/search") == (400, {"error": "query parameter 'q' is required, e.g. q=orders",
                                                    "errors": ["query param q must not be blank"]})  # fmt: skip
    assert call(reader, "/api/v1/search", q="  ")[0] == 400
    message = "query param filter must be one of [DATASET, JOB]"
    assert call(reader, "/api/v1/search", q="a", filter="RUN") == (400, {"error": message, "code": 400,
                                                                         "message": message})  # fmt: skip
    assert call(reader, "/api/v1/search", q="a", sort="size")[1]["message"] == (
        "query param sort must be one of [NAME, UPDATE_AT]")  # fmt: skip
    assert call(reader, "/api/v1/search", q="a", limit=-1)[1]["errors"] == [
        "query param limit must be greater than or equal to 0"]  # fmt: skip
    assert call(reader, "/api/v1/search", q="a", before="1/2/2026")[1]["errors"] == [
        'query param before must match "^\\d{4}-\\d{2}-\\d{2}$"']  # fmt: skip
    assert ok(reader, "/api/v1/search", q="a", limit=0) == {"query": "a", "nodes": [], "totalCount": 0,
                                                             "results": []}  # fmt: skip


def test_v2beta_search_answers_hits_with_highlights(api: tuple[LineageReader, Truth]) -> None:
    reader, _ = api
    got = ok(reader, "/api/v2beta/search/datasets", q="BIGINT")
    assert [(h["namespace"], h["name"]) for h in got["hits"]] == [(NS, WRITTEN)]
    assert got["highlights"] == [{"facets.schema.fields.type": ["<em>BIGINT</em>"]}]
    assert got["hits"][0]["run_id"] == R[2] and got["hits"][0]["eventType"] == "FAIL"
    named = ok(reader, "/api/v2beta/search/datasets", q="ü#1")
    assert named["highlights"][0]["name"] == ["out/<em>ü#1</em> 名"]
    jobs = ok(reader, "/api/v2beta/search/jobs", q="JOB/T")
    assert [(h["namespace"], h["name"], h["type"]) for h in jobs["hits"]] == [(JOB_NS, "job/two", "BATCH")]
    assert jobs["highlights"] == [{"name": ["<em>job/t</em>wo"]}] and jobs["hits"][0]["run_id"] == R[6]
    assert call(reader, "/api/v2beta/search/jobs") == (400, {"errors": ["query param q must not be blank"]})


def test_answers_match_marquez_s_openapi_schemas(api: tuple[LineageReader, Truth]) -> None:
    reader, _ = api
    contract = Contract()
    checks = [
        ("/namespaces/{namespace}/datasets", path(NS), {}),
        ("/namespaces/{namespace}/datasets", path(DBT_NS), {}),
        ("/namespaces/{namespace}/datasets/{dataset}", path(NS, WRITTEN), {}),
        ("/namespaces/{namespace}/datasets/{dataset}/versions", path(NS, WRITTEN, "/versions"), {}),
        ("/namespaces/{namespace}/datasets/{dataset}/versions", path(NS, EVENTED, "/versions"), {}),
        ("/sources", "/api/v1/sources", {}),
        ("/sources/{source}", "/api/v1/sources/lake", {}),
        ("/search", "/api/v1/search", {"q": "o"}),
    ]
    for spec_path, route, params in checks:
        assert contract.errors(spec_path, "GET", 200, ok(reader, route, **params)) == [], route
    version = ok(reader, path(NS, WRITTEN, "/versions"))["versions"][0]["version"]
    one = ok(reader, path(NS, WRITTEN, f"/versions/{version}"))
    assert contract.errors("/namespaces/{namespace}/datasets/{dataset}/versions/{version}", "GET", 200, one) == []
    status, body = call(reader, path(NS, "nope"))
    assert contract.errors("/namespaces/{namespace}/datasets/{dataset}", "GET", status, body) == []
    # dbt-ol sends schema fields without a type; Marquez stores and answers them with `"type": null`
    # (LineageEvent.SchemaField and common/models/Field.java: @Nullable type; Dropwizard writes nulls), which
    # the document's Field schema refuses: tests/marquez_spec.py's workaround 11 lets it through
    typeless = ok(reader, path("bigquery", "random-gcp-project.dbt_test1.test_model_alias"))
    assert {"name": "id", "type": None, "tags": [], "description": None} in typeless["fields"]
    assert contract.errors("/namespaces/{namespace}/datasets/{dataset}", "GET", 200, typeless) == []


def test_column_lineage_carries_the_output_field_s_own_description_and_type(
    api: tuple[LineageReader, Truth], docs: list[dict[str, Any]]
) -> None:
    """Marquez stores, per (output field, input field), the output field's transformationDescription and
    transformationType (OpenLineageDao.upsertColumnLineage), and Dataset.columnLineage answers those: here the
    airflow scenario's BigQuery copy, whose output fields say "identical" / "IDENTITY"."""
    reader, _ = api
    ns, name = "bigquery", "mock-project.test.upload_cp"
    written = [d for e in docs for d in e.get("outputs") or () if (d["namespace"], d["name"]) == (ns, name)]
    facet = next(d["facets"]["columnLineage"] for d in written if "columnLineage" in (d.get("facets") or {}))
    got = {c["name"]: c for c in ok(reader, path(ns, name))["columnLineage"]}
    assert sorted(got) == sorted(facet["fields"])
    for column, spec in facet["fields"].items():
        want = (spec.get("transformationDescription"), spec.get("transformationType"))
        assert want[0] is not None  # the scenario gives them
        assert {(f["transformationDescription"], f["transformationType"]) for f in got[column]["inputFields"]} == {want}
        assert (got[column]["transformationDescription"], got[column]["transformationType"]) == want
        sources = {(i["namespace"], i["name"], i["field"]) for i in spec["inputFields"]}
        assert {(f["namespace"], f["dataset"], f["field"]) for f in got[column]["inputFields"]} == sources
