"""A deterministic AI-platform workload and its ground truth (the simulator knows what it emitted).

Per team, every cycle: ingest raw tables -> build features -> train a model version -> evaluate it
-> deploy it -> batch predictions; each run emits START then COMPLETE (or FAIL, with no outputs).
Some events are re-sent (duplicates) and some messages are malformed. The expected edges are stated
here from the jobs' meaning, independently of the processor's derivation code, so tests can check it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from schemas.codec import Codec
from schemas.keys import partition_key
from schemas.model import ArtifactRef, EventType, JobKind, LineageEvent, node_id

PRODUCER = "https://upriver.dev/simulator"
# team -> the model it trains; the first team's deployment is "the production model" of the demo.
TEAMS: dict[str, str] = {"growth": "churn_model", "risk": "fraud_model", "search": "ranking_model"}
SOURCES = ("events", "accounts", "transactions")


@dataclass(frozen=True)
class Job:
    name: str
    kind: JobKind
    edge_type: str  # what every output is to every input, stated by the workload's author
    inputs: tuple[ArtifactRef, ...]
    outputs: tuple[ArtifactRef, ...]


@dataclass(frozen=True)
class SimMessage:
    key: bytes
    event: LineageEvent | None  # None for a malformed message
    payload: bytes | None = None  # the raw bytes of a malformed message
    label: str = "event"  # event | duplicate | malformed


@dataclass
class Truth:
    """What the simulator emitted and what the pipeline must therefore store."""

    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    failed_runs: int = 0
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    edge_rows: set[tuple[str, str, str, str]] = field(default_factory=set)  # + run_id
    malformed_kinds: dict[str, int] = field(default_factory=dict)
    production_model: str = ""
    production_deployment: str = ""

    def upstream(self, node: str) -> set[str]:
        """Every node upstream of `node` by the expected edges (not including `node`)."""
        parents: dict[str, set[str]] = {}
        for src, dst, _ in self.edges:
            parents.setdefault(dst, set()).add(src)
        seen: set[str] = set()
        frontier = [node]
        while frontier:
            nxt = [p for n in frontier for p in parents.get(n, ()) if p not in seen]
            seen.update(nxt)
            frontier = nxt
        return seen


def _ds(namespace: str, name: str, version: str | None = None) -> ArtifactRef:
    return ArtifactRef("DATASET", namespace, name, version)


def team_jobs(team: str, cycle: int) -> list[Job]:
    """One cycle of a team's pipeline, with the artifact versions of that cycle."""
    day = f"2026-01-{1 + cycle % 28:02d}+{cycle // 28}"
    model = TEAMS[team]
    raw = {s: _ds("warehouse", f"{team}.raw_{s}", day) for s in SOURCES}
    features = (
        ArtifactRef("FEATURE", "feast", f"{team}.user_activity", day),
        ArtifactRef("FEATURE", "feast", f"{team}.account_profile", day),
    )
    model_ref = ArtifactRef("MODEL", "registry", model, f"v{cycle + 1}")
    deployment = ArtifactRef("DEPLOYMENT", "serving", f"{model}-api", f"v{cycle + 1}")
    jobs = [
        Job(f"ingest_{s}", JobKind.INGEST, "DERIVED_FROM", (_ds("s3://landing", f"{team}/{s}"),), (raw[s],))
        for s in SOURCES
    ]
    jobs += [
        Job("build_features", JobKind.FEATURE, "DERIVED_FROM", (raw["events"], raw["accounts"]), features),
        Job(f"train_{model}", JobKind.TRAIN, "TRAINED_ON", (*features, raw["transactions"]), (model_ref,)),
        Job(
            f"evaluate_{model}",
            JobKind.EVALUATE,
            "EVALUATED_ON",
            (model_ref, _ds("warehouse", f"{team}.holdout")),
            (ArtifactRef("EVALUATION", "evals", f"{model}_eval", f"v{cycle + 1}"),),
        ),
        Job(f"deploy_{model}", JobKind.DEPLOY, "DEPLOYED_AS", (model_ref,), (deployment,)),
        Job(
            f"score_{model}",
            JobKind.PREDICT,
            "PREDICTED_BY",
            (deployment, features[0]),
            (ArtifactRef("PREDICTION", "predictions", f"{team}.{model}_scores", day),),
        ),
    ]
    return jobs


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
    ) -> None:
        self._codec = codec
        self._rng = random.Random(seed)
        self._start_ms = start_ms
        self._clock = clock
        self._duplicate_rate = duplicate_rate
        self._malformed_rate = malformed_rate
        self._fail_rate = fail_rate
        self.truth = Truth()
        first = next(iter(TEAMS))
        self.truth.production_model = node_id("MODEL", "registry", TEAMS[first])
        self.truth.production_deployment = node_id("DEPLOYMENT", "serving", f"{TEAMS[first]}-api")
        self._stream = self._events()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _time(self) -> int:
        if self._clock is not None:
            return self._clock()
        return self._start_ms + self.truth.events * 1000

    def _runs(self) -> Iterator[tuple[Job, str, bool]]:
        cycle = 0
        while True:
            for team in TEAMS:
                for job in team_jobs(team, cycle):
                    failed = self._rng.random() < self._fail_rate
                    yield job, self._uuid(), failed
            cycle += 1

    def _events(self) -> Iterator[LineageEvent]:
        for job, run_id, failed in self._runs():
            namespace = job.outputs[0].namespace if job.outputs else "default"
            for step in ("START", "END"):
                end = step == "END"
                event_type = EventType.START if not end else (EventType.FAIL if failed else EventType.COMPLETE)
                outputs = job.outputs if end and not failed else ()
                event = LineageEvent(
                    event_id=self._uuid(),
                    event_time=self._time(),
                    producer=PRODUCER,
                    event_type=event_type,
                    job_namespace=f"pipelines.{namespace}",
                    job_name=job.name,
                    job_kind=job.kind,
                    run_id=run_id,
                    inputs=job.inputs,
                    outputs=outputs,
                )
                if outputs:
                    self._expect(job, run_id)
                if end and failed:
                    self.truth.failed_runs += 1
                yield event

    def _expect(self, job: Job, run_id: str) -> None:
        for o in job.outputs:
            for i in job.inputs:
                edge = (i.node_id, o.node_id, job.edge_type)
                self.truth.edges.add(edge)
                self.truth.edge_rows.add((*edge, run_id))

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
        """`n` more unique valid events in emission order, with duplicates and malformed ones mixed in.

        Calls continue one workload: the truth accumulates across them.
        """
        pending: dict[int, list[LineageEvent]] = {}
        position = 0
        target = self.truth.events + n
        while self.truth.events < target:
            event = next(self._stream)
            self.truth.events += 1
            yield SimMessage(partition_key(event.run_id), event)
            position += 1
            if self._rng.random() < self._duplicate_rate:
                pending.setdefault(position + self._rng.randrange(1, 50), []).append(event)
            for dup in pending.pop(position, ()):
                self.truth.duplicates += 1
                yield SimMessage(partition_key(dup.run_id), dup, label="duplicate")
            if self._rng.random() < self._malformed_rate:
                yield self._malformed(event)
        for dups in pending.values():  # re-sends still scheduled at the end go out last
            for dup in dups:
                self.truth.duplicates += 1
                yield SimMessage(partition_key(dup.run_id), dup, label="duplicate")
