"""A deterministic AI-platform workload and its ground truth (the simulator knows what it emitted).

Per cycle (a simulated day): a shared `core.users` table; per team, tabular ML — raw tables, features,
training (the training set changes over retrains), evaluation, promotion or rollback to a deployment,
predictions, reports; per RAG app — documents, chunks, embeddings, an append-only vector index, prompt
versions, the LLM app's deployment and its answers. Some runs fail, events of a run arrive in any order
or late, some are re-sent, a few messages are malformed; drift signals and a retirement now and then.

The expected edges are stated here from the jobs' meaning, independently of the processor's code, and
`Truth.valid_edges` applies docs/lineage-model.md's time-travel rules on its own, so tests can check
the pipeline's answers against it.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from producers.catalogue import Job, owner, rag_app_jobs, ref
from producers.truth import NOT_VALID, SOURCES, NodeTruth, Truth, TruthRun
from schemas import identity
from schemas.codec import Codec
from schemas.keys import partition_key
from schemas.model import ArtifactRef, EventType, JobKind, LineageEvent, node_id

PRODUCER = "https://upriver.dev/simulator"
NAMED_TEAMS = ("growth", "risk", "search")
NAMED_APPS = ("support_bot",)
STEP_MS = 1000


@dataclass(frozen=True)
class SimMessage:
    key: bytes
    event: LineageEvent | None  # None for a malformed message
    payload: bytes | None = None  # the raw bytes of a malformed message
    label: str = "event"  # event | duplicate | malformed


class Simulator:
    """Generates `n` unique valid events (plus duplicates and malformed messages) deterministically."""

    def __init__(
        self,
        codec: Codec,
        *,
        seed: int = 7,
        start_ms: int = 1_767_225_600_000,  # 2026-01-01T00:00:00Z
        clock: Callable[[], int] | None = None,
        duplicate_rate: float = 0.02,
        malformed_rate: float = 0.002,
        fail_rate: float = 0.03,
        teams: int = 3,
        rag_apps: int = 1,
        docs_per_cycle: int = 4,
        chunks_per_doc: int = 4,
        late_rate: float = 0.02,
        reorder_rate: float = 0.05,
        drift_rate: float = 0.1,
        stuck_rate: float = 0.0,
        stop_ingest_after: int | None = None,
        record_truth: bool = True,
    ) -> None:
        self._codec = codec
        self._rng = random.Random(seed)
        self._start_ms = start_ms
        self._clock = clock
        self._duplicate_rate = duplicate_rate
        self._malformed_rate = malformed_rate
        self._fail_rate = fail_rate
        self._late_rate = late_rate
        self._reorder_rate = reorder_rate
        self._drift_rate = drift_rate
        self._stuck_rate = stuck_rate  # runs that start and never finish (completeness scenario)
        self._stop_ingest_after = stop_ingest_after  # the first team's raw_events stops (staleness scenario)
        self._docs = docs_per_cycle
        self._chunks = chunks_per_doc
        self._record = record_truth
        self._slot = 0  # synthetic time slots handed out
        team_names = [*NAMED_TEAMS[:teams], *(f"team_{i:03d}" for i in range(len(NAMED_TEAMS), teams))]
        app_names = [*NAMED_APPS[:rag_apps], *(f"app_{i:03d}" for i in range(len(NAMED_APPS), rag_apps))]
        self.truth = Truth(teams=tuple(team_names), apps=tuple(app_names))
        self.truth.production_model = Truth.model(team_names[0])
        self.truth.production_deployment = Truth.deployment(team_names[0])
        self.truth.rag_deployment = node_id("DEPLOYMENT", "serving", app_names[0]) if app_names else ""
        self._doc_counter: dict[str, int] = defaultdict(int)
        self._deployed: dict[str, int] = {}
        self._stream = self._events()

    @staticmethod
    def knobs_for_edges(target_edges: int) -> dict[str, Any]:
        """Knobs for a benchmark graph of about `target_edges` edges: more teams and apps as it grows;
        most edges come from documents, chunks and embeddings (about 18 per document)."""
        scale = max(1, target_edges // 1_000_000)
        return {
            "teams": min(200, 10 * scale),
            "rag_apps": min(50, 5 * scale),
            "docs_per_cycle": 50,
            "chunks_per_doc": 8,
            "fail_rate": 0.01,
            "late_rate": 0.0,
            "reorder_rate": 0.0,
            "drift_rate": 0.0,
        }

    # ---- identity and time --------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _time(self) -> int:
        if self._clock is not None:
            return self._clock()
        self._slot += 1
        return self._start_ms + self._slot * STEP_MS

    # ---- the workload -------------------------------------------------------------------------

    def _team_jobs(self, team: str, cycle: int) -> list[Job]:
        day = f"d{cycle:04d}"
        ns = f"pipelines.{team}"
        raw = {s: ref("DATASET", "warehouse", f"{team}.raw_{s}", day, ownership=owner(team)) for s in SOURCES}
        raw["accounts"] = ref(
            "DATASET", "warehouse", f"{team}.raw_accounts", day,
            ownership=owner(team),
            schema={"fields": [{"name": "account_id", "type": "STRING"}, {"name": "email", "type": "STRING"}]},
            tags={"tags": [{"key": "PII", "value": "true", "field": "email"}]},
        )  # fmt: skip
        core = ref("DATASET", "warehouse", "core.users", day)
        lineage = {
            "fields": {
                "days_active": {"inputFields": [{"namespace": "warehouse", "name": f"{team}.raw_events", "field": "ts",
                                                 "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION"}]}]},
                "email_domain": {"inputFields": [{"namespace": "warehouse", "name": f"{team}.raw_accounts",
                                                  "field": "email"}]},
            }
        }  # fmt: skip
        activity = ref("FEATURE", "feast", f"{team}.user_activity", day, ownership=owner(team), columnLineage=lineage)
        profile = ref("FEATURE_VIEW", "feast", f"{team}.account_profile", day, ownership=owner(team))
        risk = ref("FEATURE", "feast", f"{team}.risk_signals", day, ownership=owner(team))
        version = f"v{cycle + 1}"
        model = ref("MODEL", "registry", f"{team}_model", version, ownership=owner(team))
        stop = self._stop_ingest_after
        stopped = stop is not None and cycle >= stop and team == self.truth.teams[0]
        jobs = [
            Job(f"ingest_{s}", ns, JobKind.INGEST, (ref("DATASET", "s3://landing", f"{team}/{s}"),), (raw[s],),
                {"*": "DERIVED_FROM"})
            for s in SOURCES
            if not (stopped and s == "events")
        ]  # fmt: skip
        jobs.append(Job("build_features", ns, JobKind.FEATURE, (raw["events"], raw["accounts"], core),
                        (activity, profile), {"*": "DERIVED_FROM"}))  # fmt: skip
        training = [activity, profile]
        if cycle >= 2:  # a new feature joins the training set
            jobs.append(Job("build_risk_signals", ns, JobKind.FEATURE, (raw["transactions"],), (risk,),
                            {"*": "DERIVED_FROM"}))  # fmt: skip
            training.append(risk)
        if cycle < 4:  # ... and from cycle 4 on the raw table is no longer read directly
            training.append(raw["transactions"])
        jobs.append(Job(f"train_{team}_model", ns, JobKind.TRAIN, tuple(training), (model,), {"*": "TRAINED_ON"}))
        jobs.append(Job(f"evaluate_{team}_model", ns, JobKind.EVALUATE,
                        (model, ref("DATASET", "warehouse", f"{team}.holdout")),
                        (ref("EVALUATION", "evals", f"{team}_model_eval", version),),
                        {"*": "EVALUATED_ON"}))  # fmt: skip
        jobs += self._serving_jobs(team, cycle, ns, model, activity)
        return jobs

    def _serving_jobs(self, team: str, cycle: int, ns: str, model: ArtifactRef, activity: ArtifactRef) -> list[Job]:
        """Promotion (or now and then a rollback), scoring, a legacy export and a report of one team's model."""
        day = f"d{cycle:04d}"
        deployment_node = ref("DEPLOYMENT", "serving", f"{team}-model-api")
        scores = ref("PREDICTION", "predictions", f"{team}.scores", day)
        jobs: list[Job] = []
        # promotion when the evaluation passes; now and then a rollback to the previous version
        deploy_version: int | None = None
        if cycle >= 2 and self._rng.random() < 0.1 and team in self._deployed:
            deploy_version = max(1, self._deployed[team] - 1)
        elif self._rng.random() < 0.85:
            deploy_version = cycle + 1
        if deploy_version is not None:
            self._deployed[team] = deploy_version
            jobs.append(Job(f"deploy_{team}_model", ns, JobKind.DEPLOY,
                            (replace(model, version=f"v{deploy_version}", facets=None),),
                            (replace(deployment_node, version=f"v{deploy_version}"),),
                            {"*": "DEPLOYED_AS"}))  # fmt: skip
        if team in self._deployed:
            jobs.append(Job(f"score_{team}", ns, JobKind.PREDICT, (deployment_node, activity), (scores,),
                            {"*": "PREDICTED_BY"}))  # fmt: skip
        if cycle < 2:  # a legacy export, retired at cycle 2
            jobs.append(Job(f"export_legacy_{team}", ns, JobKind.OTHER, (scores,),
                            (ref("DATASET", "warehouse", f"{team}.legacy_scores", day),),
                            {"*": "DERIVED_FROM"}))  # fmt: skip
        if cycle % 3 == 2:
            jobs.append(Job(f"report_{team}", ns, JobKind.TRANSFORM, (scores,),
                            (ref("DASHBOARD", "bi", f"{team}.weekly"),), {"*": "DERIVED_FROM"}))  # fmt: skip
        return jobs

    def _app_jobs(self, app: str, cycle: int) -> list[Job]:
        first = self._doc_counter[app]
        self._doc_counter[app] += self._docs
        return rag_app_jobs(app, cycle, first, self._docs, self._chunks)

    def _cycle(self, cycle: int) -> Iterator[Job | tuple[str, ArtifactRef]]:
        day = f"d{cycle:04d}"
        yield Job("ingest_core_users", "pipelines.core", JobKind.INGEST,
                  (ref("DATASET", "s3://landing", "core/users"),), (ref("DATASET", "warehouse", "core.users", day),),
                  {"*": "DERIVED_FROM"})  # fmt: skip
        for team in self.truth.teams:
            yield from self._team_jobs(team, cycle)
            if cycle == 2:
                yield ("RETIRE", ref("DATASET", "warehouse", f"{team}.legacy_scores"))
            if self._rng.random() < self._drift_rate:
                yield ("DRIFT", ref("FEATURE", "feast", f"{team}.user_activity", day))
        for app in self.truth.apps:
            yield from self._app_jobs(app, cycle)
            if self._rng.random() < self._drift_rate:
                yield ("DRIFT", ref("EMBEDDING", "vectors", f"{app}/doc-{self._doc_counter[app] - 1}"))

    def _event(self, job_ns: str, job: str, kind: JobKind, etype: EventType, run_id: str, t: int,
               inputs: tuple[ArtifactRef, ...] = (), outputs: tuple[ArtifactRef, ...] = (),
               facets: str = "{}") -> LineageEvent:  # fmt: skip
        return LineageEvent(
            event_id=self._uuid(), event_time=t, producer=PRODUCER, event_type=etype, job_namespace=job_ns,
            job_name=job, job_kind=kind, run_id=run_id, inputs=inputs, outputs=outputs, facets=facets,
        )  # fmt: skip

    def _run_events(self, job: Job) -> tuple[list[LineageEvent], Callable[[], None]]:
        """One run's events in time order (the caller may emit them in another order), and the call
        that records the run in the truth — made when its last event is emitted, so a workload cut off
        mid-run never expects what was not sent."""
        run_id = self._uuid()
        failed = self._rng.random() < self._fail_rate
        mode = self._rng.random()
        ev = self._event
        t0 = self._time()
        out: list[LineageEvent]
        if self._stuck_rate and not failed and self._rng.random() < self._stuck_rate:
            out = [ev(job.namespace, job.name, job.kind, EventType.START, run_id, t0, job.inputs)]
        elif failed:
            error = json.dumps({"errorMessage": {"message": "RuntimeError: simulated failure",
                                                 "programmingLanguage": "python"}})  # fmt: skip
            out = [ev(job.namespace, job.name, job.kind, EventType.START, run_id, t0, job.inputs)]
            if self._rng.random() < 0.3:  # outputs declared while running, then the run fails
                out.append(ev(job.namespace, job.name, job.kind, EventType.RUNNING, run_id, self._time(),
                              outputs=job.outputs))  # fmt: skip
            out.append(ev(job.namespace, job.name, job.kind, EventType.FAIL, run_id, self._time(), facets=error))
        elif mode < 0.6:
            out = [ev(job.namespace, job.name, job.kind, EventType.START, run_id, t0, job.inputs),
                   ev(job.namespace, job.name, job.kind, EventType.COMPLETE, run_id, self._time(),
                      outputs=job.outputs)]  # fmt: skip
        elif mode < 0.85:
            out = [ev(job.namespace, job.name, job.kind, EventType.START, run_id, t0),
                   ev(job.namespace, job.name, job.kind, EventType.COMPLETE, run_id, self._time(), job.inputs,
                      job.outputs)]  # fmt: skip
        else:  # inputs split across START, RUNNING and COMPLETE
            half = len(job.inputs) // 2
            out = [ev(job.namespace, job.name, job.kind, EventType.START, run_id, t0, job.inputs[:half]),
                   ev(job.namespace, job.name, job.kind, EventType.RUNNING, run_id, self._time(), job.inputs[half:]),
                   ev(job.namespace, job.name, job.kind, EventType.COMPLETE, run_id, self._time(), job.inputs[-1:],
                      job.outputs)]  # fmt: skip
        ordered = list(out)
        return out, lambda: self._expect(job, run_id, t0, ordered)

    def _expect(self, job: Job, run_id: str, t0: int, events: list[LineageEvent]) -> None:
        status = events[-1].event_type.value
        outputs = {o.node_id: o for e in events for o in e.outputs}
        pairs = tuple(
            (i.node_id, o.node_id, job.type_for(i))
            for o in outputs.values()
            for i in job.inputs
            if i.node_id != o.node_id
        )
        self.truth.edge_rows_emitted += len(pairs)
        if status == "FAIL":
            self.truth.failed_runs += 1
        if not self._record:
            return
        valid = status not in NOT_VALID
        self.truth.runs[run_id] = TruthRun(
            job=f"{job.namespace}/{job.name}",
            job_kind=job.kind.value,
            started_at=t0,
            status=status,
            inputs=tuple((i.node_id, i.version) for i in job.inputs),
            outputs=tuple((o.node_id, o.version) for o in outputs.values()),
            append=frozenset(n for n, o in outputs.items() if o.facets and '"APPEND"' in o.facets),
            pairs=pairs,
            ended_at=events[-1].event_time if status in ("COMPLETE", "FAIL", "ABORT") else None,
        )
        for src, dst, etype in pairs:
            self.truth.edge_rows.add((src, dst, etype, run_id))
            if valid:
                self.truth.edges.add((src, dst, etype))
        t_end = events[-1].event_time
        for art, side in [*((i, "in") for i in job.inputs), *((o, "out") for o in outputs.values())]:
            node = self.truth.nodes.setdefault(art.node_id, NodeTruth(kind=art.kind))
            facets = json.loads(art.facets) if art.facets else {}
            if "ownership" in facets:
                node.owner = facets["ownership"]["owners"][0]["name"]
            for tag in facets.get("tags", {}).get("tags", []):
                node.tags.add(f"{tag['key']}:{tag['field']}" if tag.get("field") else tag["key"])
            if art.version is not None and t_end >= node.version_time:
                node.latest_version, node.version_time = art.version, t_end
            if side == "out" and valid and (t0, run_id) > node.produced_at:
                node.producing_job, node.produced_at = identity.job_id(job.namespace, job.name), (t0, run_id)
            if side == "out" and valid and art.facets and "columnLineage" in art.facets:
                kinds = {(i.namespace, i.name): i.kind for i in job.inputs}
                for column, spec in facets["columnLineage"]["fields"].items():
                    for f in spec["inputFields"]:
                        src = node_id(kinds.get((f["namespace"], f["name"]), "DATASET"), f["namespace"], f["name"])
                        ttype = (f.get("transformations") or [{"type": "DIRECT"}])[0]["type"]
                        edge = (f"{src}#{f['field']}", f"{art.node_id}#{column}", f"COLUMN_{ttype}")
                        self.truth.column_edges.add(edge)

    def _signal(self, kind: str, subject: ArtifactRef) -> LineageEvent:
        t = self._time()
        facets = "{}"
        if kind == "DRIFT":
            value = round(self._rng.uniform(0.2, 0.6), 3)
            facets = json.dumps({"drift": {"metric": "psi", "value": value, "threshold": 0.2, "drifted": True}},
                                sort_keys=True)  # fmt: skip
        if self._record:
            self.truth.signals.append((kind, subject.node_id, t))
            self.truth.runs[f"signal-{t}-{subject.node_id}"] = TruthRun(
                job=f"signals/{kind.lower()}", job_kind="OTHER", started_at=t, status=kind,
                inputs=((subject.node_id, subject.version),), outputs=(), append=frozenset(), pairs=(), ended_at=t,
            )  # fmt: skip
        return self._event("signals", kind.lower(), JobKind.OTHER, EventType(kind), self._uuid(), t, (subject,),
                           facets=facets)  # fmt: skip

    def _events(self) -> Iterator[LineageEvent]:
        cycle = 0
        while True:
            for item in self._cycle(cycle):
                if isinstance(item, Job):
                    events, record = self._run_events(item)
                    if len(events) > 1 and self._rng.random() < self._reorder_rate:
                        self._rng.shuffle(events)  # e.g. COMPLETE before START
                    for i, event in enumerate(events):
                        if i == len(events) - 1:
                            record()
                        yield event
                else:
                    yield self._signal(*item)
            cycle += 1

    # ---- messages -----------------------------------------------------------------------------

    def _malformed(self, like: LineageEvent) -> SimMessage:
        good = self._codec.encode(like.to_record())
        choice = self._rng.randrange(4)
        if choice == 0:
            kind, payload = "random-bytes", self._rng.randbytes(self._rng.randrange(1, 64))
        elif choice == 1:
            kind, payload = "truncated", good[: max(11, len(good) // 2)]
        elif choice == 2:
            kind, payload = "json-not-avro", b'{"event_id": "not avro"}'
        else:
            bad = replace(like, event_id=self._uuid(), job_name="")
            kind, payload = "empty-job-name", self._codec.encode(bad.to_record())
        self.truth.malformed += 1
        self.truth.malformed_kinds[kind] = self.truth.malformed_kinds.get(kind, 0) + 1
        return SimMessage(partition_key(like.run_id), None, payload, "malformed")

    def messages(self, n: int) -> Iterator[SimMessage]:
        """`n` more unique valid events in emission order, with duplicates, late events and malformed
        messages mixed in. Calls continue one workload: the truth accumulates across them."""
        pending: dict[int, list[tuple[LineageEvent, str]]] = {}
        position = 0
        target = self.truth.events + n
        while self.truth.events < target:
            event = next(self._stream)
            self.truth.events += 1
            position += 1
            if self._late_rate and self._rng.random() < self._late_rate:
                pending.setdefault(position + self._rng.randrange(1, 30), []).append((event, "event"))
            else:
                yield SimMessage(partition_key(event.run_id), event)
            if self._duplicate_rate and self._rng.random() < self._duplicate_rate:
                pending.setdefault(position + self._rng.randrange(1, 50), []).append((event, "duplicate"))
            for late, label in pending.pop(position, ()):
                if label == "duplicate":
                    self.truth.duplicates += 1
                yield SimMessage(partition_key(late.run_id), late, label=label)
            if self._malformed_rate and self._rng.random() < self._malformed_rate:
                yield self._malformed(event)
        for key in sorted(pending):  # late events and re-sends still scheduled go out last
            for late, label in pending[key]:
                if label == "duplicate":
                    self.truth.duplicates += 1
                yield SimMessage(partition_key(late.run_id), late, label=label)
