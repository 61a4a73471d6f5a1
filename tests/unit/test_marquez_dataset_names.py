"""A dataset under every name it has, as Marquez lists and answers it (upriver/readside/datasets.py,
dataset_versions.py, upriver/http/marquez/datasets.py), over embedded ClickHouse loaded with two OpenLineage
compatibility-tests scenarios whose datasets carry `symlinks` facets: CLL (Spark writing `file` paths, each
with a TABLE symlink in `file:/tmp/cll_test`) and spark_dataproc_simple_producer_test_complete (hdfs paths with
TABLE symlinks in `hive://…:9083` and, from the DROP run, in `hdfs://…/user/hive/warehouse`).

Every expected value is computed here from the events' names and symlinks facets by Marquez's rules (at the
commit tests/marquez_spec.py names):
- OpenLineageDao.upsertLineageDataset, per dataset of an event (inputs, then outputs): the name sent gets a
  `dataset_symlinks` row of the dataset it already names, else of a new dataset (upsertDatasetSymlinkRow: ON
  CONFLICT DO NOTHING, then the row found); each symlinks identifier not yet named gets a row of that dataset
  (doUpsertDatasetSymlinkRow); DatasetDao.upsert sets the dataset's physical_name to the name sent;
- R__Datasets_view.sql joins every dataset_symlinks row: a dataset is a row of the view under each of its
  names, with that name's namespace and name and the dataset's own columns (physical_name, times, current
  version); DatasetDao.findAll lists a namespace's rows ORDER BY name with countFor's total, and
  findDatasetByName finds the row whose dataset_symlinks is the name asked;
- RunDao names a run's dataset versions by dataset_versions.namespace_name/dataset_name (the event's own
  namespace and name); JobVersionDao.findCurrentInputOutputDatasetsFor joins datasets_view, so a job's
  inputs and outputs hold every name of each dataset; tags are the dataset's (datasets_tag_mapping by uuid);
- SearchDao.search reads datasets_view: a dataset matches under each of its names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from clickhouse_connect.driver.client import Client
from compat_support import scenario_events
from marquez_calls import ms, ok

from schemas.openlineage import to_record
from sinks.writer import ClickHouseWriter
from upriver.http import routes
from upriver.http.spec import Query
from upriver.http.tags import tag_record
from upriver.local.bulk import load
from upriver.readside.lineage import LineageReader

SCENARIOS = ("CLL", "spark_dataproc_simple_producer_test_complete")
Name = tuple[str, str]


def events() -> list[dict[str, Any]]:
    return [e for name in SCENARIOS for e in scenario_events(name)]


def mentions(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(side, dataset) in the order OpenLineageDao.updateBaseMarquezModel upserts them: inputs, then outputs."""
    yield from (("in", d) for d in doc.get("inputs") or ())
    yield from (("out", d) for d in doc.get("outputs") or ())


def identifiers(d: dict[str, Any]) -> list[Name]:
    found = (((d.get("facets") or {}).get("symlinks") or {}).get("identifiers")) or []
    return [(i["namespace"], i["name"]) for i in found]


class Symlinks:
    """Marquez's dataset_symlinks rows and datasets.physical_name after the events, in sending order."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.dataset: dict[Name, Name] = {}  # name -> its dataset (named by the name that made it)
        self.physical: dict[Name, str] = {}  # dataset -> the name last sent for it
        self.sent: dict[Name, list[tuple[int, str, str, dict[str, Any]]]] = {}  # dataset -> (t, run, side, d)
        for doc in docs:
            for side, d in mentions(doc):
                own = (d["namespace"], d["name"])
                ds = self.dataset.setdefault(own, own)
                for ident in identifiers(d):
                    self.dataset.setdefault(ident, ds)
                self.physical[ds] = d["name"]
                self.sent.setdefault(ds, []).append((ms(doc["eventTime"]), doc["run"]["runId"], side, d))

    def names(self, ds: Name) -> list[Name]:
        return sorted(n for n, of in self.dataset.items() if of == ds)

    def namespaces(self) -> list[str]:
        return sorted({ns for ns, _ in self.dataset})

    def listed(self, namespace: str) -> list[str]:
        return sorted(name for ns, name in self.dataset if ns == namespace)

    def versions(self, ds: Name) -> int:
        """Marquez's versions of the dataset: one per run writing it, and the first read's when before them."""
        starts: dict[str, int] = {}
        for t, run, _, _ in self.sent[ds]:
            starts[run] = min(starts.get(run, t), t)
        writes = {run for _, run, side, _ in self.sent[ds] if side == "out"}
        reads = [starts[r] for r in starts if r not in writes]
        first_read = bool(reads) and (not writes or min(reads) < min(starts[r] for r in writes))
        return len(writes) + first_read


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return events()


@pytest.fixture
def api(ch_client: Client, ch_database: str, docs: list[dict[str, Any]]) -> tuple[LineageReader, Symlinks]:
    load(ClickHouseWriter(ch_client, ch_database), [to_record(e) for e in docs], derived_at=0)
    return LineageReader(ch_client, ch_database), Symlinks(docs)


def path(namespace: str, name: str | None = None, rest: str = "") -> str:
    base = f"/api/v1/namespaces/{quote(namespace, safe='')}/datasets"
    return base if name is None else f"{base}/{quote(name, safe='')}{rest}"


def without_name(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("id", "namespace", "name")}


def test_the_oracle_sees_the_scenarios_symlinks(api: tuple[LineageReader, Symlinks]) -> None:
    _, links = api
    groups = {ds: links.names(ds) for ds in links.physical}
    assert len(groups) == 5 and all(len(names) > 1 for names in groups.values())
    assert links.names(("file", "/tmp/cll_test/tbl1")) == [("file", "/tmp/cll_test/tbl1"),
                                                           ("file:/tmp/cll_test", "default.tbl1")]  # fmt: skip
    assert len(links.names(("hdfs://dataproc-producer-test-m", "/user/hive/warehouse/t1"))) == 3


def test_each_namespace_lists_every_name_of_its_datasets_by_name_with_paging(
    api: tuple[LineageReader, Symlinks],
) -> None:
    reader, links = api
    for ns in links.namespaces():
        want = links.listed(ns)
        got = ok(reader, path(ns))
        assert [d["name"] for d in got["datasets"]] == want and got["totalCount"] == len(want), ns
        assert all(d["id"] == {"namespace": ns, "name": d["name"]} and d["namespace"] == ns for d in got["datasets"])
        for i, name in enumerate(want):  # paging over the names, as findAll's ORDER BY name LIMIT OFFSET
            assert ok(reader, path(ns), limit=1, offset=i) == {
                "datasets": [got["datasets"][i]],
                "totalCount": len(want),
            }
            assert got["datasets"][i]["name"] == name
        assert ok(reader, path(ns), offset=len(want)) == {"datasets": [], "totalCount": len(want)}
    assert links.listed("hive://dataproc-producer-test-m:9083") == ["default.t1", "default.t2"]
    assert links.listed("file") == ["/tmp/cll_test/cll_source1", "/tmp/cll_test/cll_source2", "/tmp/cll_test/tbl1"]


def test_a_dataset_answers_under_each_of_its_names_with_its_own_content(api: tuple[LineageReader, Symlinks]) -> None:
    reader, links = api
    for ds, sent in links.sent.items():
        answers = {n: ok(reader, path(*n)) for n in links.names(ds)}
        listed = {(d["namespace"], d["name"]): d for n in answers for d in ok(reader, path(n[0]))["datasets"]}
        last = max(sent, key=lambda m: m[0])[3]  # the latest mention: its schema is the current version's
        first = min(sent, key=lambda m: m[0])[3]
        for (ns, name), got in answers.items():
            assert (got["id"], got["namespace"], got["name"]) == ({"namespace": ns, "name": name}, ns, name)
            assert got == listed[(ns, name)]  # the list shows what the dataset's own page shows
            assert without_name(got) == without_name(answers[ds])  # one dataset: the same content
            assert got["physicalName"] == links.physical[ds]
            assert [f["name"] for f in got["fields"]] == [f["name"] for f in last["facets"]["schema"]["fields"]]
            assert got["sourceName"] == first["facets"]["dataSource"]["name"]
            assert "symlinks" in got["facets"] and not any(k.startswith("upriver") for k in got["facets"])
            assert got["createdAt"] is not None and got["updatedAt"] is not None


def test_its_versions_are_one_list_under_every_name_each_echoing_the_name(api: tuple[LineageReader, Symlinks]) -> None:
    reader, links = api
    for ds in links.sent:
        lists = {n: ok(reader, path(*n, "/versions"), limit=100) for n in links.names(ds)}
        for (ns, name), got in lists.items():
            assert got["totalCount"] == len(got["versions"]) == links.versions(ds), (ns, name)
            for v in got["versions"]:
                assert v["id"] == {"namespace": ns, "name": name, "version": v["version"]}
                assert (v["namespace"], v["name"], v["physicalName"]) == (ns, name, links.physical[ds])
                assert ok(reader, path(ns, name, f"/versions/{v['version']}")) == v
            # a version is one dataset_versions row: the same id and content whichever name it is read by
            assert [without_name(v) for v in got["versions"]] == [without_name(v) for v in lists[ds]["versions"]]
            current = ok(reader, path(ns, name))["currentVersion"]
            assert current in {v["version"] for v in got["versions"]}


def test_column_lineage_is_the_dataset_s_and_names_datasets_that_answer(api: tuple[LineageReader, Symlinks]) -> None:
    reader, links = api
    tbl1 = ("file", "/tmp/cll_test/tbl1")
    sent = next(d for _, _, side, d in links.sent[tbl1] if side == "out" and "columnLineage" in d["facets"])
    by_name = {n: ok(reader, path(*n))["columnLineage"] for n in links.names(tbl1)}
    want_fields = sorted(sent["facets"]["columnLineage"]["fields"])
    for got in by_name.values():
        assert got == by_name[tbl1] and [c["name"] for c in got] == want_fields
        for column in got:
            spec = sent["facets"]["columnLineage"]["fields"][column["name"]]
            sources = {links.dataset[(f["namespace"], f["name"])] for f in spec["inputFields"]}
            named = {links.dataset[(f["namespace"], f["dataset"])] for f in column["inputFields"]}
            assert named == sources  # each input a name of the source dataset the event named
            # the output field's own description and type, as Marquez stores them (upsertColumnLineage)
            said = {(f["transformationDescription"], f["transformationType"]) for f in column["inputFields"]}
            assert said == {(spec.get("transformationDescription"), spec.get("transformationType"))}
            for f in column["inputFields"]:
                assert ok(reader, path(f["namespace"], f["dataset"]))["name"] == f["dataset"]


def test_runs_name_their_datasets_as_sent_and_jobs_list_every_name(api: tuple[LineageReader, Symlinks],
                                                                   docs: list[dict[str, Any]]) -> None:  # fmt: skip
    reader, links = api
    runs: dict[str, dict[str, set[Name]]] = {}
    for doc in docs:
        for side, d in mentions(doc):
            runs.setdefault(doc["run"]["runId"], {"in": set(), "out": set()})[side].add((d["namespace"], d["name"]))
    assert len(runs) == 9  # CLL: 3 runs with datasets; the dataproc scenario: 6
    for run_id, sides in runs.items():
        got = ok(reader, f"/api/v1/jobs/runs/{run_id}")
        for side, key in (("in", "inputDatasetVersions"), ("out", "outputDatasetVersions")):
            named = [(v["datasetVersionId"]["namespace"], v["datasetVersionId"]["name"]) for v in got[key]]
            assert named == sorted(sides[side]), (run_id, side)
            for v in got[key]:  # run -> dataset (under the name sent) -> its versions list holds the version
                vid = v["datasetVersionId"]
                versions = ok(reader, path(vid["namespace"], vid["name"], "/versions"), limit=100)["versions"]
                assert vid["version"] in {x["version"] for x in versions}, (run_id, vid)
    # a job's current version is that of its run completed last (OpenLineageDao.updateMarquezModel)
    current = {(d["job"]["namespace"], d["job"]["name"]): d["run"]["runId"] for d in docs if d["run"]["runId"] in runs
               and d["eventType"] == "COMPLETE"}  # fmt: skip
    assert len(current) == 8  # nine runs: drop_table ran twice (t1, then t2)
    for (ns, name), run_id in current.items():
        job = ok(reader, f"/api/v1/namespaces/{quote(ns, safe='')}/jobs/{quote(name, safe='')}")
        for side, key in (("in", "inputs"), ("out", "outputs")):
            every = sorted({n for d in runs[run_id][side] for n in links.names(links.dataset[d])})
            assert [(d["namespace"], d["name"]) for d in job[key]] == every, (name, side)
        for d in job["inputs"] + job["outputs"]:
            assert ok(reader, path(d["namespace"], d["name"]))["id"] == d


class Recorder:
    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []

    def tag_change(self, change: dict[str, Any]) -> None:
        self.changes.append(tag_record(change))


def test_a_tag_written_under_one_name_shows_under_every_name(api: tuple[LineageReader, Symlinks]) -> None:
    reader, links = api
    t1 = ("hdfs://dataproc-producer-test-m", "/user/hive/warehouse/t1")
    hive = ("hive://dataproc-producer-test-m:9083", "default.t1")
    found = routes.find("POST", path(*hive, "/tags/gold"))
    assert found is not None and found[0].write is not None
    route, segments = found
    status, body = route.write(reader, Recorder(), Query(route.by_name, {}, segments), b"")
    assert status == 200 and (body["namespace"], body["name"], body["tags"]) == (*hive, ["gold"])
    for n in links.names(t1):
        assert ok(reader, path(*n))["tags"] == ["gold"], n  # datasets_tag_mapping is by the dataset's uuid
        assert next(d for d in ok(reader, path(n[0]))["datasets"] if d["name"] == n[1])["tags"] == ["gold"]
    assert ok(reader, path("hive://dataproc-producer-test-m:9083", "default.t2"))["tags"] == []


def test_search_finds_a_dataset_under_each_of_its_names(api: tuple[LineageReader, Symlinks]) -> None:
    reader, links = api
    for q in ("tbl1", "T1", "cll_source"):
        want = sorted((ns, name) for ns, name in links.dataset if q.lower() in name.lower())
        got = ok(reader, "/api/v1/search", q=q, filter="DATASET")["results"]
        assert sorted((r["namespace"], r["name"]) for r in got) == want, q
        for r in got:
            assert r["nodeId"] == f"dataset:{r['namespace']}:{r['name']}"
    both = ok(reader, "/api/v1/search", q="tbl1")["results"]  # and the CTAS job whose name holds default_tbl1
    assert sorted(r["type"] for r in both) == ["DATASET", "DATASET", "JOB"]
