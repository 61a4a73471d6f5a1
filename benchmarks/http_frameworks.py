"""OpenLineage HTTP ingest on three HTTP stacks: Upriver's stdlib server vs aiohttp vs Starlette on uvicorn.

A real local Kafka broker and the stack's topics; no worker, no sink: HTTP + ingest alone. Every variant uses
the same `OpenLineageIngest` (built as upriver/deploy/components.py builds it) for validation, mapping and
size limits, and answers a 2xx only once Kafka acknowledged every message (acks=all, idempotent producer):

  A  stdlib   Upriver's own ApiServer (ThreadingHTTPServer, a thread per connection), exactly what ships
              (TCP_NODELAY on each connection since this benchmark found the cost of Nagle, below).
  A-nagle     A without TCP_NODELAY, as it shipped before (the stdlib sends a response's headers and body in
              two writes: Nagle and delayed ACKs hold the second), to tell that from the framework.
  B  aiohttp  the unchanged blocking `ingest.one` / `ingest.batch` in a thread pool (`run_in_executor`).
  C  aiohttp  an async produce path: `prepare`, `produce` with an on_delivery resolving an asyncio future
              through `loop.call_soon_threadsafe`, one thread polling the producer; the handler awaits all
              its futures (201 only when every message was acknowledged without error, 503 otherwise).
  D  uvicorn  Starlette on uvicorn (httptools parser, asyncio loop) with C's async path.
  D-h11       D with uvicorn's pure-Python h11 parser (what `pip install uvicorn` alone gives).

Each server runs in its own process (`serve VARIANT PORT`, started by this module); the clients are
benchmarks/openlineage_http.py's `run_level` (keep-alive http.client threads) in this process. Levels: 16
clients one event a request, 4 clients batches of 100; repeats interleave the variants (a fresh server each).
Per run: events/s, p50/p99 request latency, errors, CPU seconds of the server process (and of the broker and
the clients) per 1,000 events, and the events and raw topics' offsets grown by exactly the events answered.
Writes benchmarks/results/http_frameworks.json (`make bench-http`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from statistics import median
from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from benchmarks.e2e import machine
from benchmarks.openlineage_http import ol_event, run_level
from schemas.openlineage import MAX_EVENT_BYTES, TOO_DEEP, OpenLineageError, decode, too_deep
from upriver import metrics
from upriver.deploy.components import openlineage_ingest
from upriver.deploy.kafka import ensure_topics
from upriver.http.ingest import (
    MAX_BODY_BYTES,
    BatchResult,
    IngestError,
    OpenLineageIngest,
    batch_events,
    body_bytes,
)
from upriver.http.server import ApiServer
from upriver.local.broker import LocalBroker, ensure_jars
from upriver.local.stack import free_port
from upriver.readside.lineage import LineageReader
from upriver.settings import Settings

RESULTS = Path(__file__).parent / "results"
HOST = "127.0.0.1"
VARIANTS = {
    "A": "stdlib ThreadingHTTPServer: Upriver's ApiServer and OpenLineageIngest, as shipped",
    "A-nagle": "A without TCP_NODELAY (disable_nagle_algorithm off here), as A shipped before",
    "B": "aiohttp, the blocking ingest.one/ingest.batch in a thread pool (run_in_executor, 32 threads)",
    "C": "aiohttp, async produce path (per-message asyncio futures, one producer-polling thread)",
    "D": "Starlette on uvicorn (httptools, asyncio loop), async produce path as C",
    "D-h11": "Starlette on uvicorn (h11, asyncio loop), async produce path as C",
}
EXECUTOR_THREADS = 32  # B: at least one per client (the stdlib server has a thread per connection)
SINGLE, BATCH = "/api/v1/lineage", "/api/v1/lineage/batch"


# ---- the server side (a child process per variant) -------------------------------------------------


def build_ingest(settings: Settings) -> OpenLineageIngest:
    """The ingest as upriver/deploy/components.py `api_server` builds it; its topics' limits read now."""
    ingest = openlineage_ingest(settings)
    ingest.message_limit(topic=settings.topics.events)
    if settings.topics.openlineage:
        ingest.message_limit(topic=settings.topics.openlineage)
    return ingest


Future = asyncio.Future[KafkaError | None]  # a message's delivery report: its error, None once acknowledged


class AsyncIngest:
    """OpenLineageIngest's validation and mapping with an async publish: every message's delivery report
    resolves its asyncio future (call_soon_threadsafe from the one polling thread); a request is answered
    when all its futures are done. Its own producer, configured as OpenLineageIngest configures its own."""

    def __init__(self, ingest: OpenLineageIngest, settings: Settings, timeout_s: float = 30.0) -> None:
        self.ingest = ingest
        self.raw_topic = settings.topics.openlineage or None
        self.timeout = timeout_s
        self.producer = ingest.producer  # the ingest's own producer; its polling thread runs on_delivery

    @staticmethod
    def _resolve(future: Future, err: KafkaError | None) -> None:
        if not future.done():
            future.set_result(err)

    async def publish(self, messages: list[tuple[bytes, bytes]], raws: list[bytes] | None) -> set[int]:
        """As OpenLineageIngest.publish: the events topic, each raw copy with MAPPED_HEADER to the raw topic;
        the indices Kafka refused as too large; IngestError 503 on any other failure or no acknowledgement."""
        out = self.ingest.outgoing(messages, raws)
        loop = asyncio.get_running_loop()
        pending: list[tuple[int, Future]] = []
        oversized: set[int] = set()
        for topic, key, value, hdrs, index in out:
            future: Future = loop.create_future()

            def on_delivery(err: KafkaError | None, _msg: Message, f: Future = future) -> None:
                loop.call_soon_threadsafe(self._resolve, f, err)

            while True:
                try:
                    self.producer.produce(topic, value=value, key=key, headers=hdrs, on_delivery=on_delivery)
                    pending.append((index, future))
                    break
                except BufferError:  # the local queue is full: the polling thread drains it
                    await asyncio.sleep(0.005)
                except KafkaException as exc:
                    error = exc.args[0] if exc.args else None
                    if not (isinstance(error, KafkaError) and error.code() == KafkaError.MSG_SIZE_TOO_LARGE):
                        raise IngestError(503, f"Kafka refused the event: {exc}") from None
                    oversized.add(index)
                    break
        if not pending:
            return oversized
        try:
            results = await asyncio.wait_for(asyncio.gather(*(f for _, f in pending)), self.timeout)
        except TimeoutError:
            left = sum(not f.done() for _, f in pending)
            raise IngestError(503, f"Kafka did not acknowledge {left} event(s) within {self.timeout:.0f}s") from None
        errors = []
        for (index, _), err in zip(pending, results, strict=True):
            if err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                oversized.add(index)
            elif err is not None:
                errors.append(str(err))
        if errors:
            raise IngestError(503, f"Kafka refused {len(errors)} event(s): {errors[0]}")
        return oversized

    async def one(self, body: bytes) -> None:
        """As OpenLineageIngest.one: returns when Kafka acknowledged both copies; IngestError otherwise."""
        if len(body) > MAX_EVENT_BYTES:
            metrics.INGESTED.labels("http", "rejected").inc()
            raise IngestError(413, f"event is {len(body):,} bytes; the limit is {MAX_EVENT_BYTES:,}")
        try:
            message = self.ingest.prepare(decode(body))
        except OpenLineageError as exc:
            metrics.INGESTED.labels("http", "rejected").inc()
            raise IngestError(400, str(exc)) from None
        raw = body if self.raw_topic else None
        reason = self.ingest.oversized(message, raw)
        if reason is None and await self.publish([message], None if raw is None else [raw]):
            reason = "Kafka refused the event as too large (MSG_SIZE_TOO_LARGE)"
        if reason is not None:
            metrics.INGESTED.labels("http", "rejected").inc()
            raise IngestError(413, reason)
        metrics.INGESTED.labels("http", "accepted").inc()

    async def batch(self, body: bytes) -> BatchResult:
        """As OpenLineageIngest.batch, publishing through `publish`."""
        events = batch_events(body)
        result = BatchResult(received=len(events))
        messages: list[tuple[bytes, bytes]] = []
        raws: list[bytes] = []
        indices: list[int] = []
        for i, (event, raw) in enumerate(events):
            try:
                if len(raw) > MAX_EVENT_BYTES:
                    raise OpenLineageError(f"event is {len(raw):,} bytes; the limit is {MAX_EVENT_BYTES:,}")
                if too_deep(raw, event):
                    raise OpenLineageError(TOO_DEEP)
                message = self.ingest.prepare(event)
                reason = self.ingest.oversized(message, raw if self.raw_topic else None)
                if reason is not None:
                    raise OpenLineageError(reason)
                messages.append(message)
                raws.append(raw)
                indices.append(i)
            except OpenLineageError as exc:
                result.failures.append({"index": i, "reason": str(exc)})
        refused = await self.publish(messages, raws if self.raw_topic else None)
        for m in refused:
            result.failures.append({"index": indices[m], "reason": "Kafka refused the event as too large"})
        result.failures.sort(key=lambda f: int(f["index"]))
        result.successful = len(messages) - len(refused)
        metrics.INGESTED.labels("http", "accepted").inc(result.successful)
        metrics.INGESTED.labels("http", "rejected").inc(len(result.failures))
        return result


Handler = Callable[[bytes], Awaitable[tuple[int, Any]]]


def handlers(ingest: OpenLineageIngest, async_ingest: AsyncIngest | None,
             pool: ThreadPoolExecutor | None) -> dict[str, tuple[int, Handler]]:  # fmt: skip
    """path -> (body limit, handler answering (status, JSON or None)): through the blocking ingest in `pool`,
    or through `async_ingest`; the same statuses as upriver/http/routes.py's ingest routes."""

    async def one(body: bytes) -> tuple[int, Any]:
        if async_ingest is not None:
            await async_ingest.one(body)
        else:
            await asyncio.get_running_loop().run_in_executor(pool, ingest.one, body)
        return 201, None

    async def batch(body: bytes) -> tuple[int, Any]:
        if async_ingest is not None:
            result = await async_ingest.batch(body)
        else:
            result = await asyncio.get_running_loop().run_in_executor(pool, ingest.batch, body)
        return (200 if not result.failures else 207 if result.successful else 400), result.to_json()

    return {SINGLE: (MAX_EVENT_BYTES, one), BATCH: (MAX_BODY_BYTES, batch)}


async def answer(handler: tuple[int, Handler], content_type: str | None, length: int | None,
                 encoding: str | None, read: Callable[[], Awaitable[bytes]]) -> tuple[int, bytes]:  # fmt: skip
    """The checks ApiServer makes before ingest (Content-Type, body limit, gzip), then the handler."""
    limit, handle = handler
    try:
        media = (content_type or "application/json").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise IngestError(415, f"Content-Type must be application/json, got {media!r}")
        if length is not None and length > limit:
            raise IngestError(413, f"body is {length:,} bytes; the limit is {limit:,}")
        status, body = await handle(body_bytes(await read(), encoding, limit))
    except IngestError as exc:
        status, body = exc.status, {"error": str(exc)}
    except Exception as exc:  # as ApiServer: a 500 naming the exception's type
        status, body = 500, {"error": f"internal error: {type(exc).__name__}"}
    return status, b"" if body is None else json.dumps(body).encode()


def serve_stdlib(settings: Settings, port: int, nagle: bool = False) -> None:
    ingest = build_ingest(settings)
    if nagle:  # A-nagle: the connections' sockets left with Nagle's algorithm on, as before
        from upriver.http import server as stdlib_server

        stdlib_server._Handler.disable_nagle_algorithm = False
    # the POST routes and /healthz (without a supervisor's health) never touch the read side
    api = ApiServer(cast(LineageReader, None), HOST, port, ingest=ingest).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    api.stop()


def serve_aiohttp(settings: Settings, port: int, use_async: bool) -> None:
    from aiohttp import web

    ingest = build_ingest(settings)
    async_ingest = AsyncIngest(ingest, settings) if use_async else None
    pool = None if use_async else ThreadPoolExecutor(EXECUTOR_THREADS, thread_name_prefix="ingest")
    routes = handlers(ingest, async_ingest, pool)

    async def post(request: web.Request) -> web.Response:
        status, data = await answer(routes[request.path], request.headers.get("Content-Type"),
                                    request.content_length, request.headers.get("Content-Encoding"),
                                    request.read)  # fmt: skip
        return web.Response(status=status, body=data, content_type="application/json")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=MAX_BODY_BYTES + 1)
    app.add_routes([web.post(SINGLE, post), web.post(BATCH, post), web.get("/healthz", healthz)])
    web.run_app(app, host=HOST, port=port, backlog=1024, access_log=None, print=None)
    if pool is not None:
        pool.shutdown()
    ingest.close()


def serve_uvicorn(settings: Settings, port: int, parser: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    ingest = build_ingest(settings)
    async_ingest = AsyncIngest(ingest, settings)
    routes = handlers(ingest, async_ingest, None)

    async def post(request: Request) -> Response:
        raw = request.headers.get("Content-Length")
        length = int(raw) if raw and raw.isdigit() else None
        status, data = await answer(routes[request.url.path], request.headers.get("Content-Type"), length,
                                    request.headers.get("Content-Encoding"), request.body)  # fmt: skip
        return Response(data, status_code=status, media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route(SINGLE, post, methods=["POST"]), Route(BATCH, post, methods=["POST"]),
                            Route("/healthz", healthz)])  # fmt: skip
    config = uvicorn.Config(app, host=HOST, port=port, loop="asyncio", http=parser, lifespan="off",
                            log_level="warning", access_log=False, backlog=1024)  # fmt: skip
    uvicorn.Server(config).run()
    ingest.close()


def serve(variant: str, port: int) -> None:
    settings = Settings.from_env()
    if variant in ("A", "A-nagle"):
        serve_stdlib(settings, port, nagle=variant == "A-nagle")
    elif variant in ("B", "C"):
        serve_aiohttp(settings, port, use_async=variant == "C")
    elif variant == "D":
        serve_uvicorn(settings, port, "httptools")
    elif variant == "D-h11":
        serve_uvicorn(settings, port, "h11")
    else:
        raise SystemExit(f"no such variant {variant!r}; one of {', '.join(VARIANTS)}")


# ---- the driver ----------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Offsets:
    """The summed high watermarks of the events and raw topics: how many messages Kafka holds."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer({**settings.kafka_config(), "group.id": f"bench-http-{uuid.uuid4()}",
                                   "log_level": 3})  # fmt: skip
        self._topics = [settings.topics.events, settings.topics.openlineage]
        self._partitions = settings.topics.partitions

    def __call__(self) -> dict[str, int]:
        return {
            topic: sum(
                self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(self._partitions)
            )
            for topic in self._topics
        }

    def close(self) -> None:
        self._consumer.close()


class Server:
    """A variant's server in its own process, answering /healthz."""

    def __init__(self, variant: str, settings: Settings, log: Path) -> None:
        self.variant = variant
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        env = {**os.environ, **settings.to_env(), "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap}
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.http_frameworks", "serve", variant, str(self.port)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.variant} exited with {self.proc.returncode}: see {self._log.name}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            time.sleep(0.2)
        raise RuntimeError(f"server {self.variant} did not answer /healthz within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def single_bodies(n: int) -> list[bytes]:
    run_ids = [str(uuid.uuid4()) for _ in range((n + 1) // 2)]
    return [json.dumps(ol_event(i, run_ids[i // 2])).encode() for i in range(n)]


def batch_bodies(n: int, size: int) -> list[bytes]:
    run_ids = [str(uuid.uuid4()) for _ in range((n + 1) // 2)]
    events = [ol_event(i, run_ids[i // 2]) for i in range(n)]
    return [json.dumps(events[i : i + size]).encode() for i in range(0, n, size)]


CLIENT_FAILURES: list[str] = []  # exceptions in client threads (run_level's threads die on them)


def _client_failed(args: threading.ExceptHookArgs) -> None:
    CLIENT_FAILURES.append(f"{args.exc_type.__name__}: {args.exc_value}")


def measure(server: Server, broker_pid: int | None, offsets: Offsets, clients: int, bodies: list[bytes],
            path: str, per_body: int) -> dict[str, Any]:  # fmt: skip
    """One run of `run_level` against `server`, with CPU seconds and Kafka's message counts around it."""
    events = len(bodies) * per_body
    failures = len(CLIENT_FAILURES)
    before = offsets()
    broker0 = cpu_seconds(broker_pid) if broker_pid else 0.0
    cpu0, self0, t0 = cpu_seconds(server.proc.pid), self_cpu_seconds(), time.perf_counter()
    result = run_level(server.url, clients, bodies, path, per_body)
    cpu1, self1, wall = cpu_seconds(server.proc.pid), self_cpu_seconds(), time.perf_counter() - t0
    broker1 = cpu_seconds(broker_pid) if broker_pid else 0.0
    after = offsets()
    grown = {topic: after[topic] - before[topic] for topic in after}
    result.update(
        server_cpu_s_per_1k=round((cpu1 - cpu0) / events * 1000, 3),
        broker_cpu_s_per_1k=round((broker1 - broker0) / events * 1000, 3) if broker_pid else None,
        client_cpu_s_per_1k=round((self1 - self0) / events * 1000, 3),
        # the share of all cores server, broker and clients kept busy: near 1, the machine's CPU was the limit
        cores_busy=round((cpu1 - cpu0 + broker1 - broker0 + self1 - self0) / wall / (os.cpu_count() or 1), 2),
        client_exceptions=len(CLIENT_FAILURES) - failures,
        kafka_messages=grown,
        kafka_matches=all(n == events for n in grown.values()),  # each event once per topic, no more, no less
    )
    return result


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("events_per_s", "p50_ms", "p99_ms", "server_cpu_s_per_1k", "broker_cpu_s_per_1k", "client_cpu_s_per_1k",
            "cores_busy")  # fmt: skip
    out: dict[str, Any] = {k: median(r[k] for r in runs) if runs[0][k] is not None else None for k in keys}
    out["errors"] = sum(r["errors"] + r["client_exceptions"] for r in runs)
    out["kafka_matches"] = all(r["kafka_matches"] for r in runs)
    out["per_run"] = runs
    return out


def versions() -> dict[str, str]:
    found = {}
    for name in ("aiohttp", "starlette", "uvicorn", "httptools", "h11", "anyio", "confluent-kafka"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def drive(args: argparse.Namespace) -> int:
    threading.excepthook = _client_failed
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {v: {} for v in args.variants}
    with tempfile.TemporaryDirectory(prefix="upriver-bench-http-") as tmp:
        base = Settings.from_env()
        broker: LocalBroker | None = None
        broker_pid: int | None = None
        if base.kafka_bootstrap:  # an existing cluster: topics of this run's own
            settings = replace(base, topics=base.topics.unique(f"bench-http-{time.time_ns()}"))
        else:
            ensure_jars(base.cache_dir)
            broker = LocalBroker(Path(tmp) / "kafka", base.cache_dir)
            settings = base.with_bootstrap(broker.start())
            proc = getattr(broker, "_proc", None)  # the broker's own CPU seconds, to see who took the cores
            broker_pid = proc.pid if proc is not None else None
        try:
            ensure_topics({**settings.kafka_config(), "log_level": 3}, settings.topics)
            offsets = Offsets(settings)
            if args.broker_warmup:  # the broker's JIT: the first thousands of messages cost it several times more
                warm = Server(args.variants[0], settings, Path(tmp) / "server-warmup.log")
                try:
                    warm.wait_ready()
                    run_level(warm.url, args.clients, single_bodies(args.broker_warmup), SINGLE, 1)
                    run_level(warm.url, args.batch_clients, batch_bodies(args.broker_warmup, args.batch_size), BATCH,
                              args.batch_size)  # fmt: skip
                finally:
                    warm.stop()
            for rnd in range(args.repeat):
                for variant in args.variants:
                    server = Server(variant, settings, Path(tmp) / f"server-{variant}.log")
                    try:
                        server.wait_ready()
                        run_level(server.url, args.clients, single_bodies(args.clients * 10), SINGLE, 1)  # warm-up
                        run_level(
                            server.url,
                            args.batch_clients,
                            batch_bodies(args.batch_clients * args.batch_size, args.batch_size),
                            BATCH,
                            args.batch_size,
                        )
                        levels = [
                            (f"single_{args.clients}_clients", args.clients, single_bodies(args.events), SINGLE, 1),
                            (f"batch_{args.batch_size}_{args.batch_clients}_clients", args.batch_clients,
                             batch_bodies(args.events, args.batch_size), BATCH, args.batch_size),
                        ]  # fmt: skip
                        for name, clients, bodies, path, per_body in levels:
                            result = measure(server, broker_pid, offsets, clients, bodies, path, per_body)
                            runs[variant].setdefault(name, []).append(result)
                            print(rnd, variant, name, result, flush=True)
                    except Exception:
                        print(Path(tmp, f"server-{variant}.log").read_text()[-4000:], file=sys.stderr)
                        raise
                    finally:
                        server.stop()
            offsets.close()
        finally:
            if broker is not None:
                broker.stop()
    figures = {
        "benchmark": "http_frameworks",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**machine(), "libraries": versions()},
        "events_per_run": args.events,
        "runs": args.repeat,
        "broker_warmup_events": 2 * args.broker_warmup,
        "event_bytes": len(json.dumps(ol_event(1, str(uuid.uuid4())))),
        "variants": {
            v: {"server": VARIANTS[v], "levels": {name: summary(rs) for name, rs in levels_.items()}}
            for v, levels_ in runs.items()
        },
        "notes": (
            "One local Kafka broker (KRaft, 512 MiB heap), the stack's topics (ensure_topics, 4 partitions); no "
            "worker, no sink. Each server in its own process (A included), started afresh for every variant and "
            "repeat, repeats interleaving the variants; the broker warmed up first (broker_warmup_events through the "
            "first variant, unmeasured) and each server with a few requests before measuring. Clients: "
            "benchmarks/openlineage_http.py run_level (keep-alive http.client threads) in the driver process. Broker, "
            "server and clients share the machine's cores. CPU: utime+stime of the server process (/proc/<pid>/stat, "
            "librdkafka's threads included), of the broker, and of the driver (the clients), per 1,000 events; "
            "cores_busy: their sum over the run's wall time and the machine's cores. "
            "kafka_matches: the events and raw topics each grew by exactly the events answered 2xx in the run. "
            "Every variant answers 2xx only after Kafka acknowledged every message (acks=all, idempotent producer); "
            "C and D have their own producer configured as OpenLineageIngest's (the ingest's validation, mapping and "
            "limits), B runs the unchanged ingest in a 32-thread pool. p50/p99 are per request (a batch: 100 events)."
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    table = {v: {name: {k: s[k] for k in ("events_per_s", "p50_ms", "p99_ms", "server_cpu_s_per_1k", "errors")}
                    for name, s in d["levels"].items()} for v, d in figures["variants"].items()}  # fmt: skip
    print(json.dumps(table, indent=2))
    print(f"wrote {args.out}")
    summaries = [s for d in figures["variants"].values() for s in d["levels"].values()]
    ok = all(s["errors"] == 0 and s["kafka_matches"] for s in summaries)
    return 0 if ok else 1


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=4000, help="events per run and level")
    p.add_argument("--clients", type=int, default=16, help="clients of the single-event level")
    p.add_argument("--batch-clients", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--broker-warmup", type=int, default=10000, help="events of each level sent before measuring")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--out", type=Path, default=RESULTS / "http_frameworks.json")
    return drive(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
