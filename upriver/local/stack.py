"""The local stack: Kafka broker (unless one is configured), faust worker process, sink + read API.

With embedded ClickHouse only one process may open the database, so the sink and the read API run
in this (the controlling) process; the worker is a child process. Stops everything it started.

It supervises its stages (the sink thread, the worker child, the lag monitor thread and the broker child
when it started one): a stage that ends without being asked to (an exception, an exit) is recorded once,
logged at ERROR, `upriver_stage_up{stage}` goes to 0 and `/healthz` answers 503 naming it. Nothing
restarts it: `failures()` lists the dead stages; `upriver up` exits non-zero on the first one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from sinks.loader import SinkLoader, SinkStoppedError
from upriver import metrics
from upriver.deploy.components import Storage, api_server, open_storage, sink_loader
from upriver.deploy.kafka import AdminClient, ensure_topics, group_assigned
from upriver.deploy.lag import LagMonitor
from upriver.http.server import ApiServer
from upriver.local.broker import LocalBroker, ensure_jars
from upriver.settings import Settings

log = logging.getLogger(__name__)

STATE_FILE = "stack.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def read_state(home: Path) -> dict[str, Any] | None:
    """The running stack's addresses (bootstrap, API URL), if a live one wrote them; secrets are masked
    in it (`_write_state`), so take credentials from `Settings`, never from here."""
    path = home / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return state


STAGES = ("broker", "worker", "sink", "lag")
_SUPERVISE_S = 0.5


@dataclass(frozen=True)
class StageFailure:
    """A stage that stopped without being asked to: why, and where its log is."""

    stage: str
    reason: str
    log: str
    at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "reason": self.reason, "log": self.log, "at": self.at_ms}


def exit_reason(returncode: int) -> str:
    """A child's exit status in words: `exited with status 1`, `killed by SIGKILL (exit status -9)`."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name} (exit status {returncode})"
    return f"exited with status {returncode}"


class LocalStack:
    def __init__(self, settings: Settings, *, api_port: int | None = None, worker_log_level: str = "WARNING"):
        self.settings = settings
        self._api_port = settings.api_port if api_port is None else api_port
        self._worker_log_level = worker_log_level
        self.broker: LocalBroker | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.storage: Storage | None = None
        self.api: ApiServer | None = None
        self._sink_stop = threading.Event()
        self._sink_thread: threading.Thread | None = None
        self.lag: LagMonitor | None = None
        self.log_dir = settings.home / "logs"
        self._failures: dict[str, StageFailure] = {}
        self._watched: set[str] = set()  # stages started and not asked to stop
        self._labelled: set[str] = set()  # stages whose upriver_stage_up this stack set
        self._lock = threading.Lock()
        self._supervisor_stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> LocalStack:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.settings.kafka_bootstrap:
            ensure_jars(self.settings.cache_dir)
            self.broker = LocalBroker(self.settings.home / "kafka", self.settings.cache_dir)
            self.settings = self.settings.with_bootstrap(self.broker.start(timeout=timeout))
            self._watch("broker")
        self.settings = replace(self.settings, metrics_port=self.settings.metrics_port or free_port())
        ensure_topics({**self.settings.kafka_config(), "log_level": 3}, self.settings.topics)
        self.storage = open_storage(self.settings)
        self.start_sink()
        self.start_worker()
        self.lag = LagMonitor.for_pipeline(self.settings).start()
        self._watch("lag")
        if self._api_port >= 0:
            self.api = api_server(self.settings, self.storage, self._api_port, health=self.health).start()
        self._supervisor_stop = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, args=(self._supervisor_stop,), name="upriver-supervisor", daemon=True
        )
        self._supervisor.start()
        self._write_state()
        return self

    def stop(self) -> None:
        self._supervisor_stop.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
            self._supervisor = None
        if self.lag is not None:
            self._unwatch("lag")
            self.lag.stop()
            self.lag = None
        if self.api is not None:
            self.api.stop()
            self.api = None
        self.stop_worker()
        self.stop_sink()
        if self.broker is not None:
            self._unwatch("broker")
            self.broker.stop()
        with self._lock:
            for stage in self._labelled:
                metrics.STAGE_UP.remove(stage)
            self._labelled.clear()
        (self.settings.home / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _write_state(self) -> None:
        """stack.json for the other `upriver` commands and for people: no secrets (the ClickHouse URL's
        password is `***`; a command that needs the real URL has it from its own settings)."""
        from upriver.settings import redact_url

        state = {
            "pid": os.getpid(),
            "bootstrap": self.settings.kafka_bootstrap,
            "api_url": self.api.url if self.api else "",
            "metrics_url": f"http://127.0.0.1:{self.settings.metrics_port}/metrics",
            "clickhouse_url": redact_url(self.settings.clickhouse_url),
            "database": self.settings.clickhouse_database,
        }
        (self.settings.home / STATE_FILE).write_text(json.dumps(state, indent=2))

    # -- supervision -----------------------------------------------------------------------------
    def failures(self) -> list[StageFailure]:
        """The stages that stopped without being asked to, in the order they did (checked now)."""
        self.check()
        with self._lock:
            return sorted(self._failures.values(), key=lambda f: f.at_ms)

    def health(self) -> dict[str, Any]:
        """The `/healthz` body: status `ok` or `unhealthy`, each watched stage up or down, the failures."""
        failed = self.failures()
        with self._lock:
            stages = {s: "down" if s in self._failures else "up" for s in STAGES if s in self._labelled}
        body: dict[str, Any] = {"status": "unhealthy" if failed else "ok", "stages": stages}
        if failed:
            body["failed"] = [f.to_json() for f in failed]
        return body

    def check(self) -> None:
        """Record every watched stage that is no longer running (the supervisor calls this twice a second)."""
        with self._lock:
            watched = set(self._watched)
        if "sink" in watched and self._sink_thread is not None and not self._sink_thread.is_alive():
            # the thread's own wrapper records why; this catches an end it could not see
            self._fail("sink", "the sink thread ended without being asked to stop", "this process's log")
        worker = self.worker
        if "worker" in watched and worker is not None and worker.poll() is not None:
            self._fail("worker", f"the worker process {exit_reason(worker.returncode)}", str(self._worker_log))
        lag = self.lag
        if "lag" in watched and lag is not None and not lag.alive() and not lag.stopping:
            reason = lag.failure or "the lag monitor thread ended without being asked to stop"
            self._fail("lag", reason, "this process's log")
        broker = self.broker
        if "broker" in watched and broker is not None and not broker.is_running():
            self._fail("broker", "the Kafka broker process exited", str(broker.data_dir / "logs" / "server.log"))

    def _supervise(self, stop: threading.Event) -> None:
        while not stop.wait(_SUPERVISE_S):
            try:
                self.check()
            except Exception:  # the supervisor itself must not die silently
                log.exception("stage supervision failed")

    def _watch(self, stage: str) -> None:
        with self._lock:
            self._watched.add(stage)
            self._failures.pop(stage, None)
            self._labelled.add(stage)
        metrics.STAGE_UP.labels(stage).set(1)

    def _unwatch(self, stage: str) -> None:
        """`stage` is being stopped on purpose: its end is not a failure."""
        with self._lock:
            self._watched.discard(stage)

    def _fail(self, stage: str, reason: str, where: str, exc: BaseException | None = None) -> None:
        """Record `stage` as dead (once; not if it is being stopped on purpose) and say so at ERROR."""
        with self._lock:
            if stage not in self._watched or stage in self._failures:
                return
            self._failures[stage] = StageFailure(stage, reason, where, time.time_ns() // 1_000_000)
        metrics.STAGE_UP.labels(stage).set(0)
        log.error(
            "stage %s stopped: %s (log: %s); nothing restarts it: /healthz answers 503",
            stage,
            reason,
            where,
            exc_info=exc,
        )

    # -- worker (child process) ------------------------------------------------------------------
    @property
    def _worker_log(self) -> Path:
        return self.log_dir / "worker.log"

    def start_worker(self) -> None:
        self.worker = self.spawn_worker(self._worker_log)
        self._watch("worker")

    def spawn_worker(self, log_path: Path, **env_overrides: str) -> subprocess.Popen[bytes]:
        """An `upriver worker` process with this stack's settings (plus `env_overrides`), logging to
        `log_path`. `start_worker` runs and supervises the stack's own; a caller may add more members to
        the worker's consumer group (benchmarks/two_workers.py), its own to stop."""
        env = {**os.environ, **self.settings.to_env(), **env_overrides}
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "upriver", "worker", "--log-level", self._worker_log_level],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop_worker(self, kill: bool = False, timeout: float = 30.0) -> None:
        """Stop the worker on purpose (not a failure; `self.worker.kill()` is one)."""
        self._unwatch("worker")
        if self.worker is None:
            return
        if self.worker.poll() is None:
            self.worker.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.worker.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("worker did not stop in %.0fs; killing it", timeout)
                self.worker.kill()
                self.worker.wait()
        self.worker = None

    def wait_worker_ready(self, timeout: float = 90.0) -> None:
        """Until the worker's consumer group is stable with partitions assigned (or raise)."""
        admin = AdminClient({**self.settings.kafka_config(), "log_level": 3})
        deadline = time.monotonic() + timeout
        group = self.settings.processor_id
        while time.monotonic() < deadline:
            if self.worker is not None and self.worker.poll() is not None:
                raise RuntimeError(f"worker exited with {self.worker.returncode}; see {self.log_dir}/worker.log")
            try:
                if group_assigned(admin, group):
                    return
            except Exception as exc:  # the group may not exist yet
                log.debug("worker group not ready: %s", exc)
            time.sleep(0.5)
        raise TimeoutError(f"worker not ready after {timeout}s; see {self.log_dir}/worker.log")

    def worker_metrics(self) -> dict[str, float]:
        """The worker's Prometheus samples (name{labels} -> value), scraped from its /metrics."""
        url = f"http://127.0.0.1:{self.settings.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    # -- sink (thread in this process) -----------------------------------------------------------
    def start_sink(self) -> None:
        if self.storage is None:
            raise RuntimeError("open storage (LocalStack.start) before starting the sink")
        loader = sink_loader(self.settings, self.storage)
        self._sink_stop = threading.Event()
        self._sink_thread = threading.Thread(
            target=self._run_sink, args=(loader, self._sink_stop), name="upriver-sink", daemon=True
        )
        self._watch("sink")
        self._sink_thread.start()

    def _run_sink(self, loader: SinkLoader, stop: threading.Event) -> None:
        try:
            loader.run(stop)
        except SinkStoppedError as exc:
            self._fail("sink", str(exc), "this process's log")
        except BaseException as exc:  # a bug: the ERROR line carries its traceback
            self._fail("sink", f"the sink thread failed: {type(exc).__name__}: {exc}", "this process's log", exc)
        else:
            if not stop.is_set():
                self._fail("sink", "the sink loop returned without being asked to stop", "this process's log")

    def stop_sink(self, timeout: float = 30.0) -> None:
        self._unwatch("sink")
        if self._sink_thread is None:
            return
        self._sink_stop.set()
        self._sink_thread.join(timeout)
        self._sink_thread = None
