"""Upriver as a Marquez backend, route by route: every answer of the Marquez v1 routes of issue 14 is
validated against the response schema Marquez's own OpenAPI document gives for that path, method and
status (tests/marquez_spec.py: the document, its $refs and the workarounds for its quirks), and its values
are checked against the workload posted over HTTP (tests/marquez_support.py: real producers' events and the
compatibility scenarios; the expected values are computed from those events and Marquez's source, never
from Upriver's answers). Each test gathers every mismatch of its route before failing, so one run reports
them all.

Orders Marquez leaves to its database: names sort by Postgres's collation there (en_US in its images);
here byte order, which is what a C collation gives.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from marquez_client import MarquezClient  # type: ignore[import-untyped]
from marquez_client.errors import APIError  # type: ignore[import-untyped]
from marquez_spec import Contract
from marquez_support import (
    FRESH_DS_NS,
    FRESH_INPUT,
    FRESH_JOB,
    FRESH_JOB_NS,
    FRESH_OUTPUT,
    TERMINAL,
    TOKEN,
    Truth,
    api,
    iso,
    loaded_stack,
    ms,
    request,
    seg,
)

from upriver.local.stack import LocalStack

pytestmark = pytest.mark.integration
ALL = 10_000  # a limit above every list's size


@pytest.fixture(scope="module")
def loaded(
    kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalStack, Truth]]:
    with loaded_stack(kafka_bootstrap, chdb_url, tmp_path_factory.mktemp("marquez"), "marquez") as pair:
        yield pair


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract()


class Check:
    """Calls routes, validates each answer against the contract and collects every mismatch."""

    def __init__(self, loaded: tuple[LocalStack, Truth], contract: Contract) -> None:
        stack, self.truth = loaded
        assert stack.api is not None
        self.base, self.contract, self.bad = stack.api.url, contract, list[str]()

    def call(
        self,
        template: str,
        want: int = 200,
        method: str = "GET",
        body: Any = None,
        at: dict[str, str] | None = None,
        holding: str = "",
        **params: Any,
    ) -> Any:
        """The answer of `method template` (path parameters from `at`, each one encoded segment), or None
        when its status is not `want` or it lacks the list `holding`; schema violations recorded."""
        path = template
        for name, value in (at or {}).items():
            path = path.replace("{" + name + "}", seg(value))
        reply = request(api(self.base, path, **params), method, body)
        where = f"{method} /api/v1{path}" + (f" {params}" if params else "")
        if reply.status != want:
            self.bad.append(f"{where}: status {reply.status}, Marquez answers {want}; body {reply.raw[:240]!r}")
            return None
        if want == 400 and not isinstance(reply.body, dict):
            return reply.body  # Marquez's own 400s with a plain-text entity (StatsResource, ColumnLineageResource)
        for err in self.contract.errors(template, method, reply.status, reply.body)[:15]:
            self.bad.append(f"{where}: schema of {method} {template} {want}: {err}")
        if holding and not (isinstance(reply.body, dict) and isinstance(reply.body.get(holding), list)):
            self.bad.append(f"{where}: no list {holding!r} in the answer {reply.raw[:200]!r}")
            return None
        return reply.body

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            self.bad.append(what)

    def same(self, got: Any, want: Any, what: str) -> None:
        if got != want:
            extra = (
                f" (extra {sorted(got - want)[:8]}, missing {sorted(want - got)[:8]})" if isinstance(got, set) else ""
            )
            self.bad.append(f"{what}: got {_short(got)}, expected {_short(want)}{extra}")

    def done(self) -> None:
        """Fails with every mismatch; schema errors that differ only in array indexes are counted once."""
        if not self.bad:
            return
        seen: dict[str, int] = {}
        for line in self.bad:
            key = re.sub(r"\[\d+\]", "[*]", line) if ": schema of " in line else line
            seen[key] = seen.get(key, 0) + 1
        lines = [f"{line}  (x{n})" if n > 1 else line for line, n in seen.items()]
        raise AssertionError(f"{len(self.bad)} mismatches:\n" + "\n".join(lines[:120]))


def _short(value: Any) -> str:
    text = repr(sorted(value) if isinstance(value, set) else value)
    return text if len(text) < 300 else text[:300] + "..."


@pytest.fixture
def check(loaded: tuple[LocalStack, Truth], contract: Contract) -> Check:
    """Each test ends with `check.done()`, which fails it with every mismatch found."""
    return Check(loaded, contract)


def _pages(
    check: Check, template: str, key: str, size: int, total: int, at: dict[str, str] | None = None, **params: Any
) -> list[list[Any]]:
    pages = []
    for offset in range(0, total + size, size):
        body = check.call(template, at=at, holding=key, limit=size, offset=offset, **params)
        pages.append(body[key] if isinstance(body, dict) and isinstance(body.get(key), list) else [])
    return pages


# ---- namespaces -------------------------------------------------------------------------------------


def test_namespaces_list_and_paging(check: Check) -> None:
    want = sorted(check.truth.namespaces)
    body = check.call("/namespaces", holding="namespaces", limit=ALL)
    if body is not None:
        check.same({n.get("name") for n in body["namespaces"]}, set(want), "GET /namespaces names")
    pages = _pages(check, "/namespaces", "namespaces", 7, len(want))
    for i, page in enumerate(pages):  # NamespaceDao.findAll: ORDER BY name LIMIT OFFSET
        check.same([n.get("name") for n in page], want[i * 7 : (i + 1) * 7], f"GET /namespaces page {i} (limit 7)")
    check.done()


def test_each_namespace_by_name(check: Check) -> None:
    for ns in sorted(check.truth.namespaces):
        body = check.call("/namespaces/{namespace}", at={"namespace": ns})
        if body is not None:
            check.same(body.get("name"), ns, f"GET /namespaces/{seg(ns)} name")
    check.done()


# ---- jobs and runs ----------------------------------------------------------------------------------


def test_jobs_of_each_namespace(check: Check) -> None:
    for ns in sorted(check.truth.namespaces):
        body = check.call("/namespaces/{namespace}/jobs", at={"namespace": ns}, holding="jobs", limit=ALL)
        if body is None:
            continue
        want = check.truth.jobs_in(ns)
        check.same({j.get("name") for j in body["jobs"]}, want, f"jobs of {ns!r}")
        check.same({j.get("namespace") for j in body["jobs"]} | {ns}, {ns}, f"namespace of the jobs of {ns!r}")
        check.same(body.get("totalCount"), len(want), f"totalCount of the jobs of {ns!r}")
    check.done()


def test_jobs_paging_is_by_updated_at_desc(check: Check) -> None:
    ns = "dbt-test-namespace"
    want = check.truth.jobs_in(ns)
    pages = _pages(check, "/namespaces/{namespace}/jobs", "jobs", 25, len(want), at={"namespace": ns})
    names = [j.get("name") for page in pages for j in page]
    check.same(sorted(names, key=str), sorted(want), f"the pages of 25 jobs of {ns} together")
    check.expect(all(len(p) == 25 for p in pages[: len(want) // 25]), f"page sizes {[len(p) for p in pages]}")
    times = [ms(j["updatedAt"]) for page in pages for j in page if j.get("updatedAt")]
    check.expect(times == sorted(times, reverse=True), "jobs pages not ordered by updatedAt DESC (JobDao.findAll)")
    check.done()


def test_each_job(check: Check) -> None:
    truth = check.truth
    for ns, name in sorted(truth.jobs):
        body = check.call("/namespaces/{namespace}/jobs/{job}", at={"namespace": ns, "job": name})
        if body is None:
            continue
        where = f"job {ns!r} {name!r}"
        check.same(
            (body.get("id"), body.get("name"), body.get("namespace")),
            ({"namespace": ns, "name": name}, name, ns),
            f"{where} id/name/namespace",
        )
        latest = body.get("latestRun") or {}
        current = truth.current_runs((ns, name))
        check.expect(latest.get("id") in current, f"{where} latestRun.id {latest.get('id')}, expected one of {current}")
        states = {truth.runs[r].state for r in truth.current_runs((ns, name))}
        if len(states) == 1 and None not in states:
            check.same(latest.get("state"), states.pop(), f"{where} latestRun.state")
        got = ms(body["updatedAt"]) if body.get("updatedAt") else None
        check.expect(
            got in truth.updated_at((ns, name)),
            f"{where} updatedAt {body.get('updatedAt')}, expected one "
            f"of {sorted(iso(t) for t in truth.updated_at((ns, name)))}",
        )
    check.done()


def test_runs_of_each_job(check: Check) -> None:
    truth = check.truth
    for job in sorted(truth.jobs):
        at = {"namespace": job[0], "job": job[1]}
        body = check.call("/namespaces/{namespace}/jobs/{job}/runs", at=at, holding="runs", limit=ALL)
        if body is None:
            continue
        runs = {r.id: r for r in truth.job_runs(job)}
        got = {r.get("id"): r for r in body["runs"]}
        check.same(set(got), set(runs), f"runs of job {job}")
        check.same(body.get("totalCount"), len(runs), f"totalCount of the runs of job {job}")
        for rid, run in got.items():
            if rid in runs:
                _run_values(check, run, runs[rid].state, runs[rid].started, runs[rid].ended, f"run {rid} of {job}")
        starts = [ms(r["startedAt"]) for r in body["runs"] if r.get("startedAt")]
        check.expect(starts == sorted(starts, reverse=True), f"runs of {job} not by startedAt DESC (RunDao.findAll)")
    check.done()


def _run_values(
    check: Check, run: dict[str, Any], state: str | None, started: int | None, ended: int | None, where: str
) -> None:
    if state is not None:
        check.same(run.get("state"), state, f"{where} state")
    if started is not None and ended is not None and started > ended:
        started = None  # a START stamped after its COMPLETE (dbt artifact corpus): Marquez's duration goes negative
    if started is not None:
        check.same(ms(run["startedAt"]) if run.get("startedAt") else None, started, f"{where} startedAt")
    if ended is not None:
        check.same(ms(run["endedAt"]) if run.get("endedAt") else None, ended, f"{where} endedAt")
    if started is not None and ended is not None:
        check.same(run.get("durationMs"), ended - started, f"{where} durationMs")


def test_jobs_everywhere_and_by_last_run_state(check: Check) -> None:
    truth = check.truth
    body = check.call("/jobs", holding="jobs", limit=ALL)
    if body is not None:
        check.same({(j.get("namespace"), j.get("name")) for j in body["jobs"]}, set(truth.jobs), "GET /jobs")
        check.same(body.get("totalCount"), len(truth.jobs), "GET /jobs totalCount")
    states = {}  # the jobs whose last run state is unambiguous (marquez_support.Truth.current_runs)
    for job in truth.jobs:
        known = {truth.runs[r].state for r in truth.current_runs(job)}
        if len(known) == 1 and None not in known:
            states[job] = known.pop()
    for wanted in (["FAILED"], ["RUNNING"], ["COMPLETED"], ["FAILED", "ABORTED", "RUNNING"]):
        body = check.call("/jobs", holding="jobs", lastRunStates=wanted, limit=ALL)
        if body is None:
            continue
        want = {job for job, state in states.items() if state in wanted}
        got = {(j.get("namespace"), j.get("name")) for j in body["jobs"]}
        check.same(got & set(states), want, f"/jobs?lastRunStates={wanted}")
        check.expect(
            all((j.get("latestRun") or {}).get("state") in wanted for j in body["jobs"]),
            f"/jobs?lastRunStates={wanted}: a job's latestRun.state is outside the filter",
        )
        # JobResource.list: totalCount is jobService.countFor(namespace), the filter not applied
        check.same(body.get("totalCount"), len(truth.jobs), f"/jobs?lastRunStates={wanted} totalCount")
    pages = _pages(check, "/jobs", "jobs", 40, len(truth.jobs))
    together = [(j.get("namespace"), j.get("name")) for page in pages for j in page]
    check.same(len(together), len(truth.jobs), "GET /jobs pages of 40: jobs in all")
    check.same(set(together), set(truth.jobs), "GET /jobs pages of 40 together")
    check.call("/jobs", want=400, lastRunStates="NOT_A_STATE")  # RunState via Dropwizard's enum converter
    check.done()


def test_each_run_and_its_facets(check: Check) -> None:
    for rid, run in sorted(check.truth.runs.items()):
        body = check.call("/jobs/runs/{id}", at={"id": rid})
        if body is not None:
            check.same(body.get("id"), rid, f"GET /jobs/runs/{rid} id")
            _run_values(check, body, run.state, run.started, run.ended, f"run {rid}")
            check.same(set(body.get("facets") or {}), run.facet_names("run"), f"run {rid} facets")
        for side in ("run", "job"):
            if not run.facet_names(side):
                continue  # RunFacetsDao finds no row: Marquez answers 204 with no body
            facets = check.call("/jobs/runs/{id}/facets", at={"id": rid}, type=side)
            if facets is not None:
                check.same(facets.get("runId"), rid, f"/jobs/runs/{rid}/facets?type={side} runId")
                check.same(set(facets.get("facets") or {}), run.facet_names(side), f"{side} facets of run {rid}")
    some = next(iter(sorted(check.truth.runs)))
    check.call("/jobs/runs/{id}/facets", want=400, at={"id": some}, type="neither")  # FacetType enum
    check.done()


# ---- datasets --------------------------------------------------------------------------------------


def test_datasets_of_each_namespace(check: Check) -> None:
    truth = check.truth
    for ns in sorted(truth.namespaces):
        body = check.call("/namespaces/{namespace}/datasets", at={"namespace": ns}, holding="datasets", limit=ALL)
        if body is None:
            continue
        want = truth.datasets_in(ns)
        check.same({d.get("name") for d in body["datasets"]}, want, f"datasets of {ns!r}")
        check.same(body.get("totalCount"), len(want), f"totalCount of the datasets of {ns!r}")
    ns = "postgres://postgres:5432"
    want = sorted(truth.datasets_in(ns))
    pages = _pages(check, "/namespaces/{namespace}/datasets", "datasets", 6, len(want), at={"namespace": ns})
    for i, page in enumerate(pages):  # DatasetDao.findAll: ORDER BY d.name LIMIT OFFSET
        check.same([d.get("name") for d in page], want[i * 6 : (i + 1) * 6], f"datasets of {ns} page {i} (limit 6)")
    check.done()


def test_each_dataset_and_its_versions(check: Check) -> None:
    truth = check.truth
    for (ns, name), mentions in sorted(truth.datasets.items()):
        at = {"namespace": ns, "dataset": name}
        body = check.call("/namespaces/{namespace}/datasets/{dataset}", at=at)
        if body is None:
            continue
        where = f"dataset {ns!r} {name!r}"
        check.same(
            (body.get("id"), body.get("name"), body.get("namespace")),
            ({"namespace": ns, "name": name}, name, ns),
            f"{where} id/name/namespace",
        )
        fields = truth.schema_fields((ns, name))
        if fields is not None:
            check.same([f.get("name") for f in body.get("fields") or []], fields, f"{where} fields")
        sources = {((d.get("facets") or {}).get("dataSource") or {}).get("name") or "default" for d in mentions}
        if len(sources) == 1:
            check.same(body.get("sourceName"), next(iter(sources)), f"{where} sourceName")
        versions = check.call(
            "/namespaces/{namespace}/datasets/{dataset}/versions", at=at, holding="versions", limit=ALL
        )
        if versions is None:
            continue
        check.expect(bool(versions["versions"]), f"{where}: no versions (Marquez makes one per write or first read)")
        check.same(versions.get("totalCount"), len(versions["versions"]), f"{where} versions totalCount")
        for v in versions["versions"]:
            check.same((v.get("namespace"), v.get("name")), (ns, name), f"{where} version {v.get('version')}")
            vid = v.get("id") or {}
            check.same(
                (vid.get("namespace"), vid.get("name"), vid.get("version")),
                (ns, name, v.get("version")),
                f"{where} version id",
            )
    for ns, name in sorted(truth.aliases):  # a symlink's name is a dataset of its own there
        body = check.call("/namespaces/{namespace}/datasets/{dataset}", at={"namespace": ns, "dataset": name})
        if body is not None:
            check.same((body.get("namespace"), body.get("name")), (ns, name), f"dataset by its symlink {ns!r} {name!r}")
    check.done()


# ---- lineage ---------------------------------------------------------------------------------------


def _marquez_id(kind: str, ns: str, name: str) -> str:
    return f"{kind}:{ns}:{name}"


def test_lineage_of_each_job_holds_its_datasets_and_edges(check: Check) -> None:
    truth = check.truth
    for job in sorted(truth.jobs):
        ios = {run.io() for run in truth.job_runs(job)}
        if (
            len(ios) != 1
            or "#" in job[0] + job[1]
            or any(
                (d.get("facets") or {}).get("symlinks")
                for ds in set().union(*next(iter(ios)))
                for d in truth.datasets[ds]
            )
        ):
            continue  # Marquez draws the current job version's datasets; a '#' starts a version in a nodeId
        streaming = any(
            str(((e["job"].get("facets") or {}).get("jobType") or {}).get("processingType") or "").upper()
            == "STREAMING"
            for run in truth.job_runs(job)
            for e in run.events
        )
        ended = all(any(e["eventType"] in TERMINAL for e in run.events) for run in truth.job_runs(job))
        if not (streaming or ended):
            continue  # a batch job's datasets join its version when a run ends (OpenLineageDao.updateMarquezModel)
        ins, outs = next(iter(ios))
        jid = _marquez_id("job", *job)
        body = check.call("/lineage", holding="graph", nodeId=jid, depth=1)
        if body is None:
            continue
        nodes = {n.get("id"): n for n in body["graph"]}
        want = {jid} | {_marquez_id("dataset", *d) for d in ins | outs}
        check.same(want - set(nodes), set(), f"lineage of {jid}: vertices missing")
        node = nodes.get(jid) or {}
        check.same(node.get("type"), "JOB", f"lineage of {jid}: its vertex's type")
        edges_in = {(e.get("origin"), e.get("destination")) for e in node.get("inEdges") or []}
        edges_out = {(e.get("origin"), e.get("destination")) for e in node.get("outEdges") or []}
        check.same({(_marquez_id("dataset", *d), jid) for d in ins} - edges_in, set(), f"{jid} inEdges missing")
        check.same({(jid, _marquez_id("dataset", *d)) for d in outs} - edges_out, set(), f"{jid} outEdges missing")
    missing = check.call("/lineage", want=404, nodeId="dataset:nowhere:nothing")
    if missing is not None:  # BaseResource.throwIfNotExists(NodeId) -> DatasetNotFoundException
        check.same(missing, {"code": 404, "message": "Dataset 'nothing' not found."}, "lineage of an unknown node")
    check.done()


def test_column_lineage(check: Check) -> None:
    ns, name = "bigquery", "mock-project.test.upload_cp"  # airflow: columnLineage a, b, c <- upload's a, b, c
    facet = next(
        (d.get("facets") or {})["columnLineage"]
        for d in check.truth.datasets[(ns, name)]
        if "columnLineage" in (d.get("facets") or {})
    )
    want_edges = {
        (f"datasetField:{i['namespace']}:{i['name']}:{i['field']}", f"datasetField:{ns}:{name}:{field}")
        for field, spec in facet["fields"].items()
        for i in spec["inputFields"]
    }
    for node_id in (f"dataset:{ns}:{name}", f"datasetField:{ns}:{name}:a"):
        body = check.call("/column-lineage", holding="graph", nodeId=node_id, depth=2)
        if body is None:
            continue
        nodes = {n.get("id"): n for n in body["graph"]}
        wanted = want_edges if node_id.startswith("dataset:") else {e for e in want_edges if e[1].endswith(":a")}
        # ColumnLineageService.toLineage: both ends carry the edge as Edge(the node itself, the other end), so
        # an output field's inEdges read {origin: output, destination: input}, the input's outEdges
        # {origin: input, destination: output}
        ins = {(e.get("destination"), e.get("origin")) for n in body["graph"] for e in n.get("inEdges") or []}
        outs = {(e.get("origin"), e.get("destination")) for n in body["graph"] for e in n.get("outEdges") or []}
        check.same(wanted - ins, set(), f"column lineage of {node_id}: output fields' inEdges missing (input, output)")
        check.same(wanted - outs, set(), f"column lineage of {node_id}: input fields' outEdges missing (input, output)")
        check.expect(all(n.get("type") == "DATASET_FIELD" for n in nodes.values()), f"{node_id}: non-field vertices")
        for n in nodes.values():
            data = n.get("data") or {}
            named = f"datasetField:{data.get('namespace')}:{data.get('dataset')}:{data.get('field')}"
            check.same(named, n.get("id"), "a column vertex's data names another field")
    down = check.call(
        "/column-lineage",
        holding="graph",
        nodeId="datasetField:bigquery:mock-project.test.upload:a",
        depth=2,
        withDownstream="true",
    )
    if down is not None:
        check.expect(
            f"datasetField:{ns}:{name}:a" in {n.get("id") for n in down["graph"]},
            "column lineage withDownstream of upload:a lacks upload_cp:a",
        )
    # ColumnLineageResource: a version in the node id with withDownstream=true is refused
    check.call(
        "/column-lineage",
        want=400,
        nodeId=f"dataset:{ns}:{name}#00000000-0000-0000-0000-000000000001",
        withDownstream="true",
    )
    missing = check.call("/column-lineage", want=404, nodeId="dataset:nowhere:nothing")
    if missing is not None:  # ColumnLineageService.lineage: NodeIdNotFoundException("Could not find node")
        check.same(missing, {"code": 404, "message": "Could not find node"}, "column lineage of an unknown node")
    check.done()


# ---- raw events ------------------------------------------------------------------------------------


def _key(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)


def test_events_lineage_paging_sorting_and_windows(check: Check) -> None:
    events = check.truth.events
    times_desc = sorted((ms(e["eventTime"]) for e in events), reverse=True)
    body = check.call("/events/lineage", holding="events", limit=ALL)
    if body is not None:
        check.same(body.get("totalCount"), len(events), "/events/lineage totalCount")
        check.same(
            sorted(_key(e) for e in body["events"]),
            sorted(_key(e) for e in events),
            "/events/lineage: the events, as received",
        )
    pages = _pages(check, "/events/lineage", "events", 100, len(events))
    for i, page in enumerate(pages):  # OpenLineageDao.getAllLineageEventsDesc: ORDER BY event_time DESC
        check.same([ms(e["eventTime"]) for e in page], times_desc[i * 100 : (i + 1) * 100], f"events page {i}")
    asc = check.call("/events/lineage", holding="events", sortDirection="asc", limit=50, offset=10)
    if asc is not None:
        check.same([ms(e["eventTime"]) for e in asc["events"]], sorted(times_desc)[10:60], "events asc offset 10")
    after, before = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    window = [t for t in times_desc if ms(after.isoformat()) <= t < ms(before.isoformat())]
    got = check.call("/events/lineage", holding="events", after=after.isoformat(), before=before.isoformat(), limit=ALL)
    if got is not None:  # WHERE event_time < :before AND event_time >= :after
        check.same([ms(e["eventTime"]) for e in got["events"]], window, "events in [2024, 2025)")
        check.same(got.get("totalCount"), len(window), "totalCount of the events in [2024, 2025)")
    check.done()


# ---- search ----------------------------------------------------------------------------------------


def test_search(check: Check) -> None:
    truth = check.truth

    def matches(q: str, kind: str) -> set[tuple[str, str, str]]:
        pool = truth.datasets if kind == "DATASET" else truth.jobs
        return {(kind, ns, name) for ns, name in pool if q.lower() in name.lower()}  # ILIKE '%q%'

    for q, flt in (("ORDERS", None), ("orders", "dataset"), ("Orders", "JOB"), ("ünï", None)):
        kinds = ["DATASET", "JOB"] if flt is None else [flt.upper()]
        want = set().union(*(matches(q, k) for k in kinds))
        body = check.call("/search", holding="results", q=q, limit=ALL, sort="NAME", **({"filter": flt} if flt else {}))
        if body is None:
            continue
        got = {(r.get("type"), r.get("namespace"), r.get("name")) for r in body["results"]}
        check.same(got, want, f"/search q={q} filter={flt}")
        check.same(body.get("totalCount"), len(body["results"]), f"/search q={q} totalCount (SearchResults: size)")
        names = [r.get("name") for r in body["results"]]
        check.expect(names == sorted(names), f"/search q={q} sort=NAME not by name")
        for r in body["results"]:
            prefix = "dataset" if r.get("type") == "DATASET" else "job"
            check.same(r.get("nodeId"), f"{prefix}:{r.get('namespace')}:{r.get('name')}", "search result nodeId")
    five = check.call("/search", holding="results", q="orders", limit=5, sort="UPDATE_AT")
    if five is not None:
        check.same((len(five["results"]), five.get("totalCount")), (5, 5), "/search limit=5: results, totalCount")
    check.call("/search", want=400, q="orders", filter="tables")  # SearchFilter enum
    check.done()


# ---- stats -----------------------------------------------------------------------------------------


def _buckets(check: Check, body: Any, step: timedelta, n: int, what: str) -> list[tuple[int, int]]:
    if not isinstance(body, list):
        return []
    check.same(len(body), n, f"{what}: buckets")
    spans = [(ms(b["startInterval"]), ms(b["endInterval"])) for b in body]
    check.expect(all(e - s == step // timedelta(milliseconds=1) for s, e in spans), f"{what}: bucket lengths")
    check.expect(all(a[1] == b[0] for a, b in itertools.pairwise(spans)), f"{what}: gaps or overlaps")
    return spans


def test_stats_lineage_events(check: Check) -> None:
    events = check.truth.events
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    body = check.call("/stats/lineage-events", period="DAY")
    spans = _buckets(check, body, timedelta(hours=1), 24, "lineage-events DAY")
    if spans:  # StatsDao.getLastDayMetrics: 24 hours, the current one last
        check.expect(
            spans[-1][0] in (ms(hour.isoformat()), ms((hour + timedelta(hours=1)).isoformat())),
            f"lineage-events DAY ends with {iso(spans[-1][0])}, not the current hour {hour}",
        )
    for period, tz, step in (("DAY", None, timedelta(hours=1)), ("WEEK", "UTC", timedelta(days=1))):
        body = check.call("/stats/lineage-events", period=period, **({"timezone": tz} if tz else {}))
        for (s, e), b in zip(
            _buckets(check, body, step, 24 if period == "DAY" else 7, period), body or [], strict=False
        ):
            inside = [x["eventType"] for x in events if s <= ms(x["eventTime"]) < e]
            want = {k.lower(): inside.count(k) for k in ("START", "COMPLETE", "FAIL", "ABORT")}
            check.same({k: b.get(k) for k in want}, want, f"lineage-events {period} at {iso(s)}")
    kolkata = check.call("/stats/lineage-events", period="WEEK", timezone="Asia/Kolkata")
    if _buckets(check, kolkata, timedelta(days=1), 7, "lineage-events WEEK Asia/Kolkata"):
        zone = ZoneInfo("Asia/Kolkata")
        today = datetime.now(zone).date()
        days = [today - timedelta(days=6 - i) for i in range(7)]
        for day, b in zip(days, kolkata, strict=True):
            n = sum(1 for x in events if datetime.fromtimestamp(ms(x["eventTime"]) / 1000, zone).date() == day)
            check.same(
                sum(b.get(k) or 0 for k in ("start", "complete", "fail", "abort")),
                n,
                f"lineage-events WEEK Asia/Kolkata on {day}",
            )
    check.call("/stats/lineage-events", want=400, period="WEEK")  # "Timezone must be specified for period 'WEEK'"
    check.call("/stats/lineage-events", want=400)  # "Invalid period"
    check.done()


def test_stats_jobs_datasets_sources(check: Check) -> None:
    truth = check.truth
    firsts = {
        "jobs": [truth.first_seen(j, "job") for j in truth.jobs],
        "datasets": [truth.first_seen(d, "dataset") for d in truth.datasets],
    }
    sources: dict[str, int] = {}
    for mentions in truth.datasets.values():
        for d in mentions:
            name = ((d.get("facets") or {}).get("dataSource") or {}).get("name") or "default"
            sources[name] = min(sources.get(name, d["_time"]), d["_time"])
    firsts["sources"] = list(sources.values())
    for kind, created in firsts.items():  # StatsDao: the count created before each bucket's end, cumulative
        for period, tz, step in (("DAY", None, timedelta(hours=1)), ("WEEK", "UTC", timedelta(days=1))):
            body = check.call(f"/stats/{kind}", period=period, **({"timezone": tz} if tz else {}))
            spans = _buckets(check, body, step, 24 if period == "DAY" else 7, f"{kind} {period}")
            for (_, e), b in zip(spans, body or [], strict=False):
                check.same(b.get("count"), sum(1 for t in created if t < e), f"stats {kind} {period} at {iso(e)}")
        check.call(f"/stats/{kind}", want=400, period="MONTH")
    check.done()


# ---- sources and tags ------------------------------------------------------------------------------


def test_sources(check: Check) -> None:
    body = check.call("/sources", holding="sources", limit=ALL)
    if body is not None:
        check.same({s.get("name") for s in body["sources"]}, check.truth.sources(), "GET /sources names")
    check.done()


def test_tags_written_through_the_api(check: Check) -> None:
    tag, field_tag = "Sensitive/ünï tag", "pii"
    at = {"namespace": FRESH_DS_NS, "dataset": FRESH_OUTPUT}
    made = check.call("/tags/{tag}", method="PUT", at={"tag": tag}, body={"description": "set by the suite"})
    if made is not None:
        check.same((made.get("name"), made.get("description")), (tag, "set by the suite"), "PUT /tags answer")
    tagged = check.call("/namespaces/{namespace}/datasets/{dataset}/tags/{tag}", method="POST", at={**at, "tag": tag})
    if tagged is not None:
        check.expect(tag in (tagged.get("tags") or []), f"POST dataset tag: answer's tags {tagged.get('tags')}")
    field = check.truth.schema_fields((FRESH_DS_NS, FRESH_OUTPUT))[0]  # type: ignore[index]
    on_field = check.call(
        "/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}",
        method="POST",
        at={**at, "field": field, "tag": field_tag},
    )
    if on_field is not None:  # DatasetResource.tagField upper-cases the tag
        tags = next((f.get("tags") for f in on_field.get("fields") or [] if f.get("name") == field), None)
        check.expect("PII" in (tags or []), f"POST field tag: field {field} tags {tags}, expected PII")
    job_at = {"namespace": FRESH_JOB_NS, "job": FRESH_JOB, "tag": tag}
    job = check.call("/namespaces/{namespace}/jobs/{job}/tags/{tag}", method="POST", at=job_at)
    if job is not None:
        check.expect(tag in (job.get("tags") or []), f"POST job tag: answer's tags {job.get('tags')}")
    listed = check.call("/tags", holding="tags", limit=ALL)
    if listed is not None:
        check.expect({"name": tag, "description": "set by the suite"} in listed["tags"], f"GET /tags lacks {tag!r}")
    untagged = check.call(
        "/namespaces/{namespace}/datasets/{dataset}/tags/{tag}", method="DELETE", at={**at, "tag": tag}
    )
    if untagged is not None:
        check.expect(tag not in (untagged.get("tags") or []), f"DELETE dataset tag: still {untagged.get('tags')}")
    check.call(
        "/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}",
        method="DELETE",
        at={**at, "field": field, "tag": field_tag},
    )
    check.call("/namespaces/{namespace}/jobs/{job}/tags/{tag}", method="DELETE", at=job_at)
    check.done()


# ---- names, 404s -----------------------------------------------------------------------------------


def test_names_with_slashes_colons_hashes_percent_spaces_and_unicode(check: Check) -> None:
    job = check.call("/namespaces/{namespace}/jobs/{job}", at={"namespace": FRESH_JOB_NS, "job": FRESH_JOB})
    if job is not None:
        check.same((job.get("namespace"), job.get("name")), (FRESH_JOB_NS, FRESH_JOB), "the fresh job's names")
        check.same(
            {(d.get("namespace"), d.get("name")) for d in job.get("inputs") or []},
            {(FRESH_DS_NS, FRESH_INPUT)},
            "the fresh job's inputs",
        )
        check.same(
            {(d.get("namespace"), d.get("name")) for d in job.get("outputs") or []},
            {(FRESH_DS_NS, FRESH_OUTPUT)},
            "the fresh job's outputs",
        )
    for name in (FRESH_INPUT, FRESH_OUTPUT):
        ds = check.call("/namespaces/{namespace}/datasets/{dataset}", at={"namespace": FRESH_DS_NS, "dataset": name})
        if ds is not None:
            check.same((ds.get("namespace"), ds.get("name")), (FRESH_DS_NS, name), f"dataset {name!r} names")
    check.done()


def test_not_found_answers(check: Check) -> None:
    ns, job = "dbt-test-namespace", "dbt-run-jaffle_shop"
    cases = [  # (template, at, Marquez's message: api/exceptions/*NotFoundException.java)
        ("/namespaces/{namespace}", {"namespace": "no/such ns"}, "Namespace 'no/such ns' not found."),
        ("/namespaces/{namespace}/jobs/{job}", {"namespace": ns, "job": "no such"}, "Job 'no such' not found."),
        ("/namespaces/{namespace}/jobs/{job}", {"namespace": "nope", "job": job}, "Namespace 'nope' not found."),
        ("/namespaces/{namespace}/jobs/{job}/runs", {"namespace": ns, "job": "x:y"}, "Job 'x:y' not found."),
        ("/namespaces/{namespace}/datasets", {"namespace": "nope"}, "Namespace 'nope' not found."),
        (
            "/namespaces/{namespace}/datasets/{dataset}",
            {"namespace": "bigquery", "dataset": "a/b"},
            "Dataset 'a/b' not found.",
        ),
        (
            "/namespaces/{namespace}/datasets/{dataset}/versions",
            {"namespace": "bigquery", "dataset": "zz"},
            "Dataset 'zz' not found.",
        ),
        (
            "/jobs/runs/{id}",
            {"id": "00000000-0000-4000-8000-000000000000"},
            "Run '00000000-0000-4000-8000-000000000000' not found.",
        ),
    ]
    for template, at, message in cases:
        body = check.call(template, want=404, at=at)
        if body is not None:
            check.same(body, {"code": 404, "message": message}, f"404 of {template} {at}")
    # JobResource.list checks no namespace: an unknown one has no jobs
    empty = check.call("/namespaces/{namespace}/jobs", at={"namespace": "nope"}, holding="jobs")
    if empty is not None:
        check.same((empty.get("jobs"), empty.get("totalCount")), ([], 0), "jobs of an unknown namespace")
    check.done()


# ---- the real marquez-python client, on the same stack and workload -------------------------------
# The real Marquez Python client (marquez-python from PyPI, pinned in the dev extra), unchanged, pointed at
# the stack's API URL with the stack's token as its api_key, over the workload of tests/marquez_support.py
# (real producers' events and the compatibility scenarios, posted over HTTP): what it lists and fetches
# matches what was sent.
#
# The client (marquez_client/client.py, 0.50.0) puts names in paths with urllib's
# `quote(name.encode('utf-8'), safe='')`: `/` -> %2F, `:` -> %3A, `#` -> %23, `%` -> %25, a space -> %20,
# unicode as UTF-8 percent escapes; lists send `limit` (default 100) and `offset` (default 0). It has no
# method for /lineage or /search (its only lineage calls are the column-lineage ones, used here), and its
# `list_events` calls `/api/v1/events`, which Marquez itself no longer serves (OpenLineageResource has
# /events/lineage), so neither is called here.


@pytest.fixture(scope="module")
def client(loaded: tuple[LocalStack, Truth]) -> MarquezClient:
    stack, _ = loaded
    assert stack.api is not None
    return MarquezClient(url=stack.api.url, api_key=TOKEN)


@pytest.fixture(scope="module")
def truth(loaded: tuple[LocalStack, Truth]) -> Truth:
    return loaded[1]


# a namespace with a '/' and ':' (postgres://…), one with '#' and a space, one from each producer family
NAMESPACES = ["postgres://postgres:5432", FRESH_JOB_NS, FRESH_DS_NS, "dbt-test-namespace", "flink_job_namespace"]


def test_list_and_get_namespaces(client: MarquezClient, truth: Truth) -> None:
    listed = client.list_namespaces(limit=1000)["namespaces"]
    assert {n["name"] for n in listed} == truth.namespaces
    for ns in NAMESPACES:
        assert client.get_namespace(ns)["name"] == ns
    with pytest.raises(APIError):
        client.get_namespace("no/such namespace")


def test_list_and_get_jobs(client: MarquezClient, truth: Truth) -> None:
    for ns in NAMESPACES:
        got = client.list_jobs(ns, limit=1000)
        assert {j["name"] for j in got["jobs"]} == truth.jobs_in(ns), ns
        assert got["totalCount"] == len(truth.jobs_in(ns))
    first = client.list_jobs("dbt-test-namespace", limit=10)["jobs"]
    rest = client.list_jobs("dbt-test-namespace", limit=1000, offset=10)["jobs"]
    assert len(first) == 10 and {j["name"] for j in first + rest} == truth.jobs_in("dbt-test-namespace")
    job = client.get_job(FRESH_JOB_NS, FRESH_JOB)
    assert (job["id"], job["namespace"], job["name"]) == ({"namespace": FRESH_JOB_NS, "name": FRESH_JOB},
                                                          FRESH_JOB_NS, FRESH_JOB)  # fmt: skip
    assert {(d["namespace"], d["name"]) for d in job["inputs"]} == {(FRESH_DS_NS, FRESH_INPUT)}
    assert {(d["namespace"], d["name"]) for d in job["outputs"]} == {(FRESH_DS_NS, FRESH_OUTPUT)}
    assert job["latestRun"]["id"] in truth.current_runs((FRESH_JOB_NS, FRESH_JOB))
    for ns, name in sorted(truth.jobs)[::9]:  # a spread over every producer
        got = client.get_job(ns, name)
        assert (got["namespace"], got["name"]) == (ns, name)
    with pytest.raises(APIError):
        client.get_job("dbt-test-namespace", "no such job")


def test_job_runs_and_each_run(client: MarquezClient, truth: Truth) -> None:
    for job in [(FRESH_JOB_NS, FRESH_JOB), ("flink_job_namespace", "flink_examples_stateful"),
                ("dbt-test-namespace", "dbt-run-jaffle_shop"), ("airflow", "gcs_hook.copy_task")]:  # fmt: skip
        runs = client.list_job_runs(*job, limit=1000)["runs"]
        assert {r["id"] for r in runs} == set(truth.jobs[job]), job
        for r in runs:
            want = truth.runs[r["id"]].state
            assert want is None or r["state"] == want, (job, r["id"], r["state"], want)
    fresh = truth.job_runs((FRESH_JOB_NS, FRESH_JOB))
    for run in fresh:
        got = client.get_job_run(run.id)
        assert (got["id"], got["state"]) == (run.id, run.state)
    assert {truth.runs[r].state for r in truth.jobs[(FRESH_JOB_NS, FRESH_JOB)]} == {"COMPLETED", "FAILED", "ABORTED"}
    with pytest.raises(APIError):
        client.get_job_run(str(uuid.uuid4()))


def test_list_and_get_datasets_and_versions(client: MarquezClient, truth: Truth) -> None:
    for ns in NAMESPACES:
        got = client.list_datasets(ns, limit=1000)
        assert {d["name"] for d in got["datasets"]} == truth.datasets_in(ns), ns
        assert got["totalCount"] == len(truth.datasets_in(ns))
    for name in (FRESH_INPUT, FRESH_OUTPUT):
        ds = client.get_dataset(FRESH_DS_NS, name)
        assert (ds["namespace"], ds["name"], ds["id"]) == (FRESH_DS_NS, name, {"namespace": FRESH_DS_NS, "name": name})
        assert [f["name"] for f in ds["fields"]] == truth.schema_fields((FRESH_DS_NS, name))
    versions = client.list_dataset_versions(FRESH_DS_NS, FRESH_OUTPUT, limit=1000)["versions"]
    assert versions and all((v["namespace"], v["name"]) == (FRESH_DS_NS, FRESH_OUTPUT) for v in versions)
    writers = {r.id for r in truth.job_runs((FRESH_JOB_NS, FRESH_JOB))}
    assert {v["createdByRun"]["id"] for v in versions if v.get("createdByRun")} <= writers
    one = client.get_dataset_version(FRESH_DS_NS, FRESH_OUTPUT, versions[0]["version"])
    assert (one["name"], one["version"]) == (FRESH_OUTPUT, versions[0]["version"])
    with pytest.raises(APIError):
        client.get_dataset("bigquery", "no/such dataset")


def test_column_lineage_by_dataset_field_and_job(client: MarquezClient) -> None:
    ns, src, dst = "bigquery", "mock-project.test.upload", "mock-project.test.upload_cp"
    want = {(f"datasetField:{ns}:{src}:{f}", f"datasetField:{ns}:{dst}:{f}") for f in "abc"}

    def edges(graph: dict[str, Any]) -> set[tuple[str, str]]:
        return {(e["origin"], e["destination"]) for n in graph["graph"] for e in n["inEdges"] + n["outEdges"]}

    assert want <= edges(client.get_column_lineage_by_dataset(ns, dst, depth=2))
    field = client.get_column_lineage_by_dataset_field(ns, dst, "a", depth=2)
    assert (f"datasetField:{ns}:{src}:a", f"datasetField:{ns}:{dst}:a") in edges(field)
    down = client.get_column_lineage_by_dataset_field(ns, src, "b", depth=2, with_downstream=True)
    assert f"datasetField:{ns}:{dst}:b" in {n["id"] for n in down["graph"]}
    # the fields of the datasets the job's latest run wrote (DatasetFieldDao.findFieldsUuidsByJob): BQ.copy
    # wrote upload_cp
    assert want <= edges(client.get_column_lineage_by_job("airflow", "BQ.copy", depth=2))


def _eventually(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 30) -> Any:
    """`fetch()` once `ok` holds (tag writes go through Kafka before reads see them), or its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        got = fetch()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_tags_and_sources(client: MarquezClient, truth: Truth) -> None:
    tag = "client/ünï tag"
    made = client.create_tag(tag, description="made by marquez-python")
    assert (made["name"], made["description"]) == (tag, "made by marquez-python")
    tagged = client.tag_dataset(FRESH_DS_NS, FRESH_INPUT, tag)
    assert (tagged["namespace"], tagged["name"]) == (FRESH_DS_NS, FRESH_INPUT) and tag in tagged["tags"]
    field = truth.schema_fields((FRESH_DS_NS, FRESH_INPUT))[0]  # type: ignore[index]
    on_field = client.tag_dataset_field(FRESH_DS_NS, FRESH_INPUT, field, "pii")
    assert "PII" in next(f["tags"] for f in on_field["fields"] if f["name"] == field)  # Marquez upper-cases
    later = _eventually(lambda: client.get_dataset(FRESH_DS_NS, FRESH_INPUT), lambda d: tag in d["tags"])
    assert tag in later["tags"]
    listed = _eventually(lambda: client.list_tags(limit=1000), lambda t: tag in {x["name"] for x in t["tags"]})
    assert {"name": tag, "description": "made by marquez-python"} in listed["tags"]
    sources = client.list_sources(limit=1000)["sources"]
    assert {s["name"] for s in sources} == truth.sources()
