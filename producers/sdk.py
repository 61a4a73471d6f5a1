"""The lineage SDK for pipeline code: runs as context managers, a decorator, and signal helpers.

    emitter = Emitter.kafka("localhost:9092", namespace="pipelines.growth")
    with emitter.run(job="train_churn", kind="TRAIN") as run:
        run.read("dataset:warehouse/growth.features@2026-01-05")
        model = train(...)
        run.wrote(artifact("MODEL", "registry", "churn", version="v7", owner="team:growth"))

Entering the block emits START; leaving it emits COMPLETE with everything read and written, or FAIL with
the exception's type and message (and the exception propagates). A run opened inside another run's
block gets it as parent. Emitting never blocks or raises on Kafka trouble, nor for an event Kafka refuses
(one over message.max.bytes, 1 MB by default): such an event is logged with its id and size and counted as
failed, with its reason, in `flush()`'s FlushReport (see producers/transports.py).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar, cast

from producers.transports import FlushReport, InMemoryTransport, KafkaTransport, Transport
from schemas import identity, topics
from schemas.model import ArtifactRef, EventType, JobKind, LineageEvent

PRODUCER = "https://upriver.dev/sdk/python"
_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("upriver_run", default=None)

ArtifactLike = ArtifactRef | str
F = TypeVar("F", bound=Callable[..., Any])


def artifact(
    kind: str,
    namespace: str,
    name: str,
    version: str | None = None,
    *,
    schema: Mapping[str, str] | Sequence[str] | None = None,
    owner: str | None = None,
    tags: Mapping[str, str] | None = None,
    pii: Sequence[str] | None = None,
    column_lineage: Mapping[str, Sequence[str]] | None = None,
    append: bool = False,
) -> ArtifactRef:
    """An artifact reference with facets in the shapes docs/lineage-model.md defines.

    `schema`: column name -> type, or just names. `tags`: key -> value. `pii`: fields tagged PII.
    `column_lineage`: output column -> input columns as `kind:namespace/name#field`.
    `append`: this write adds to the artifact instead of replacing it (never superseded).
    """
    facets: dict[str, Any] = {}
    if schema is not None:
        items = schema.items() if isinstance(schema, Mapping) else ((c, None) for c in schema)
        facets["schema"] = {"fields": [{"name": c, **({"type": t} if t else {})} for c, t in items]}
    if owner:
        facets["ownership"] = {"owners": [{"name": owner, "type": "TEAM" if owner.startswith("team:") else "USER"}]}
    tag_list = [{"key": k, "value": v} for k, v in (tags or {}).items()]
    tag_list += [{"key": "PII", "value": "true", "field": f} for f in pii or ()]
    if tag_list:
        facets["tags"] = {"tags": tag_list}
    if column_lineage:
        fields: dict[str, Any] = {}
        for column, sources in column_lineage.items():
            inputs = []
            for src in sources:
                try:
                    col = identity.parse(src)
                except identity.IdentityError:
                    col = identity.NodeRef("", "", "")
                if not col.field:
                    raise ValueError(f"column lineage source {src!r} needs a field: kind:namespace/name#field")
                inputs.append({"namespace": col.namespace, "name": col.name, "field": col.field,
                               "transformations": [{"type": "DIRECT"}]})  # fmt: skip
            fields[column] = {"inputFields": inputs}
        facets["columnLineage"] = {"fields": fields}
    if append:
        facets["writeMode"] = {"mode": "APPEND"}
    return ArtifactRef(kind.upper(), namespace, name, version, json.dumps(facets, sort_keys=True) if facets else None)


def _kind_helper(kind: str) -> Callable[..., ArtifactRef]:
    def make(namespace: str, name: str, version: str | None = None, **facets: Any) -> ArtifactRef:
        return artifact(kind, namespace, name, version, **facets)

    make.__name__ = kind.lower()
    make.__doc__ = f"A {kind} reference; keyword facets as in `artifact`."
    return make


dataset = _kind_helper("DATASET")
feature = _kind_helper("FEATURE")
model = _kind_helper("MODEL")
prompt = _kind_helper("PROMPT")
deployment = _kind_helper("DEPLOYMENT")
embedding = _kind_helper("EMBEDDING")
vector_index = _kind_helper("VECTOR_INDEX")
document = _kind_helper("DOCUMENT")
chunk = _kind_helper("CHUNK")
evaluation = _kind_helper("EVALUATION")
prediction = _kind_helper("PREDICTION")


def parse_ref(ref: ArtifactLike) -> ArtifactRef:
    """An ArtifactRef from itself or from a node id `kind:namespace/name[@version]` (schemas/identity.py: the
    last '/' ends the namespace, so `dataset:s3://landing/core%2Fusers` is namespace `s3://landing`, name
    `core/users`; kind case-insensitive). A name holding '@' needs `artifact(...)`."""
    if isinstance(ref, ArtifactRef):
        return ref
    text = ref.strip() if isinstance(ref, str) else ""
    head, at, version = text.rpartition("@")
    for candidate, ver in ((head, version), (text, None)) if at else ((text, None),):
        try:
            parsed = identity.parse(candidate)
        except identity.IdentityError:
            continue
        whole = parsed.field is None and parsed.namespace and parsed.name and "@" not in parsed.name
        if whole and (ver is None or ver):
            return ArtifactRef(parsed.kind, parsed.namespace, parsed.name, ver)
    raise ValueError(
        f"not an artifact reference: {ref!r}; write kind:namespace/name or kind:namespace/name@version, "
        "e.g. dataset:warehouse/growth.raw_events@2026-01-05"
    )


class RunContext:
    """One run of a job: declare what it read and wrote; ends with COMPLETE, FAIL or ABORT."""

    def __init__(
        self, emitter: Emitter, job: str, kind: JobKind, namespace: str, run_id: str, facets: Mapping[str, Any] | None
    ) -> None:
        self._emitter = emitter
        self.job = job
        self.kind = kind
        self.namespace = namespace
        self.run_id = run_id
        self.parent_run_id: str | None = None
        self._facets = dict(facets or {})
        self.inputs: list[ArtifactRef] = []
        self.outputs: list[ArtifactRef] = []
        self._token: contextvars.Token[RunContext | None] | None = None
        self.ended: EventType | None = None

    def read(self, *artifacts: ArtifactLike) -> RunContext:
        self.inputs.extend(parse_ref(a) for a in artifacts)
        return self

    def wrote(self, *artifacts: ArtifactLike) -> RunContext:
        self.outputs.extend(parse_ref(a) for a in artifacts)
        return self

    def _emit(self, event_type: EventType, facets: Mapping[str, Any] | None = None, with_io: bool = True) -> None:
        merged = {**self._facets, **(facets or {})}
        self._emitter.send(
            LineageEvent(
                event_id=str(uuid.uuid4()),
                event_time=self._emitter.now_ms(),
                producer=self._emitter.producer,
                event_type=event_type,
                job_namespace=self.namespace,
                job_name=self.job,
                job_kind=self.kind,
                run_id=self.run_id,
                parent_run_id=self.parent_run_id,
                inputs=tuple(self.inputs) if with_io else (),
                outputs=tuple(self.outputs) if with_io else (),
                facets=json.dumps(merged, sort_keys=True) if merged else "{}",
            )
        )

    def start(self) -> RunContext:
        parent = _current.get()
        self.parent_run_id = parent.run_id if parent is not None else None
        self._token = _current.set(self)
        self._emit(EventType.START)
        return self

    def running(self) -> None:
        """Emit RUNNING with what is known so far (long runs, streaming jobs)."""
        self._emit(EventType.RUNNING)

    def _end(self, event_type: EventType, facets: Mapping[str, Any] | None = None) -> None:
        if self.ended is not None:
            return
        self.ended = event_type
        self._emit(event_type, facets)
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def complete(self) -> None:
        self._end(EventType.COMPLETE)

    def fail(self, message: str) -> None:
        self._end(EventType.FAIL, {"errorMessage": {"message": message, "programmingLanguage": "python"}})

    def abort(self) -> None:
        self._end(EventType.ABORT)

    def __enter__(self) -> RunContext:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.complete()
        else:
            self.fail(f"{type(exc).__name__}: {exc}")


class Emitter:
    """Builds lineage events and hands them to a transport (Kafka, or memory for tests)."""

    def __init__(
        self,
        transport: Transport,
        *,
        namespace: str = "default",
        producer: str = PRODUCER,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.transport = transport
        self.namespace = namespace
        self.producer = producer
        self._clock = clock

    @classmethod
    def kafka(
        cls,
        bootstrap_servers: str,
        topic: str = topics.EVENTS,
        *,
        namespace: str = "default",
        buffer_events: int = 100_000,
        registry_url: str = "",
        **producer_overrides: Any,
    ) -> Emitter:
        transport = KafkaTransport(
            bootstrap_servers, topic, buffer_events=buffer_events, registry_url=registry_url, **producer_overrides
        )
        return cls(transport, namespace=namespace)

    @classmethod
    def in_memory(cls, namespace: str = "default") -> Emitter:
        return cls(InMemoryTransport(), namespace=namespace)

    def now_ms(self) -> int:
        return self._clock() if self._clock is not None else time.time_ns() // 1_000_000

    def send(self, event: LineageEvent) -> None:
        """Hand `event` to the transport; KafkaTransport never raises (what it cannot queue is counted)."""
        self.transport.send(event)

    def run(
        self,
        job: str,
        kind: JobKind | str = JobKind.OTHER,
        *,
        namespace: str | None = None,
        run_id: str | None = None,
        facets: Mapping[str, Any] | None = None,
    ) -> RunContext:
        """A run of `job`; use it as a context manager (or call start() and complete()/fail())."""
        return RunContext(self, job, JobKind(kind), namespace or self.namespace, run_id or str(uuid.uuid4()), facets)

    def _signal(
        self,
        event_type: EventType,
        job_kind: JobKind,
        inputs: Iterable[ArtifactLike],
        outputs: Iterable[ArtifactLike] = (),
        facets: Mapping[str, Any] | None = None,
        at: int | None = None,
    ) -> LineageEvent:
        event = LineageEvent(
            event_id=str(uuid.uuid4()),
            event_time=at if at is not None else self.now_ms(),
            producer=self.producer,
            event_type=event_type,
            job_namespace=self.namespace,
            job_name=f"signal.{event_type.value.lower()}",
            job_kind=job_kind,
            run_id=str(uuid.uuid4()),
            parent_run_id=(lambda r: r.run_id if r else None)(_current.get()),
            inputs=tuple(parse_ref(a) for a in inputs),
            outputs=tuple(parse_ref(a) for a in outputs),
            facets=json.dumps(facets, sort_keys=True) if facets else "{}",
        )
        self.send(event)
        return event

    def drift(
        self, subject: ArtifactLike, metric: str, value: float, threshold: float, *, at: int | None = None
    ) -> LineageEvent:
        """A DRIFT measurement on `subject` (drifted when value > threshold)."""
        facet = {"drift": {"metric": metric, "value": value, "threshold": threshold, "drifted": value > threshold}}
        return self._signal(EventType.DRIFT, JobKind.OTHER, [subject], facets=facet, at=at)

    def quality(
        self,
        subject: ArtifactLike,
        metric: str,
        value: float,
        *,
        threshold: float | None = None,
        passed: bool | None = None,
        at: int | None = None,
    ) -> LineageEvent:
        """A QUALITY measurement; `passed` defaults to value >= threshold when a threshold is given."""
        if passed is None and threshold is not None:
            passed = value >= threshold
        facet = {"quality": {"metric": metric, "value": value, "threshold": threshold, "passed": passed}}
        return self._signal(EventType.QUALITY, JobKind.OTHER, [subject], facets=facet, at=at)

    def deployed(self, model_version: ArtifactLike, endpoint: ArtifactLike, *, at: int | None = None) -> LineageEvent:
        """`model_version` now serves at `endpoint` (a DEPLOYED_AS edge)."""
        return self._signal(EventType.DEPLOY, JobKind.DEPLOY, [model_version], [endpoint], at=at)

    def retired(self, subject: ArtifactLike, *, at: int | None = None) -> LineageEvent:
        """`subject` is gone: its edges end now (docs/lineage-model.md, retirement)."""
        return self._signal(EventType.RETIRE, JobKind.OTHER, [subject], at=at)

    def flush(self, timeout: float = 10.0) -> FlushReport:
        """Wait up to `timeout` s; report what was delivered, failed, dropped or is still queued, and why."""
        return self.transport.flush(timeout)

    def close(self, timeout: float = 10.0) -> FlushReport:
        return self.transport.close(timeout)

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lineage_step(
    emitter: Emitter,
    *,
    job: str | None = None,
    kind: JobKind | str = JobKind.OTHER,
    inputs: Iterable[ArtifactLike] = (),
    outputs: Iterable[ArtifactLike] = (),
    namespace: str | None = None,
) -> Callable[[F], F]:
    """Decorate a function (sync or async) so each call is a run; a parameter named `run` receives it."""
    ins, outs = [parse_ref(a) for a in inputs], [parse_ref(a) for a in outputs]

    def wrap(fn: F) -> F:
        name = job or fn.__qualname__
        wants_run = "run" in inspect.signature(fn).parameters

        def open_run() -> RunContext:
            return emitter.run(name, kind, namespace=namespace).read(*ins).wrote(*outs)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with open_run() as run:
                    if wants_run:
                        kwargs["run"] = run
                    return await fn(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with open_run() as run:
                if wants_run:
                    kwargs["run"] = run
                return fn(*args, **kwargs)

        return cast(F, wrapper)

    return wrap
