"""A run's datasets as the Marquez routes answer them (upriver/readside/dataset_versions.py): every dataset
version a run names (Run.inputDatasetVersions, outputDatasetVersions, a version's createdByRun) is in that
dataset's versions list, and every dataset a run or job names is the dataset the datasets routes answer, so a
client follows run -> dataset -> versions -> version without a 404.

Loaded: the OpenLineage compatibility-tests scenario spark_dataproc_simple_producer_test_complete (a table
sent by path with symlinks to two other names: `hdfs://…/warehouse` `default.t2` from one run,
`hive://…:9083` `default.t2` from the next) and runs made here that read datasets before, between and after
their writes, with and without producer versions (the datasetVersion facet), at the same millisecond as a
write, reading what they write, and after a DatasetEvent.

The expected version of each input is derived here from the events alone, by Marquez's rule (an input is the
dataset version current when the run read it: OpenLineageDao.upsertLineageDataset) over the versions list's
rules (docs/marquez.md): the version of the producer version the input names when the dataset has one, else
the newest version created before the run started, else the oldest. The datasets' versions are their alias
groups' (docs/lineage-model.md, "Aliases"); a run names each dataset as its event sent it (RunDao: a run's
dataset versions carry dataset_versions.namespace_name/dataset_name, the event's own), a job every name of each
(JobVersionDao.findCurrentInputOutputDatasetsFor joins datasets_view, one row per dataset_symlinks name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from clickhouse_connect.driver.client import Client
from compat_support import scenario_events
from marquez_calls import instant, ms, ok
from marquez_spec import Contract

from schemas import identity
from schemas.openlineage import to_record
from sinks.writer import ClickHouseWriter
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.40.0/client/python"
VERSION_URL = (
    "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
)
TERMINAL = {"COMPLETE": 1, "ABORT": 2, "FAIL": 3}
OPEN = {"OTHER": 0, "START": 1, "RUNNING": 2}
SPARK = "spark_dataproc_simple_producer_test_complete"
NS, JOB_NS = "warehouse://versions", "versions-jobs"
PLAIN, VERSIONED, LOOP, FIRST, DECLARED = "plain/a b#1", "versioned", "self/loop", "read first ü", "declared"
T2 = ("hdfs://dataproc-producer-test-m/user/hive/warehouse", "default.t2")  # 'hdfs…' < 'hive…': the canonical


def at(second: int) -> str:
    return f"2026-04-01T00:00:{second:02d}Z"


def ds(name: str, version: str | None = None) -> dict[str, Any]:
    facets = {"version": {"_producer": PRODUCER, "_schemaURL": VERSION_URL, "datasetVersion": version}}
    return {"namespace": NS, "name": name, "facets": facets if version else {}}


def run(run_id: str, job: str, start: int, end: int | None, ins: Any = (), outs: Any = (), final: str = "COMPLETE"
        ) -> list[dict[str, Any]]:  # fmt: skip
    """A run's START and (unless `end` is None) its terminal event, both naming the same datasets."""

    def one(etype: str, second: int) -> dict[str, Any]:
        return {"eventType": etype, "eventTime": at(second), "producer": PRODUCER,
                "run": {"runId": run_id, "facets": {}}, "job": {"namespace": JOB_NS, "name": job, "facets": {}},
                "inputs": list(ins), "outputs": list(outs)}  # fmt: skip

    return [one("START", start)] + ([one(final, end)] if end is not None else [])


def rid(n: int) -> str:
    return f"7e1f0c2a-0000-4000-8000-{n:012d}"


def made_here() -> list[dict[str, Any]]:
    return [
        *run(rid(1), "read/early", 5, 6, [ds(PLAIN), ds(FIRST, "r0")]),  # before any write: the first reads
        *run(rid(2), "write/plain", 10, 12, [], [ds(PLAIN), ds(FIRST)]),
        *run(rid(3), "write/versioned", 10, 11, [], [ds(VERSIONED, "1")]),
        *run(rid(4), "read/mid", 15, 16, [ds(PLAIN), ds(FIRST), ds(VERSIONED, "9")]),  # "9" was never written
        *run(rid(5), "write/plain", 20, 22, [ds(VERSIONED)], [ds(PLAIN)], final="FAIL"),  # a failed write
        *run(rid(6), "write/versioned", 20, 21, [], [ds(VERSIONED, "2")]),
        *run(rid(7), "read/same-ms", 20, 23, [ds(PLAIN)]),  # starts with rid(5): rid(5)'s version is not yet
        *run(rid(8), "read/late", 25, None, [ds(PLAIN), ds(VERSIONED)]),  # still running
        *run(rid(9), "write/versioned", 30, 31, [], [ds(VERSIONED, "2")]),  # "2" again: one version
        *run(rid(10), "write/plain", 30, 32, [], [ds(PLAIN)]),
        *run(rid(11), "read/old", 35, 36, [ds(VERSIONED, "1"), ds(DECLARED)]),  # names "1", after "2" was written
        *run(rid(12), "loop", 50, 51, [ds(LOOP)], [ds(LOOP)]),  # reads what it writes, first to touch it
        *run(rid(13), "loop", 55, 56, [ds(LOOP)], [ds(LOOP)]),
        {"eventTime": at(8), "producer": PRODUCER,
         "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
         "dataset": {"namespace": NS, "name": DECLARED, "facets": {}}},
    ]  # fmt: skip


def events() -> list[dict[str, Any]]:
    return scenario_events(SPARK) + made_here()


# ---- the oracle ----------------------------------------------------------------------------------


def _names(d: dict[str, Any]) -> tuple[tuple[str, str], list[tuple[str, str]]]:
    """(the name the dataset is stored under in this event, its other names): its first TABLE symlink, else
    its own name."""
    links = ((d.get("facets") or {}).get("symlinks") or {}).get("identifiers") or []
    own = (d["namespace"], d["name"])
    table = next(((i["namespace"], i["name"]) for i in links if str(i.get("type", "")).upper() == "TABLE"), own)
    return table, [n for n in [own, *((i["namespace"], i["name"]) for i in links)] if n != table]


def _links(docs: list[dict[str, Any]], d: dict[str, Any]) -> list[dict[str, Any]]:
    """Every symlinks identifier any event sent beside the dataset's name (Marquez's dataset_symlinks rows)."""
    out = []
    for doc in docs:
        for other in [*(doc.get("inputs") or ()), *(doc.get("outputs") or ())]:
            if (other["namespace"], other["name"]) == (d["namespace"], d["name"]):
                out += ((other.get("facets") or {}).get("symlinks") or {}).get("identifiers") or []
    return out


class Groups:
    """Alias groups over every name sent: a group answers as the smallest id among the names it was stored
    under beside another name."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}
        targets: set[tuple[str, str]] = set()
        for doc in docs:
            for d in [*(doc.get("inputs") or ()), *(doc.get("outputs") or ()), *filter(None, [doc.get("dataset")])]:
                stored, others = _names(d)
                for other in others:
                    targets.add(stored)
                    self._join(other, stored)
        by_root: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for name in self.parent:
            by_root.setdefault(self._find(name), []).append(name)
        self.key: dict[tuple[str, str], tuple[str, str]] = {}
        for members in by_root.values():
            canonical = min((m for m in members if m in targets), key=lambda m: identity.node_id("DATASET", *m))
            self.key.update({m: canonical for m in members})

    def _find(self, name: tuple[str, str]) -> tuple[str, str]:
        while self.parent.setdefault(name, name) != name:
            name = self.parent[name]
        return name

    def _join(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        self.parent[self._find(a)] = self._find(b)

    def of(self, d: dict[str, Any]) -> tuple[str, str]:
        stored = _names(d)[0]
        return self.key.get(stored, stored)


@dataclass
class Seen:
    """One run (or a DatasetEvent), merged as Upriver merges it: per dataset and side the version of its latest
    event naming it (an event with a version first)."""

    run_id: str
    design: bool = False
    times: list[int] = field(default_factory=list)
    sides: dict[tuple[str, tuple[str, str]], tuple[tuple[bool, int], str]] = field(default_factory=dict)
    sent: dict[tuple[str, tuple[str, str]], tuple[str, str]] = field(default_factory=dict)  # -> the name sent

    @property
    def t0(self) -> int:
        return min(self.times)


@dataclass(frozen=True)
class Version:
    """A version as the list holds it: its key (`v:` + producer version, else `r:` + run, `r:` for a first
    read), created (its run's start), whether a write, the run id."""

    key: str
    t0: int
    w: bool
    run: str
    shown_run: str  # the createdByRun's id ("" for a first read or a DatasetEvent)

    @property
    def order(self) -> tuple[int, bool, str]:
        return self.t0, self.w, self.run


class Truth:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.groups = Groups(docs)
        self.runs: dict[str, Seen] = {}
        for doc in docs:
            if "run" in doc:
                seen = self.runs.setdefault(doc["run"]["runId"], Seen(doc["run"]["runId"]))
                sides = [("in", d) for d in doc.get("inputs") or ()] + [("out", d) for d in doc.get("outputs") or ()]
            else:
                key = f"dataset-event:{doc['dataset']['namespace']}/{doc['dataset']['name']}"
                seen = self.runs.setdefault(key, Seen(key, design=True))
                sides = [("out", doc["dataset"])]
            t = ms(doc["eventTime"])
            seen.times.append(t)
            for side, d in sides:
                version = str(((d.get("facets") or {}).get("version") or {}).get("datasetVersion") or "")
                name = (side, self.groups.of(d))
                seen.sent[name] = (d["namespace"], d["name"])
                if name not in seen.sides or (bool(version), t) > seen.sides[name][0]:
                    seen.sides[name] = ((bool(version), t), version)

    def versions(self, key: tuple[str, str]) -> list[Version]:
        """Every write of the dataset, and its first read when before every write."""
        out = []
        for r in self.runs.values():
            if ("out", key) in r.sides:
                v = r.sides[("out", key)][1]
                out.append(Version(f"v:{v}" if v else f"r:{r.run_id}", r.t0, True, r.run_id,
                                   "" if r.design else r.run_id))  # fmt: skip
        reads = sorted((r.t0, r.run_id) for r in self.runs.values() if ("in", key) in r.sides)
        if reads and (not out or reads[0][0] < min(v.t0 for v in out)):
            v = self.runs[reads[0][1]].sides[("in", key)][1]
            out.append(Version(f"v:{v}" if v else "r:", reads[0][0], False, reads[0][1], ""))
        return out

    def listed(self, key: tuple[str, str]) -> dict[str, Version]:
        """key -> the version the list shows for it (the newest of that key)."""
        shown: dict[str, Version] = {}
        for v in self.versions(key):
            if v.key not in shown or v.order > shown[v.key].order:
                shown[v.key] = v
        return shown

    def read(self, run_id: str, key: tuple[str, str]) -> Version:
        """The version the run's input `key` read, as the list shows it."""
        r, versions, shown = self.runs[run_id], self.versions(key), self.listed(key)
        want = r.sides[("in", key)][1]
        if want and f"v:{want}" in shown:
            return shown[f"v:{want}"]
        before = [v for v in versions if v.t0 < r.t0]
        return shown[(max(before, key=lambda v: v.order) if before else min(versions, key=lambda v: v.order)).key]


# ---- the API -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return events()


@pytest.fixture
def api(ch_client: Client, ch_database: str, docs: list[dict[str, Any]]) -> tuple[LineageReader, Truth]:
    load(ClickHouseWriter(ch_client, ch_database), [to_record(e) for e in docs], derived_at=0)
    return LineageReader(ch_client, ch_database), Truth(docs)


def dataset_path(ns: str, name: str, rest: str = "") -> str:
    return f"/api/v1/namespaces/{quote(ns, safe='')}/datasets/{quote(name, safe='')}{rest}"


def follow(reader: LineageReader, version_id: dict[str, str]) -> dict[str, Any]:
    """run -> dataset -> versions -> version, as a client follows a datasetVersionId: the list's entry of it."""
    ns, name, version = version_id["namespace"], version_id["name"], version_id["version"]
    assert ok(reader, dataset_path(ns, name))["id"] == {"namespace": ns, "name": name}
    listed = {v["version"]: v for v in ok(reader, dataset_path(ns, name, "/versions"), limit=1000)["versions"]}
    assert version in listed, (ns, name, version)
    assert ok(reader, dataset_path(ns, name, f"/versions/{version}")) == listed[version]
    entry: dict[str, Any] = listed[version]
    return entry


def _check_run(reader: LineageReader, truth: Truth, doc: dict[str, Any]) -> int:
    """Every dataset version the run answer names is the expected one and found in its dataset's list."""
    seen = truth.runs[doc["id"]]
    # each dataset as the run's event named it, in the answer's order (by that name); the group decides the version
    ins = [k for _, k in sorted((seen.sent[(s, k)], k) for s, k in seen.sides if s == "in")]
    outs = [k for _, k in sorted((seen.sent[(s, k)], k) for s, k in seen.sides if s == "out")]
    named = [tuple(v["datasetVersionId"][k] for k in ("namespace", "name")) for v in doc["inputDatasetVersions"]]
    assert (named, [tuple(v["datasetVersionId"][k] for k in ("namespace", "name"))
                    for v in doc["outputDatasetVersions"]]) == ([seen.sent[("in", k)] for k in ins],
                                                                [seen.sent[("out", k)] for k in outs])  # fmt: skip
    for version, key in zip(doc["inputDatasetVersions"], ins, strict=True):
        want = truth.read(doc["id"], key)
        entry = follow(reader, version["datasetVersionId"])
        got = ((entry["createdByRun"] or {}).get("id", ""), entry["createdAt"])
        assert got == (want.shown_run, instant(want.t0)), (doc["id"], key)
    for version, key in zip(doc["outputDatasetVersions"], outs, strict=True):
        v = seen.sides[("out", key)][1]
        want = truth.listed(key)[f"v:{v}" if v else f"r:{doc['id']}"]  # a producer version's: its newest write
        entry = follow(reader, version["datasetVersionId"])
        assert (entry["createdByRun"]["id"], entry["createdAt"]) == (want.shown_run, instant(want.t0)), (doc["id"], key)
    return len(ins)


def test_each_input_is_the_version_current_at_the_run_s_start_and_in_the_versions_list(
    api: tuple[LineageReader, Truth],
) -> None:
    reader, truth = api
    checked = 0
    for run_id, seen in truth.runs.items():
        if not seen.design:
            checked += _check_run(reader, truth, ok(reader, f"/api/v1/jobs/runs/{run_id}"))
    assert checked == 14  # every input of every run above

    # the cases the events were made for, spelled out (expected entries: (createdByRun id, createdAt))
    def read(run_id: str, name: str) -> tuple[str, str]:
        doc = ok(reader, f"/api/v1/jobs/runs/{run_id}")
        version = next(v for v in doc["inputDatasetVersions"] if v["datasetVersionId"]["name"] == name)
        entry = follow(reader, version["datasetVersionId"])
        return (entry["createdByRun"] or {}).get("id", ""), entry["createdAt"]

    assert read(rid(1), PLAIN) == ("", at(5)) and read(rid(1), FIRST) == ("", at(5))  # the first reads' own
    assert read(rid(4), PLAIN) == (rid(2), at(10)) and read(rid(4), FIRST) == (rid(2), at(10))
    assert read(rid(4), VERSIONED) == (rid(3), at(10))  # names "9", never written: the one current then
    assert read(rid(7), PLAIN) == (rid(2), at(10))  # rid(5) started the same millisecond: not current yet
    assert read(rid(8), PLAIN) == (rid(5), at(20))  # a failed write is a version too
    assert read(rid(8), VERSIONED) == (rid(9), at(30))  # "2": the list shows its newest write
    assert read(rid(5), VERSIONED) == (rid(3), at(10))
    assert read(rid(11), VERSIONED) == (rid(3), at(10))  # names "1" although "2" was current
    assert read(rid(11), DECLARED) == ("", at(8))  # the DatasetEvent's version (no run recorded)
    assert read(rid(12), LOOP) == (rid(12), at(50))  # nothing before it: the oldest, its own write
    assert read(rid(13), LOOP) == (rid(12), at(50))


def test_created_by_run_and_job_runs_name_listed_versions_too(api: tuple[LineageReader, Truth]) -> None:
    reader, truth = api
    for name in (PLAIN, VERSIONED, LOOP, FIRST, DECLARED):
        for entry in ok(reader, dataset_path(NS, name, "/versions"))["versions"]:
            if entry["createdByRun"] is not None:
                _check_run(reader, truth, entry["createdByRun"])
    for job in ("read/late", "write/plain", "loop"):
        page = ok(reader, f"/api/v1/namespaces/{JOB_NS}/jobs/{quote(job, safe='')}/runs")
        for doc in page["runs"]:
            _check_run(reader, truth, doc)
    listed = ok(reader, f"/api/v1/namespaces/{JOB_NS}/jobs")["jobs"]
    assert len(listed) == 8
    for job in listed:
        one = ok(reader, f"/api/v1/namespaces/{JOB_NS}/jobs/{quote(job['name'], safe='')}")
        assert job == one  # the list page answers each job as its own page does
        for doc in job["latestRuns"]:
            _check_run(reader, truth, doc)


def test_spark_symlinked_tables_are_named_as_sent_in_runs_and_by_every_name_in_jobs(
    api: tuple[LineageReader, Truth],
) -> None:
    reader, truth = api
    contract = Contract()
    spark = scenario_events(SPARK)
    stored = {_names(d)[0] for e in spark for d in [*e.get("inputs", ()), *e.get("outputs", ())]}
    assert ("hive://dataproc-producer-test-m:9083", "default.t2") in stored and T2 in stored  # two names of t2
    assert truth.groups.key[("hive://dataproc-producer-test-m:9083", "default.t2")] == T2
    runs = {e["run"]["runId"] for e in spark if e.get("inputs") or e.get("outputs")}
    assert len(runs) == 6
    for run_id in sorted(runs):
        doc = ok(reader, f"/api/v1/jobs/runs/{run_id}")
        assert contract.errors("/jobs/runs/{id}", "GET", 200, doc) == []
        _check_run(reader, truth, doc)
    insert = next(e for e in spark if e["job"]["name"].endswith("insert_into_hive_table.warehouse_t2"))
    job = ok(reader, f"/api/v1/namespaces/{quote(insert['job']['namespace'], safe='')}/jobs/"
                     f"{quote(insert['job']['name'], safe='')}")  # fmt: skip

    def every(d: dict[str, Any]) -> list[dict[str, str]]:  # the name sent and each symlink's
        names = [(d["namespace"], d["name"])] + [(i["namespace"], i["name"]) for i in _links(spark, d)]
        return [{"namespace": ns, "name": name} for ns, name in sorted(set(names))]

    assert job["outputs"] == every(insert["outputs"][0]) and len(job["outputs"]) == 3
    assert job["inputs"] == every(insert["inputs"][0]) and len(job["inputs"]) == 3
    for d in job["inputs"] + job["outputs"]:  # each a dataset the datasets routes answer under that name
        assert ok(reader, dataset_path(d["namespace"], d["name"]))["id"] == d
        assert d["name"] in [x["name"] for x in ok(reader, f"/api/v1/namespaces/{quote(d['namespace'], safe='')}"
                                                                  "/datasets")["datasets"]]  # fmt: skip
    latest = job["latestRun"]
    assert [v["datasetVersionId"]["name"] for v in latest["inputDatasetVersions"]] == [insert["inputs"][0]["name"]]
    # t1's version current when the insert started: the previous insert's into it
    t1_writer = next(e for e in spark if e["job"]["name"].endswith("insert_into_hive_table.warehouse_t1"))
    entry = follow(reader, latest["inputDatasetVersions"][0]["datasetVersionId"])
    assert entry["createdByRun"]["id"] == t1_writer["run"]["runId"]
