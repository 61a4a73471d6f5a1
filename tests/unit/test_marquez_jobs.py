"""Marquez's namespace, job and run routes (upriver/http/marquez/jobs.py) over embedded ClickHouse, loaded with
real producers' events (dbt-ol, the Python client, Flink, OpenLineage compatibility-tests scenarios) and a few
made here (names holding `/`, `%`, `#`, spaces and non-ASCII; a JobEvent; a DatasetEvent). Every expected value
is computed from the events themselves (tests/marquez_jobs_truth.py) by Marquez's rules as docs/marquez.md maps
them; 404 and 400 bodies are Marquez's (its exception classes and Dropwizard's validation messages)."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from clickhouse_connect.driver.client import Client
from marquez_calls import call, instant, ok
from marquez_jobs_truth import (
    DBT,
    EXPIRED,
    EXPIRED_AT,
    MERGE_NS,
    MERGED,
    MERGED_LATER,
    NO_RAW,
    ODD_JOB,
    ODD_NS,
    STATE,
    Oracle,
    RunTruth,
    events,
)
from marquez_spec import Contract
from tag_support import acknowledge, load_changes, tag

from schemas.openlineage import to_record
from sinks.raw_events import lineage_event_row
from sinks.rows import LINEAGE_EVENTS
from sinks.writer import ClickHouseWriter
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader


@pytest.fixture
def api(ch_client: Client, ch_database: str) -> tuple[LineageReader, Oracle]:
    docs = events()
    load(ClickHouseWriter(ch_client, ch_database), [to_record(e) for e in docs], derived_at=0)
    return LineageReader(ch_client, ch_database), Oracle(docs)


RECEIVED_MS = (time.time_ns() // 1_000_000_000 - 3600) * 1000  # raw events' Kafka timestamp: inside retention


def _raw_withheld(event: dict[str, Any]) -> bool:
    """The events whose raw copy is not in lineage_events: NO_RAW's (sent by an emitter that bypasses the
    raw table), EXPIRED's status-deciding COMPLETE (past retention)."""
    run = (event.get("run") or {}).get("runId")
    return run == NO_RAW or (run == EXPIRED and event["eventTime"] == EXPIRED_AT)


@pytest.fixture
def raw_api(ch_client: Client, ch_database: str) -> tuple[LineageReader, Oracle]:
    """The same events, also stored as received in lineage_events as the sink stores them (in the order sent:
    partition 0, offsets 0, 1, ...), but for the withheld ones."""
    docs = events()
    writer = ClickHouseWriter(ch_client, ch_database)
    load(writer, [to_record(e) for e in docs], derived_at=0)
    rows = [lineage_event_row(json.dumps(e, ensure_ascii=False).encode(), 0, i, RECEIVED_MS)
            for i, e in enumerate(docs) if not _raw_withheld(e)]  # fmt: skip
    writer.insert(LINEAGE_EVENTS.name, rows, LINEAGE_EVENTS.columns, LINEAGE_EVENTS.types, "raw")
    return LineageReader(ch_client, ch_database), Oracle(docs)


def job_path(ns: str, name: str, tail: str = "") -> str:
    return f"/api/v1/namespaces/{quote(ns, safe='')}/jobs/{quote(name, safe='')}{tail}"


def test_namespaces_are_every_job_and_dataset_namespace_by_name_paged(api: tuple[LineageReader, Oracle]) -> None:
    reader, truth = api
    want = sorted(truth.namespaces)
    assert {"job-namespace", ODD_NS, "s3://bücket", "declared", "dataset-events-only"} <= set(want)
    listed = ok(reader, "/api/v1/namespaces", limit=1000)["namespaces"]
    assert [n["name"] for n in listed] == want
    for n in listed:
        assert n["createdAt"] == n["updatedAt"] == instant(truth.namespaces[n["name"]])
        assert (n["ownerName"], n["description"], n["isHidden"]) == ("anonymous", None, False)
    assert [n["name"] for n in ok(reader, "/api/v1/namespaces", limit=3, offset=2)["namespaces"]] == want[2:5]
    assert len(ok(reader, "/api/v1/namespaces")["namespaces"]) == min(100, len(want))  # default limit 100
    assert ok(reader, f"/api/v1/namespaces/{quote(ODD_NS, safe='')}")["name"] == ODD_NS
    assert call(reader, "/api/v1/namespaces/nowhere") == (
        404,
        {"code": 404, "message": "Namespace 'nowhere' not found."},
    )


def test_a_namespace_s_jobs_newest_updated_first_with_paging_and_total(api: tuple[LineageReader, Oracle]) -> None:
    reader, truth = api
    want = truth.jobs(DBT)
    assert len(want) > 100  # dbt's models, tests and snapshots
    first = ok(reader, f"/api/v1/namespaces/{DBT}/jobs")
    assert first["totalCount"] == len(want) and len(first["jobs"]) == 100  # the default limit
    assert [(j["namespace"], j["name"]) for j in first["jobs"]] == want[:100]
    page = ok(reader, f"/api/v1/namespaces/{DBT}/jobs", limit=7, offset=95)
    assert [j["name"] for j in page["jobs"]] == [n for _, n in want[95:102]] and page["totalCount"] == len(want)
    assert ok(reader, f"/api/v1/namespaces/{DBT}/jobs", offset=len(want)) == {"jobs": [], "totalCount": len(want)}
    everywhere = ok(reader, "/api/v1/jobs", limit=10_000)
    assert [(j["namespace"], j["name"]) for j in everywhere["jobs"]] == truth.jobs()
    assert everywhere["totalCount"] == len(truth.jobs())
    assert ok(reader, "/api/v1/namespaces/nowhere/jobs") == {"jobs": [], "totalCount": 0}  # Marquez checks no namespace


def test_last_run_states_filter_on_the_latest_run_and_the_total_counts_every_job(
    api: tuple[LineageReader, Oracle],
) -> None:
    reader, truth = api
    for given in ("FAILED", "failed", "COMPLETED,FAILED"):
        states = set(given.upper().split(","))
        want = [k for k in truth.jobs(DBT) if not truth.job_runs(k) or STATE[truth.job_runs(k)[0].status] in states]
        found = ok(reader, f"/api/v1/namespaces/{DBT}/jobs", lastRunStates=given, limit=1000)
        assert [(j["namespace"], j["name"]) for j in found["jobs"]] == want, given
        assert all(j["latestRun"]["state"] in states for j in found["jobs"])
        assert found["totalCount"] == len(truth.jobs(DBT))  # Marquez's countFor ignores the filter
    assert 0 < sum(STATE[truth.job_runs(k)[0].status] == "FAILED" for k in truth.jobs(DBT)) < len(truth.jobs(DBT))
    assert call(reader, "/api/v1/jobs", lastRunStates="DONE") == (400, {
        "code": 400, "message": "query param lastRunStates must be one of [NEW, RUNNING, COMPLETED, ABORTED, FAILED, "
        "OTHER]"})  # fmt: skip


def _check_run(doc: dict[str, Any], run: RunTruth, facets: dict[str, Any] | None = None) -> None:
    """The run's Marquez fields; its facets `facets` (default: its status event's, what a run without raw
    events answers)."""
    started = run.started if run.start_seen else None
    assert doc["id"] == run.run_id and doc["state"] == STATE[run.status]
    assert (doc["createdAt"], doc["updatedAt"]) == (instant(run.started), instant(run.updated))
    assert (doc["startedAt"], doc["endedAt"]) == (instant(started), instant(run.ended))
    assert doc["durationMs"] == (None if started is None or run.ended is None else run.ended - started)
    assert doc["facets"] == (run.stored_facets("run") if facets is None else facets)
    assert (doc["jobVersion"]["namespace"], doc["jobVersion"]["name"]) == run.job
    assert uuid.UUID(doc["jobVersion"]["version"])
    ins = [(v["datasetVersionId"]["namespace"], v["datasetVersionId"]["name"]) for v in doc["inputDatasetVersions"]]
    outs = [(v["datasetVersionId"]["namespace"], v["datasetVersionId"]["name"]) for v in doc["outputDatasetVersions"]]
    assert (ins, outs) == (sorted(run.inputs), sorted(run.outputs))


def test_one_job_has_its_latest_runs_inputs_outputs_and_marquez_fields(api: tuple[LineageReader, Oracle]) -> None:
    reader, truth = api
    checked = 0
    for key in (
        truth.jobs("job-namespace") + truth.jobs(DBT)[:20] + truth.jobs("airflow") + truth.jobs("flink_job_namespace")
    ):
        runs = truth.job_runs(key)
        doc = ok(reader, job_path(*key))
        assert (doc["id"], doc["namespace"], doc["name"]) == ({"namespace": key[0], "name": key[1]}, *key)
        assert doc["createdAt"] == instant(min(r.started for r in runs))
        assert doc["updatedAt"] == instant(max(r.updated for r in runs))
        assert [r["id"] for r in doc["latestRuns"]] == [r.run_id for r in runs[:10]]
        assert doc["latestRun"] == doc["latestRuns"][0]
        for got, run in zip(doc["latestRuns"], runs, strict=False):
            _check_run(got, run)
        latest = runs[0]
        assert doc["inputs"] == [{"namespace": n, "name": m} for n, m in sorted(latest.inputs)]
        assert doc["outputs"] == [{"namespace": n, "name": m} for n, m in sorted(latest.outputs)]
        job_facets = latest.stored_facets("job")
        assert doc["facets"] == job_facets
        processing = (job_facets.get("jobType") or {}).get("processingType", "")
        assert doc["type"] == ("STREAM" if processing == "STREAMING" else "BATCH")
        assert doc["currentVersion"] == doc["latestRun"]["jobVersion"]["version"]
        checked += 1
    assert checked > 30
    assert any(ok(reader, job_path(*k))["type"] == "STREAM" for k in truth.jobs("flink_job_namespace"))


def test_parent_jobs_give_simple_names_as_marquez_derives_them(api: tuple[LineageReader, Oracle]) -> None:
    reader, _ = api
    upload = ok(reader, job_path("airflow", "BQ.upload"))
    assert (upload["simpleName"], upload["parentJobName"]) == ("upload", "BQ")
    assert uuid.UUID(upload["parentJobUuid"]) and upload["labels"] == ["TASK", "AIRFLOW"]
    top = ok(reader, job_path("airflow", "BQ"))
    assert (top["simpleName"], top["parentJobName"], top["parentJobUuid"]) == ("BQ", None, None)
    # the Python client's example names itself as its own parent: Marquez takes the name up to its last dot
    mytask = ok(reader, job_path("my-scheduler-namespace", "myjob.mytask"))
    assert (mytask["simpleName"], mytask["parentJobName"]) == ("mytask", "myjob")
    assert mytask["description"] == "string" and mytask["location"] is None


def test_a_job_s_runs_newest_started_first_paged(api: tuple[LineageReader, Oracle]) -> None:
    reader, truth = api
    key = max(truth.jobs(), key=lambda k: (len(truth.job_runs(k)), k))
    runs = sorted(truth.job_runs(key), key=lambda r: (r.start_seen, r.started, r.run_id), reverse=True)
    assert len(runs) >= 3
    found = ok(reader, job_path(*key, "/runs"))
    assert found["totalCount"] == len(runs) and [r["id"] for r in found["runs"]] == [r.run_id for r in runs]
    page = ok(reader, job_path(*key, "/runs"), limit=2, offset=1)
    assert [r["id"] for r in page["runs"]] == [r.run_id for r in runs[1:3]] and page["totalCount"] == len(runs)
    for got, run in zip(found["runs"], runs, strict=True):
        _check_run(got, run)


def test_a_run_and_its_facets(api: tuple[LineageReader, Oracle]) -> None:
    reader, truth = api
    run = truth.runs["ea041791-68bc-4ae1-bd89-4c8106a157e4"]  # the Python client's full example
    doc = ok(reader, f"/api/v1/jobs/runs/{run.run_id}")
    _check_run(doc, run)
    assert (doc["nominalStartTime"], doc["nominalEndTime"]) == ("2020-12-17T03:00:00.001Z", "2020-12-17T04:00:00.001Z")
    assert doc["args"] == {"nominal_start_time": "2020-12-17T03:00:00.001Z[UTC]",  # Java's ZonedDateTime.toString
                           "nominal_end_time": "2020-12-17T04:00:00.001Z[UTC]",
                           "run_id": "3f5e83fa-3480-44ff-99c5-ff943904e5e8", "name": "myjob.mytask",
                           "namespace": "my-scheduler-namespace"}  # fmt: skip
    assert list(doc["inputDatasetVersions"][0]["facets"]) == ["dataQualityAssertions"]
    assert list(doc["outputDatasetVersions"][0]["facets"]) == ["outputStatistics"]
    for kind, part in (("run", "run"), ("job", "job"), ("JOB", "job")):
        assert ok(reader, f"/api/v1/jobs/runs/{run.run_id}/facets", type=kind) == {
            "runId": run.run_id, "facets": run.stored_facets(part)}  # fmt: skip
    assert call(reader, f"/api/v1/jobs/runs/{run.run_id}/facets") == (
        400, {"errors": ["query param type must not be null"]})  # fmt: skip
    assert call(reader, f"/api/v1/jobs/runs/{run.run_id}/facets", type="edge") == (
        400, {"code": 400, "message": "query param type must be one of [RUN, JOB, DATASET]"})  # fmt: skip
    missing = "00000000-0000-0000-0000-000000000000"
    assert call(reader, f"/api/v1/jobs/runs/{missing}") == (
        404,
        {"code": 404, "message": f"Run '{missing}' not found."},
    )
    assert call(reader, f"/api/v1/jobs/runs/{missing}/facets", type="run")[0] == 404


def test_names_with_slashes_percent_hash_spaces_and_unicode_are_echoed_exactly(
    api: tuple[LineageReader, Oracle],
) -> None:
    reader, truth = api
    doc = ok(reader, job_path(ODD_NS, ODD_JOB))
    assert (doc["namespace"], doc["name"], doc["simpleName"]) == (ODD_NS, ODD_JOB, ODD_JOB)
    assert doc["inputs"] == [{"namespace": "s3://bücket", "name": "in/a%b.parquet"}]
    assert doc["outputs"] == [{"namespace": "s3://bücket", "name": "out/ü#1"}]
    runs = truth.job_runs((ODD_NS, ODD_JOB))
    assert [r["id"] for r in doc["latestRuns"]] == [r.run_id for r in runs]
    assert doc["latestRun"]["state"] == "RUNNING" and doc["latestRun"]["endedAt"] is None
    first = ok(reader, f"/api/v1/jobs/runs/{runs[1].run_id}")
    assert (first["startedAt"], first["endedAt"], first["durationMs"]) == (
        "2026-02-01T10:00:00.250Z", "2026-02-01T10:00:07Z", 6750)  # fmt: skip
    # the latest run carries no tags facet: the tags are the newest facet's (the first run's)
    assert doc["tags"] == ["pii"]
    listed = ok(reader, f"/api/v1/namespaces/{quote(ODD_NS, safe='')}/jobs")
    assert [j["name"] for j in listed["jobs"]] == [ODD_JOB] and listed["totalCount"] == 1
    assert listed["jobs"][0]["tags"] == ["pii"]
    assert ok(reader, job_path(ODD_NS, ODD_JOB, "/runs"))["totalCount"] == 2


def test_tags_written_through_the_tag_api_show_on_the_list_pages_as_on_the_job_page(
    api: tuple[LineageReader, Oracle], ch_client: Client, ch_database: str
) -> None:
    reader, truth = api
    # the odd job's `tags` facet says "pii" (its first run); the tag API removes that one and adds two: one
    # loaded into tag_changes as the sink loads it, one only acknowledged by Kafka so far
    load_changes(ch_client, ch_database, tag("REMOVE", "JOB", ODD_NS, ODD_JOB, "pii"),
                 tag("ADD", "JOB", ODD_NS, ODD_JOB, "loaded/by the sink #1"))  # fmt: skip
    acknowledge(reader, tag("ADD", "JOB", ODD_NS, ODD_JOB, "acknowledged: 名"))
    dbt = truth.jobs(DBT)[3]
    acknowledge(reader, tag("ADD", "JOB", *dbt, "nightly"))
    want = ["acknowledged: 名", "loaded/by the sink #1"]
    assert ok(reader, job_path(ODD_NS, ODD_JOB))["tags"] == want
    assert ok(reader, f"/api/v1/namespaces/{quote(ODD_NS, safe='')}/jobs")["jobs"][0]["tags"] == want
    everywhere = {(j["namespace"], j["name"]): j for j in ok(reader, "/api/v1/jobs", limit=10_000)["jobs"]}
    assert everywhere[(ODD_NS, ODD_JOB)]["tags"] == want and "nightly" in everywhere[dbt]["tags"]
    page = ok(reader, f"/api/v1/namespaces/{DBT}/jobs", limit=10)["jobs"]
    assert (page[3]["namespace"], page[3]["name"]) == dbt and "nightly" in page[3]["tags"]
    for job in page:  # every job of the page shows the tags its own page shows
        assert job["tags"] == ok(reader, job_path(job["namespace"], job["name"]))["tags"], job["name"]


def test_a_job_event_declares_a_job_without_runs_and_a_dataset_event_none(api: tuple[LineageReader, Oracle]) -> None:
    reader, _ = api
    doc = ok(reader, job_path("declared", "only/declared"))
    assert (doc["latestRun"], doc["latestRuns"]) == (None, None)
    assert doc["inputs"] == [{"namespace": "s3://bücket", "name": "in/a%b.parquet"}]
    assert doc["createdAt"] == doc["updatedAt"] == "2026-02-03T00:00:00Z"
    assert ok(reader, job_path("declared", "only/declared", "/runs")) == {"runs": [], "totalCount": 0}
    assert [j["name"] for j in ok(reader, "/api/v1/namespaces/declared/jobs")["jobs"]] == ["only/declared"]
    assert ok(reader, "/api/v1/namespaces/dataset-events-only/jobs") == {"jobs": [], "totalCount": 0}
    assert call(reader, job_path("dataset-events-only", "openlineage.dataset-event")) == (
        404, {"code": 404, "message": "Job 'openlineage.dataset-event' not found."})  # fmt: skip


def test_missing_jobs_and_bad_paging_answer_marquez_s_bodies(api: tuple[LineageReader, Oracle]) -> None:
    reader, _ = api
    assert call(reader, job_path("nowhere", "x")) == (404, {"code": 404, "message": "Namespace 'nowhere' not found."})
    assert call(reader, job_path("job-namespace", "a/b")) == (404, {"code": 404, "message": "Job 'a/b' not found."})
    assert call(reader, job_path("job-namespace", "a/b", "/runs")) == (
        404, {"code": 404, "message": "Job 'a/b' not found."})  # fmt: skip
    assert call(reader, job_path("nowhere", "x", "/runs"))[1]["message"] == "Namespace 'nowhere' not found."
    for path in ("/api/v1/jobs", "/api/v1/namespaces", "/api/v1/namespaces/job-namespace/jobs"):
        for name in ("limit", "offset"):
            assert call(reader, path, **{name: -1}) == (
                400, {"errors": [f"query param {name} must be greater than or equal to 0"]})  # fmt: skip
            status, body = call(reader, path, **{name: "ten"})
            assert status == 400 and body["code"] == 400 and name in body["message"]
    assert ok(reader, "/api/v1/jobs", limit=0)["jobs"] == []


def test_times_are_iso_instants_and_ids_uuids(api: tuple[LineageReader, Oracle]) -> None:
    reader, _ = api
    instant_re = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
    for job in ok(reader, "/api/v1/jobs", limit=50)["jobs"]:
        assert instant_re.match(job["createdAt"]) and instant_re.match(job["updatedAt"])
        for run in job["latestRuns"] or ():
            assert all(run[k] is None or instant_re.match(run[k]) for k in ("createdAt", "updatedAt", "startedAt",
                                                                            "endedAt"))  # fmt: skip
            assert set(run) == {"id", "createdAt", "updatedAt", "nominalStartTime", "nominalEndTime", "state",
                                "startedAt", "endedAt", "durationMs", "args", "jobVersion", "inputDatasetVersions",
                                "outputDatasetVersions", "facets"}  # fmt: skip
            for version in run["inputDatasetVersions"] + run["outputDatasetVersions"]:
                assert uuid.UUID(version["datasetVersionId"]["version"])
        assert set(job) == {"id", "type", "name", "simpleName", "parentJobName", "parentJobUuid", "createdAt",
                            "updatedAt", "namespace", "inputs", "outputs", "location", "description", "latestRun",
                            "latestRuns", "facets", "currentVersion", "labels", "tags"}  # fmt: skip


def test_answers_validate_against_marquez_s_openapi_schemas(api: tuple[LineageReader, Oracle]) -> None:
    reader, truth = api
    contract = Contract()  # tests/marquez_spec.py: Marquez's spec/openapi.yml with its documented fixes
    run_id = "ea041791-68bc-4ae1-bd89-4c8106a157e4"
    checks: list[tuple[str, str, dict[str, Any]]] = [
        ("/namespaces", "/api/v1/namespaces", {}),
        ("/namespaces/{namespace}", f"/api/v1/namespaces/{DBT}", {}),
        ("/namespaces/{namespace}/jobs", f"/api/v1/namespaces/{DBT}/jobs", {"limit": 20}),
        ("/jobs", "/api/v1/jobs", {"limit": 1000}),
        ("/jobs/runs/{id}", f"/api/v1/jobs/runs/{run_id}", {}),
        ("/jobs/runs/{id}/facets", f"/api/v1/jobs/runs/{run_id}/facets", {"type": "run"}),
        ("/jobs/runs/{id}/facets", f"/api/v1/jobs/runs/{run_id}/facets", {"type": "job"}),
    ]
    for key in (("airflow", "BQ.upload"), (ODD_NS, ODD_JOB), ("declared", "only/declared"), truth.jobs(DBT)[0]):
        checks.append(("/namespaces/{namespace}/jobs/{job}", job_path(*key), {}))
        checks.append(("/namespaces/{namespace}/jobs/{job}/runs", job_path(*key, "/runs"), {}))
    for spec_path, path, params in checks:
        body = ok(reader, path, **params)
        assert contract.errors(spec_path, "GET", 200, body) == [], path
    status, body = call(reader, "/api/v1/namespaces/nowhere")
    assert contract.errors("/namespaces/{namespace}", "GET", status, body) == []


# ---- facets merged over a run's raw events (upriver/readside/run_facets.py) -------------------------------


def _want(run: RunTruth, side: str) -> dict[str, Any]:
    """Marquez's facets of the run, over every event it received; NO_RAW has no raw event, so its status
    event's stand in (EXPIRED's merge over what is left, filled from the stored status event, is Marquez's)."""
    return run.stored_facets(side) if run.run_id == NO_RAW else run.facets(side)


def test_every_run_s_facets_are_merged_over_all_its_events(raw_api: tuple[LineageReader, Oracle]) -> None:
    reader, truth = raw_api
    differ = 0
    for key in truth.jobs():
        listed = ok(reader, job_path(*key, "/runs"), limit=1000)["runs"]
        assert {r["id"] for r in listed} == {r.run_id for r in truth.job_runs(key)}
        for doc in listed:
            run = truth.runs[doc["id"]]
            assert doc["facets"] == _want(run, "run"), doc["id"]
            differ += _want(run, "run") != run.stored_facets("run")
    assert differ >= 20  # runs whose events disagree: the stored status event alone would answer otherwise
    for run in truth.runs.values():
        if run.facets("run") == run.stored_facets("run") and run.facets("job") == run.stored_facets("job"):
            continue
        doc = ok(reader, f"/api/v1/jobs/runs/{run.run_id}")
        assert (doc["id"], doc["state"], doc["facets"]) == (run.run_id, STATE[run.status], _want(run, "run"))
        for side in ("run", "job"):
            got = ok(reader, f"/api/v1/jobs/runs/{run.run_id}/facets", type=side)
            assert got == {"runId": run.run_id, "facets": _want(run, side)}, (run.run_id, side)


def test_real_producers_facets_of_every_event_count(raw_api: tuple[LineageReader, Oracle]) -> None:
    reader, _ = raw_api
    # compatibility scenario airflow: the status event carries airflowState only; Marquez has them all
    airflow = "01936893-9751-7a91-a2a0-a51101a3970c"
    assert set(ok(reader, f"/api/v1/jobs/runs/{airflow}")["facets"]) == {
        "airflowDagRun", "airflowState", "nominalTime", "processing_engine"}  # fmt: skip
    assert set(ok(reader, f"/api/v1/jobs/runs/{airflow}/facets", type="job")["facets"]) == {
        "airflow", "jobType", "ownership"}  # fmt: skip
    # compatibility scenario CLL (Spark): spark_jobDetails is on its first RUNNING event only
    spark = "019127df-0850-72bc-b214-b255290588a6"
    sent = [e for e in events() if (e.get("run") or {}).get("runId") == spark]
    assert [e["eventType"] for e in sent] == ["START", "RUNNING", "RUNNING", "COMPLETE"]
    assert [("spark_jobDetails" in e["run"]["facets"]) for e in sent] == [False, True, False, False]
    facets = ok(reader, f"/api/v1/jobs/runs/{spark}")["facets"]
    assert facets["spark_jobDetails"] == sent[1]["run"]["facets"]["spark_jobDetails"]
    # spark_unknown, sent by another run of the scenario, is dropped (RunFacetsDao)
    unknown = "019127df-00a2-743c-b714-df7e6dcadb2b"
    assert any("spark_unknown" in e["run"]["facets"] for e in events() if (e.get("run") or {}).get("runId") == unknown)
    assert "spark_unknown" not in ok(reader, f"/api/v1/jobs/runs/{unknown}")["facets"]


def test_the_latest_event_time_wins_then_arrival_and_marquez_s_write_rules(raw_api: tuple[LineageReader, Oracle]
                                                                          ) -> None:  # fmt: skip
    reader, truth = raw_api
    sent = truth.runs[MERGED].sent
    start, complete, running, other = ((e.get("run") or {}).get("facets") or {} for e in sent)
    facets = ok(reader, f"/api/v1/jobs/runs/{MERGED}")["facets"]
    assert facets == {
        "nominalTime": complete["nominalTime"],  # COMPLETE (10:00:05) beats RUNNING (10:00:03), sent after it
        "spark.logicalPlan": start["spark.logicalPlan"],  # the first received
        "startOnly": start["startOnly"],  # only on START: still there
        "tie": other["tie"],  # the same eventTime as COMPLETE, received after it
        "lateArrival": running["lateArrival"],
        "nulled": running["nulled"],  # COMPLETE's null made no row
        "parent": complete["parentRun"],  # the Airflow integration's old name, read as parent
    }
    assert "spark_unknown" in start and "spark_unknown" not in facets
    jobs = [(e.get("job") or {}).get("facets") or {} for e in sent]
    assert ok(reader, f"/api/v1/jobs/runs/{MERGED}/facets", type="job")["facets"] == {
        "jobType": jobs[1]["jobType"], "documentation": jobs[0]["documentation"], "sql": jobs[1]["sql"],
        "ownership": jobs[2]["ownership"]}  # fmt: skip
    # the Run's nominal times are still its status event's (COMPLETE's)
    assert ok(reader, f"/api/v1/jobs/runs/{MERGED}")["nominalStartTime"] == "2026-03-01T02:00:00Z"


def test_a_job_s_facets_are_its_latest_run_s_merged(raw_api: tuple[LineageReader, Oracle]) -> None:
    reader, truth = raw_api
    later = truth.runs[MERGED_LATER].sent  # START: jobType STREAMING, documentation; RUNNING: ownership
    want = {**later[0]["job"]["facets"], **later[1]["job"]["facets"]}
    doc = ok(reader, job_path(MERGE_NS, "merged/job"))
    assert doc["latestRun"]["id"] == MERGED_LATER and doc["facets"] == want
    assert (doc["type"], doc["description"]) == ("STREAM", "second run")  # read from START's job facets
    assert doc["latestRun"]["facets"] == later[1]["run"]["facets"]
    assert [r["facets"] for r in doc["latestRuns"]] == [truth.runs[r].facets("run") for r in (MERGED_LATER, MERGED)]
    listed = {(j["namespace"], j["name"]): j for j in ok(reader, "/api/v1/jobs", limit=10_000)["jobs"]}
    assert listed[(MERGE_NS, "merged/job")]["facets"] == want
    checked = 0
    for key in truth.jobs():
        runs = truth.job_runs(key)
        if runs:
            assert listed[key]["facets"] == _want(runs[0], "job"), key
            assert [r["facets"] for r in listed[key]["latestRuns"]] == [_want(r, "run") for r in runs[:10]], key
            checked += runs[0].facets("job") != runs[0].stored_facets("job")
    assert checked >= 2


def test_runs_without_raw_events_answer_their_status_event_s_facets(raw_api: tuple[LineageReader, Oracle]
                                                                   ) -> None:  # fmt: skip
    reader, truth = raw_api
    start, complete = truth.runs[NO_RAW].sent  # START's facet `a` is lost with its raw copy
    assert list(start["run"]["facets"]) == ["a"] and list(complete["run"]["facets"]) == ["b"]
    assert ok(reader, f"/api/v1/jobs/runs/{NO_RAW}")["facets"] == complete["run"]["facets"]
    assert ok(reader, f"/api/v1/jobs/runs/{NO_RAW}/facets", type="job")["facets"] == complete["job"]["facets"]
    # EXPIRED's COMPLETE is gone from the raw table: its facets fill in what the later OTHER lacks
    done, other = truth.runs[EXPIRED].sent
    want = {"x": other["run"]["facets"]["x"], "o": other["run"]["facets"]["o"], "c": done["run"]["facets"]["c"]}
    assert ok(reader, f"/api/v1/jobs/runs/{EXPIRED}")["facets"] == want
    assert ok(reader, f"/api/v1/jobs/runs/{EXPIRED}/facets", type="job")["facets"] == done["job"]["facets"]


def test_without_any_raw_event_every_facet_is_the_status_event_s(api: tuple[LineageReader, Oracle]) -> None:
    reader, truth = api
    run = truth.runs[MERGED]
    assert ok(reader, f"/api/v1/jobs/runs/{MERGED}")["facets"] == run.stored_facets("run") != run.facets("run")
    assert ok(reader, f"/api/v1/jobs/runs/{MERGED}/facets", type="job")["facets"] == run.status_event["job"]["facets"]


class _Counting:
    """A client that records every query it runs (and its parameters)."""

    def __init__(self, client: Client) -> None:
        self._client, self.queries = client, list[tuple[str, dict[str, Any]]]()

    def query(self, query: str, parameters: dict[str, Any] | None = None) -> Any:
        self.queries.append((query, parameters or {}))
        return self._client.query(query, parameters=parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_page_of_runs_reads_its_raw_events_in_one_indexed_query(
    raw_api: tuple[LineageReader, Oracle], ch_client: Client, ch_database: str
) -> None:
    _, truth = raw_api
    counting = _Counting(ch_client)
    reader = LineageReader(counting, ch_database)  # type: ignore[arg-type]
    page = ok(reader, f"/api/v1/namespaces/{DBT}/jobs", limit=100)["jobs"]
    raw = [(q, p) for q, p in counting.queries if "lineage_events" in q]
    assert len(raw) == 1  # one for the whole page's runs
    asked = {r["id"] for j in page for r in j["latestRuns"] or ()}
    assert len(asked) > 100 and set(raw[0][1]["ids"]) == asked
    counting.queries.clear()
    key = max(truth.jobs(), key=lambda k: (len(truth.job_runs(k)), k))
    ok(reader, job_path(*key, "/runs"))
    assert sum("lineage_events" in q for q, _ in counting.queries) == 1
    # the lookup reads through the run_id index (sinks/ddl/008_lineage_events_run_index.sql)
    sql, params = raw[0]
    plan = "\n".join(str(r[0]) for r in ch_client.query(f"EXPLAIN indexes = 1 {sql}", parameters=params).result_rows)
    assert "by_run_id" in plan, plan
