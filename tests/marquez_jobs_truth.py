"""The oracle of tests/unit/test_marquez_jobs.py: the events it loads (real producers' and a few made here) and
what Marquez's rules make of them, computed from the events alone (runs merged per runId, the terminal event
deciding state and end, jobs newest updated first), never from the code under test."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from compat_support import scenario_events
from marquez_calls import EPOCH, ms

CORPUS = Path(__file__).resolve().parent / "fixtures" / "openlineage-corpus"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/client/python"
STATE = {"START": "RUNNING", "RUNNING": "RUNNING", "OTHER": "RUNNING", "COMPLETE": "COMPLETED", "FAIL": "FAILED",
         "ABORT": "ABORTED"}  # fmt: skip
TERMINAL_RANK = {"COMPLETE": 1, "ABORT": 2, "FAIL": 3}
OPEN_RANK = {"OTHER": 0, "START": 1, "RUNNING": 2}
DBT = "dbt-test-namespace"  # the corpus's largest namespace (114 jobs)
ODD_NS, ODD_JOB = "spark://host:7077/a b#c", "dir/sub%job ünï 名"  # path segments percent-encoded


def _event(run: str, etype: str, t: str, ns: str, name: str, ins: Any = (), outs: Any = (), **job_facets: Any
           ) -> dict[str, Any]:  # fmt: skip
    job = {"namespace": ns, "name": name, "facets": job_facets}
    return {"eventType": etype, "eventTime": t, "producer": PRODUCER, "run": {"runId": run, "facets": {}}, "job": job,
            "inputs": list(ins), "outputs": list(outs)}  # fmt: skip


def _made_here() -> list[dict[str, Any]]:
    r1, r2 = "0b8f2a9e-1c3d-4e5f-8a7b-000000000001", "0b8f2a9e-1c3d-4e5f-8a7b-000000000002"
    src, dst = {"namespace": "s3://bücket", "name": "in/a%b.parquet"}, {"namespace": "s3://bücket", "name": "out/ü#1"}
    tags = {"tags": [{"key": "pii", "value": "true", "source": "MANUAL"}]}
    return [
        _event(r1, "START", "2026-02-01T10:00:00.250Z", ODD_NS, ODD_JOB, [src], [dst], tags=tags),
        _event(r1, "COMPLETE", "2026-02-01T10:00:07Z", ODD_NS, ODD_JOB, [src], [dst], tags=tags),
        _event(r2, "START", "2026-02-02T10:00:00Z", ODD_NS, ODD_JOB, [src], [dst]),
        {"eventTime": "2026-02-03T00:00:00Z", "producer": PRODUCER, "schemaURL":
            "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
         "job": {"namespace": "declared", "name": "only/declared", "facets": {}}, "inputs": [src], "outputs": [dst]},
        {"eventTime": "2026-02-04T00:00:00Z", "producer": PRODUCER, "schemaURL":
            "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
         "dataset": {"namespace": "dataset-events-only", "name": "lonely", "facets": {}}},
    ]  # fmt: skip


MERGE_NS = "facet-merge"  # the made-here runs whose events carry different facets
MERGED, MERGED_LATER, NO_RAW, EXPIRED = (f"0b8f2a9e-1c3d-4e5f-8a7b-0000000000f{i}" for i in range(1, 5))
EXPIRED_AT = "2026-03-01T12:00:01Z"  # the EXPIRED run's event whose raw copy is gone (past retention)


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/X.json", **fields}


def _with_facets(run: str, etype: str, t: str, name: str, run_facets: dict[str, Any], job_facets: dict[str, Any]
                 ) -> dict[str, Any]:  # fmt: skip
    job = {"namespace": MERGE_NS, "name": name, "facets": job_facets}
    return {"eventType": etype, "eventTime": t, "producer": PRODUCER, "run": {"runId": run, "facets": run_facets},
            "job": job, "inputs": [], "outputs": []}  # fmt: skip


def merge_events() -> list[dict[str, Any]]:
    """Runs whose events disagree, in the order sent: MERGED's RUNNING arrives after its COMPLETE and an OTHER
    shares the COMPLETE's eventTime; MERGED_LATER is the job's newer run; NO_RAW and EXPIRED lose raw events
    (all of them; the status-deciding one) in tests/unit/test_marquez_jobs.py."""
    nominal = [_facet(nominalStartTime=f"2026-03-01T0{h}:00:00Z") for h in (1, 2, 3)]
    job_type = [_facet(processingType=p, integration="SPARK", jobType=j) for p, j in
                (("BATCH", "JOB"), ("BATCH", "QUERY"), ("STREAMING", "JOB"))]  # fmt: skip
    parent = _facet(run={"runId": "0b8f2a9e-1c3d-4e5f-8a7b-0000000000e1"}, job={"namespace": MERGE_NS, "name": "up"})
    job = "merged/job"
    return [
        _with_facets(MERGED, "START", "2026-03-01T10:00:00.000001Z", job,
                     {"nominalTime": nominal[0], "spark.logicalPlan": _facet(plan="first"),
                      "spark_unknown": _facet(inputs=[]), "startOnly": _facet(v="s"), "tie": _facet(v="start")},
                     {"jobType": job_type[0], "documentation": _facet(description="first")}),
        _with_facets(MERGED, "COMPLETE", "2026-03-01T10:00:05Z", job,
                     {"nominalTime": nominal[1], "spark.logicalPlan": _facet(plan="second"), "parentRun": parent,
                      "nulled": None, "tie": _facet(v="complete")},
                     {"jobType": job_type[1], "sql": _facet(query="SELECT 1")}),
        _with_facets(MERGED, "RUNNING", "2026-03-01T10:00:03Z", job,
                     {"nominalTime": nominal[2], "lateArrival": _facet(v="l"), "nulled": _facet(v=1)},
                     {"ownership": _facet(owners=[{"name": "team:a"}])}),
        _with_facets(MERGED, "OTHER", "2026-03-01T10:00:05Z", job, {"tie": _facet(v="other")}, {}),
        _with_facets(MERGED_LATER, "START", "2026-03-02T10:00:00Z", job, {},
                     {"jobType": job_type[2], "documentation": _facet(description="second run")}),
        _with_facets(MERGED_LATER, "RUNNING", "2026-03-02T10:01:00Z", job, {"progress": _facet(percent=50)},
                     {"ownership": _facet(owners=[{"name": "team:b"}])}),
        _with_facets(NO_RAW, "START", "2026-03-01T11:00:00Z", "merged/no raw events", {"a": _facet(v="a")},
                     {"sql": _facet(query="SELECT 2")}),
        _with_facets(NO_RAW, "COMPLETE", "2026-03-01T11:05:00Z", "merged/no raw events", {"b": _facet(v="b")},
                     {"documentation": _facet(description="no raw")}),
        _with_facets(EXPIRED, "COMPLETE", EXPIRED_AT, "merged/expired", {"x": _facet(v=1), "c": _facet(v="c")},
                     {"documentation": _facet(description="expired")}),
        _with_facets(EXPIRED, "OTHER", "2026-03-01T12:00:02Z", "merged/expired", {"x": _facet(v=2),
                     "o": _facet(v="o")}, {}),
    ]  # fmt: skip


def events() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name in ("dbt-postgres-duckdb", "python-client", "flink1"):
        found += [json.loads(line) for line in (CORPUS / f"{name}.ndjson").read_text().splitlines() if line.strip()]
    for scenario in ("airflow", "CLL"):
        found += scenario_events(scenario)
    return found + _made_here() + merge_events()


@dataclass
class RunTruth:
    run_id: str
    job: tuple[str, str]
    docs: set[str] = field(default_factory=set)
    times: list[int] = field(default_factory=list)
    winner: tuple[Any, ...] = ()
    status_event: dict[str, Any] = field(default_factory=dict)
    inputs: set[tuple[str, str]] = field(default_factory=set)
    outputs: set[tuple[str, str]] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)  # its events in the order they were sent

    def add(self, event: dict[str, Any]) -> None:
        etype, t = event.get("eventType") or "OTHER", ms(event["eventTime"])
        self.docs.add(json.dumps(event, sort_keys=True))
        self.sent.append(event)
        self.times.append(t)
        key = (2, t, TERMINAL_RANK[etype]) if etype in TERMINAL_RANK else (1, OPEN_RANK.get(etype, 0), t)
        if key > self.winner[:3]:
            self.winner, self.status_event = (*key, etype), event
        self.inputs |= {_canonical(d) for d in event.get("inputs") or ()}
        self.outputs |= {_canonical(d) for d in event.get("outputs") or ()}

    @property
    def status(self) -> str:
        return str(self.winner[-1])

    @property
    def started(self) -> int:
        return min(self.times)

    @property
    def ended(self) -> int | None:
        return int(self.winner[1]) if self.status in TERMINAL_RANK else None

    @property
    def updated(self) -> int:
        return self.started if self.ended is None else self.ended

    @property
    def start_seen(self) -> bool:
        return not (len(self.docs) == 1 and self.status in TERMINAL_RANK)

    def facets(self, side: str) -> dict[str, Any]:
        """What Marquez answers as the run's `side` ("run" or "job") facets, its events received in the order
        sent (`marquez_facets`)."""
        return marquez_facets(self.sent, side)

    def stored_facets(self, side: str) -> dict[str, Any]:
        """The facets of its status-deciding event alone, as Marquez would record that event's
        (`marquez_facets` of it): what stands in when the run has no raw events."""
        return marquez_facets([self.status_event], side)


def micros(text: str) -> int:
    """Epoch µs of an eventTime (Marquez's lineage_event_time is a Postgres timestamp: microseconds)."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ((t if t.tzinfo else t.replace(tzinfo=UTC)) - EPOCH) // timedelta(microseconds=1)


def marquez_facets(received: list[dict[str, Any]], side: str) -> dict[str, Any]:
    """Marquez's answer for one run's facets, written as its source works, given the run's events in the
    order Marquez received them. Write path (OpenLineageDao.insertRunFacets/insertJobFacets, LineageEvent's
    Jackson model): each event adds one row (event time, arrival, name, value) per facet; a null facet makes
    no row (Utils' NON_NULL mapper); a run facet `parentRun` is read as `parent` (@JsonAlias); run facets named
    spark_unknown (any case) are dropped, and one named spark.logicalPlan (any case) is skipped when the run
    already has a row of that name (RunFacetsDao.insertRunFacetsFor). Read path (findRunFacetsByRunUuid,
    MapperUtils.toFacetsOrNull): rows ordered by event time, ties in insertion order, folded into one object,
    a later row replacing an earlier one."""
    rows: list[tuple[int, int, str, Any]] = []
    for arrival, event in enumerate(received):
        given = (event.get(side) or {}).get("facets") or {}
        facets: dict[str, Any] = {}
        for name, value in given.items():  # Jackson fills the model field by field, in document order
            if side == "run" and name == "parentRun":
                name = "parent"
            facets[name] = value
        for name, value in facets.items():
            if value is None:
                continue
            if side == "run" and name.lower() == "spark_unknown":
                continue
            if side == "run" and name.lower() == "spark.logicalplan" and any(r[2] == name for r in rows):
                continue
            rows.append((micros(event["eventTime"]), arrival, name, value))
    folded: dict[str, Any] = {}
    for _, _, name, value in sorted(rows, key=lambda r: (r[0], r[1])):
        folded[name] = value
    return folded


def _canonical(ds: dict[str, Any]) -> tuple[str, str]:
    for ident in ((ds.get("facets") or {}).get("symlinks") or {}).get("identifiers") or ():
        if str(ident.get("type", "")).upper() == "TABLE":
            return ident["namespace"], ident["name"]
    return ds["namespace"], ds["name"]


class Oracle:
    """What Marquez's rules make of the events: runs per runId, jobs, namespaces with their first times."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.runs: dict[str, RunTruth] = {}
        self.declared: dict[tuple[str, str], int] = {}
        self.namespaces: dict[str, int] = {}
        for doc in docs:
            if "run" in doc:
                job = (doc["job"]["namespace"], doc["job"]["name"])
                truth = self.runs.setdefault(doc["run"]["runId"], RunTruth(doc["run"]["runId"], job))
                assert truth.job == job, "a runId reused by another job: the fixture set is ambiguous"
                truth.add(doc)
            elif "job" in doc:
                key = (doc["job"]["namespace"], doc["job"]["name"])
                self.declared[key] = min(ms(doc["eventTime"]), self.declared.get(key, 1 << 62))
        for truth in self.runs.values():
            for doc in (json.loads(d) for d in truth.docs):
                self._saw(doc, truth.started)
        for doc in docs:
            if "run" not in doc:
                self._saw(doc, ms(doc["eventTime"]))

    def _saw(self, doc: dict[str, Any], at: int) -> None:
        names = [doc["job"]["namespace"]] if "job" in doc else []
        for ds in [*(doc.get("inputs") or ()), *(doc.get("outputs") or ()), *([doc["dataset"]] if "dataset" in doc
                                                                              else [])]:  # fmt: skip
            names.append(ds["namespace"])
            names += [i["namespace"] for i in ((ds.get("facets") or {}).get("symlinks") or {}).get("identifiers") or ()]
        for name in names:
            self.namespaces[name] = min(at, self.namespaces.get(name, at))

    def job_runs(self, job: tuple[str, str]) -> list[RunTruth]:
        """Newest first, as a job's latestRuns."""
        found = [r for r in self.runs.values() if r.job == job]
        return sorted(found, key=lambda r: (r.updated, r.started, r.run_id), reverse=True)

    def jobs(self, namespace: str | None = None) -> list[tuple[str, str]]:
        """Newest updated first, then by namespace and name."""
        keys = {r.job for r in self.runs.values()} | set(self.declared)
        keys = {k for k in keys if namespace is None or k[0] == namespace}

        def updated(job: tuple[str, str]) -> int:
            return max([r.updated for r in self.job_runs(job)] + [self.declared.get(job, 0)])

        return sorted(keys, key=lambda k: (-updated(k), k))
