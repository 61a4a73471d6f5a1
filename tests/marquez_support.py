"""The workload of the Marquez suites (tests/integration/test_marquez_contract.py: the contract and the
marquez-python client, on one stack) and what Marquez answers for it, computed from the events alone (never
from Upriver's answers).

The workload: the valid real-producer corpus files (tests/fixtures/openlineage-corpus: dbt, Flink, the
Python client, fluentd's valid cases), the OpenLineage compatibility scenarios (tests/fixtures/compatibility)
and a few "fresh" runs made from the Python client corpus event with times in the last days (so the
/stats windows have something to count) and names holding `/ : . # %`, spaces and unicode (names are
echoed exactly). The Marquez semantics used below are cited from MarquezProject/marquez at the commit in
tests/fixtures/marquez/README.md.
"""

from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from compat_support import NAMES, scenario_events
from marquez_calls import ms
from stack_support import isolated_settings

from upriver.local.stack import LocalStack, free_port

Doc = dict[str, Any]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CORPUS = FIXTURES / "openlineage-corpus"
VALID_FILES = ("dbt-postgres-duckdb.ndjson", "flink1.ndjson", "fluentd-valid.ndjson", "python-client.ndjson")
TOKEN = "marquez-suite-token"

# Marquez's RunState for an OpenLineage eventType (OpenLineageDao.getRunState)
RUN_STATE = {"START": "RUNNING", "RUNNING": "RUNNING", "COMPLETE": "COMPLETED", "FAIL": "FAILED", "ABORT": "ABORTED"}
TERMINAL = ("COMPLETE", "FAIL", "ABORT")

# the fresh runs' names: every character a producer may send that a URL or a node id treats specially
FRESH_JOB_NS = "sched/prod:eu #1"
FRESH_JOB = "etl/daily load: 100% ünï #2"
FRESH_DS_NS = "s3://lake/raw zone"
FRESH_INPUT = "in/orders 2024:q1 #a%.csv"
FRESH_OUTPUT = "out/revenue ünï.parquet"
# (hours before now, terminal eventType): inside the last day, inside the last week, older
FRESH_RUNS = ((0.2, "COMPLETE"), (2.5, "FAIL"), (5.0, "COMPLETE"), (30.0, "COMPLETE"), (80.0, "ABORT"))


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def corpus_events() -> list[tuple[str, Doc]]:
    """(source, event) of the valid corpus files, as each line was sent."""
    return [(name, json.loads(line)) for name in VALID_FILES for line in (CORPUS / name).read_text().splitlines()]


def scenario_workload() -> list[tuple[str, Doc]]:
    """The compatibility scenarios' events, except those Marquez refuses: a runId that is not a UUID
    (simple_run_event's "run_id"; Marquez's LineageEvent.Run.runId is a UUID, the event is a 400 there)."""
    return [(name, e) for name in NAMES for e in scenario_events(name) if _is_uuid(e["run"]["runId"])]


def fresh_events(now: datetime) -> list[Doc]:
    """START and a terminal event per FRESH_RUNS entry, made from the Python client corpus event that has
    every facet (its parent facet dropped: it names a run of another job)."""
    template = json.loads((CORPUS / "python-client.ndjson").read_text().splitlines()[0])
    events = []
    for i, (hours, terminal) in enumerate(FRESH_RUNS):
        end = now - timedelta(hours=hours)
        run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"upriver-marquez-fresh-{i}"))
        for event_type, at in (("START", end - timedelta(minutes=2)), (terminal, end)):
            e = copy.deepcopy(template)
            e["eventType"], e["eventTime"] = event_type, at.isoformat().replace("+00:00", "Z")
            e["run"]["runId"] = run_id
            del e["run"]["facets"]["parent"]
            e["job"]["namespace"], e["job"]["name"] = FRESH_JOB_NS, FRESH_JOB
            e["inputs"][0]["namespace"], e["inputs"][0]["name"] = FRESH_DS_NS, FRESH_INPUT
            e["outputs"][0]["namespace"], e["outputs"][0]["name"] = FRESH_DS_NS, FRESH_OUTPUT
            if event_type == "START":
                e["outputs"] = []
            events.append(e)
    return events


@dataclass
class RunTruth:
    id: str
    job: tuple[str, str]
    events: list[Doc] = field(default_factory=list)

    def latest(self) -> Doc:
        """The run's deciding event: the latest by eventTime, a terminal one winning a tie."""
        return max(self.events, key=lambda e: (ms(e["eventTime"]), e["eventType"] in TERMINAL))

    @property
    def state(self) -> str | None:
        """Marquez's state: that of the run's last event processed (OpenLineageDao: each event upserts the
        run state); None when the latest event by time and the last one sent disagree."""
        by_time, by_order = RUN_STATE[self.latest()["eventType"]], RUN_STATE[self.events[-1]["eventType"]]
        return by_time if by_time == by_order else None

    @property
    def started(self) -> int | None:
        """Marquez's startedAt: the time of the START/RUNNING event processed last (RunDao.updateStartState
        on each); None unless all of them carry one time."""
        starts = {ms(e["eventTime"]) for e in self.events if e["eventType"] in ("START", "RUNNING")}
        return next(iter(starts)) if len(starts) == 1 else None

    @property
    def ended(self) -> int | None:
        ends = {ms(e["eventTime"]) for e in self.events if e["eventType"] in TERMINAL}
        return next(iter(ends)) if len(ends) == 1 else None

    def facet_names(self, side: str) -> set[str]:
        """Names of the run's (side "run") or its job's (side "job") facets over all its events; Marquez
        drops spark_unknown from run facets (RunFacetsDao.insertRunFacetsFor)."""
        names = {k for e in self.events for k in (e[side].get("facets") or {})}
        return names - {"spark_unknown"} if side == "run" else names

    def io(self) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]:
        ins = frozenset((d["namespace"], d["name"]) for e in self.events for d in e.get("inputs") or [])
        outs = frozenset((d["namespace"], d["name"]) for e in self.events for d in e.get("outputs") or [])
        return ins, outs


@dataclass
class Truth:
    """What the events say: every value the suites expect is computed here."""

    events: list[Doc]
    runs: dict[str, RunTruth] = field(default_factory=dict)
    jobs: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # run ids, by job
    datasets: dict[tuple[str, str], list[Doc]] = field(default_factory=dict)  # every mention, by dataset
    namespaces: set[str] = field(default_factory=set)
    position: dict[int, int] = field(default_factory=dict)  # id(event) -> its place in the sending order
    aliases: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # symlink -> dataset sent

    @classmethod
    def of(cls, events: list[Doc]) -> Truth:
        t = cls(events=events, position={id(e): i for i, e in enumerate(events)})
        for e in events:
            job = (e["job"]["namespace"], e["job"]["name"])
            run = t.runs.setdefault(e["run"]["runId"], RunTruth(e["run"]["runId"], job))
            run.events.append(e)
            if run.id not in t.jobs.setdefault(job, []):
                t.jobs[job].append(run.id)
            t.namespaces.add(job[0])
            for d in [*(e.get("inputs") or []), *(e.get("outputs") or [])]:
                t.datasets.setdefault((d["namespace"], d["name"]), []).append({**d, "_time": ms(e["eventTime"])})
                t.namespaces.add(d["namespace"])
                # Marquez makes a namespace of each symlink identifier's namespace and a dataset_symlinks row
                # for its name (OpenLineageDao.upsertLineageDataset), which datasets_view lists as a dataset
                for ident in ((d.get("facets") or {}).get("symlinks") or {}).get("identifiers") or []:
                    t.namespaces.add(ident["namespace"])
                    t.aliases[(ident["namespace"], ident["name"])] = (d["namespace"], d["name"])
        return t

    def __repr__(self) -> str:
        n = len(self.events), len(self.runs), len(self.jobs), len(self.datasets)
        return f"Truth({n[0]} events, {n[1]} runs, {n[2]} jobs, {n[3]} datasets)"

    def jobs_in(self, namespace: str) -> set[str]:
        return {name for ns, name in self.jobs if ns == namespace}

    def datasets_in(self, namespace: str) -> set[str]:
        """The names Marquez lists in a namespace: the datasets as sent and their symlinks' names
        (R__Datasets_view.sql joins every dataset_symlinks row, the primary one and the identifiers)."""
        return {name for ns, name in [*self.datasets, *self.aliases] if ns == namespace}

    def job_runs(self, job: tuple[str, str]) -> list[RunTruth]:
        return [self.runs[r] for r in self.jobs[job]]

    def current_runs(self, job: tuple[str, str]) -> set[str]:
        """Marquez's jobs.current_run_uuid is the run of the job's last event processed: the run of its
        last event sent, or of its latest by time (both accepted when they differ)."""
        runs = self.job_runs(job)
        last_sent = max(runs, key=lambda r: max(self.position[id(e)] for e in r.events))
        return {last_sent.id, max(runs, key=lambda r: ms(r.latest()["eventTime"])).id}

    def updated_at(self, job: tuple[str, str]) -> set[int]:
        """The job's updatedAt: its last event's time, sent or by time (JobDao.upsertJob: updated_at)."""
        events = [e for r in self.job_runs(job) for e in r.events]
        return {
            ms(max(events, key=lambda e: self.position[id(e)])["eventTime"]),
            max(ms(e["eventTime"]) for e in events),
        }

    def first_seen(self, key: tuple[str, str], kind: str) -> int:
        """When a job or dataset was first named (Marquez's created_at is the creating event's eventTime)."""
        if kind == "job":
            return min(ms(e["eventTime"]) for r in self.job_runs(key) for e in r.events)
        return min(d["_time"] for d in self.datasets[key])

    def schema_fields(self, key: tuple[str, str]) -> list[str] | None:
        """The dataset's fields: those of the schema facet of its last mention, when its last by time and its
        last sent are both that one facet (Marquez: the current version's, made by the last write processed);
        else None."""
        mentions = self.datasets[key]
        ends = [mentions[-1], max(reversed(mentions), key=lambda d: d["_time"])]
        seen = {
            tuple(f["name"] for f in ((d.get("facets") or {}).get("schema") or {}).get("fields") or [])
            if "schema" in (d.get("facets") or {})
            else None
            for d in ends
        }
        only = next(iter(seen))
        return list(only) if len(seen) == 1 and only is not None else None

    def sources(self) -> set[str]:
        """Marquez's sources: each dataSource facet's name, and "default" for a dataset without one
        (OpenLineageDao.upsertLineageDataset: SourceDao.upsertOrDefault(..., DEFAULT_SOURCE_NAME))."""
        names = set()
        for mentions in self.datasets.values():
            for d in mentions:
                source = (d.get("facets") or {}).get("dataSource")
                names.add(source["name"] if source and source.get("name") else "default")
        return names


def workload(now: datetime) -> tuple[list[Doc], list[Doc], list[Doc]]:
    """(corpus events, scenario events, fresh events) in sending order."""
    return [e for _, e in corpus_events()], [e for _, e in scenario_workload()], fresh_events(now)


# ---- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any  # parsed JSON, or the text when it is not JSON
    raw: bytes


def request(url: str, method: str = "GET", body: Any = None, token: str = TOKEN) -> Reply:
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Reply(status, parsed, raw)


def seg(name: str) -> str:
    """A name as one path segment (what marquez-python does: urllib's quote with safe='')."""
    return urllib.parse.quote(name, safe="")


def api(base: str, path: str, **params: Any) -> str:
    query = urllib.parse.urlencode(params, doseq=True)
    return f"{base}/api/v1{path}" + (f"?{query}" if query else "")


def send(base: str, corpus: list[Doc], scenarios: list[Doc], fresh: list[Doc]) -> None:
    """The corpus through POST /api/v1/lineage/batch (one request a file-sized chunk), the scenarios and
    the fresh runs one event a request, as OpenLineage's HTTP transport sends them."""
    for start in range(0, len(corpus), 200):
        chunk = corpus[start : start + 200]
        reply = request(f"{base}/api/v1/lineage/batch", "POST", chunk)
        assert reply.status == 200 and reply.body["failed"] == 0, (reply.status, reply.body)
    for event in [*scenarios, *fresh]:
        reply = request(f"{base}/api/v1/lineage", "POST", event)
        assert reply.status == 201, (reply.status, reply.body)


def wait_loaded(stack: LocalStack, truth: Truth, timeout: float = 120) -> None:
    """Until every run is in ClickHouse, the edge count has settled and (when the route answers) the raw
    events' totalCount reached the number sent."""
    assert stack.storage is not None and stack.api is not None
    client, db = stack.storage.read_client, stack.storage.database
    deadline = time.monotonic() + timeout
    last: tuple[int, int, int] = (-1, -1, -1)
    while time.monotonic() < deadline:
        runs = client.query(f"SELECT uniqExact(run_id) FROM {db}.runs").result_rows[0][0]
        edges = client.query(f"SELECT count() FROM {db}.edges").result_rows[0][0]
        events = request(api(stack.api.url, "/events/lineage", limit=1))
        count = events.body.get("totalCount", -1) if events.status == 200 and isinstance(events.body, dict) else -2
        now = (runs, edges, count)
        if runs >= len(truth.runs) and count in (-2, len(truth.events)) and now == last:
            return
        last = now
        time.sleep(1.0)
    raise AssertionError(
        f"workload not loaded after {timeout}s: runs, edges, events = {last}, want "
        f"{len(truth.runs)} runs and {len(truth.events)} events"
    )


@contextmanager
def loaded_stack(kafka_bootstrap: str, chdb_url: str, home: Path, name: str) -> Iterator[tuple[LocalStack, Truth]]:
    """A stack of its own with the whole workload sent over HTTP and loaded, and its Truth."""
    settings = isolated_settings(kafka_bootstrap, chdb_url, home, name, api_token=TOKEN, health_enabled=False)
    with LocalStack(settings, api_port=free_port()) as stack:
        stack.wait_worker_ready()
        assert stack.api is not None
        corpus, scenarios, fresh = workload(datetime.now(UTC))
        truth = Truth.of([*corpus, *scenarios, *fresh])
        send(stack.api.url, corpus, scenarios, fresh)
        wait_loaded(stack, truth)
        yield stack, truth
