"""The local stack: Kafka broker (unless one is configured), faust worker process, sink + read API.

With embedded ClickHouse only one process may open the database, so the sink and the read API run
in this (the controlling) process; the worker is a child process. Stops everything it started.
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
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka.admin import AdminClient

from upriver.api import ApiServer
from upriver.broker import LocalBroker, ensure_jars
from upriver.components import Storage, api_server, open_storage, sink_loader
from upriver.lag import LagMonitor
from upriver.settings import Settings
from upriver.topics import ensure_topics

log = logging.getLogger(__name__)

STATE_FILE = "stack.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def read_state(home: Path) -> dict[str, Any] | None:
    """The running stack's addresses (bootstrap, API URL), if a live one wrote them."""
    path = home / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return state


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

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> LocalStack:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.settings.kafka_bootstrap:
            ensure_jars(self.settings.cache_dir)
            self.broker = LocalBroker(self.settings.home / "kafka", self.settings.cache_dir)
            self.settings = self.settings.with_bootstrap(self.broker.start(timeout=timeout))
        self.settings = replace(self.settings, metrics_port=self.settings.metrics_port or free_port())
        ensure_topics({**self.settings.kafka_config(), "log_level": 3}, self.settings.topics)
        self.storage = open_storage(self.settings)
        self.start_sink()
        self.start_worker()
        self.lag = LagMonitor.for_pipeline(self.settings).start()
        if self._api_port >= 0:
            self.api = api_server(self.settings, self.storage, self._api_port).start()
        self._write_state()
        return self

    def stop(self) -> None:
        if self.lag is not None:
            self.lag.stop()
            self.lag = None
        if self.api is not None:
            self.api.stop()
            self.api = None
        self.stop_worker()
        self.stop_sink()
        if self.broker is not None:
            self.broker.stop()
        (self.settings.home / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "bootstrap": self.settings.kafka_bootstrap,
            "api_url": self.api.url if self.api else "",
            "metrics_url": f"http://127.0.0.1:{self.settings.metrics_port}/metrics",
            "clickhouse_url": self.settings.clickhouse_url,
            "database": self.settings.clickhouse_database,
        }
        (self.settings.home / STATE_FILE).write_text(json.dumps(state, indent=2))

    # -- worker (child process) ------------------------------------------------------------------
    def start_worker(self) -> None:
        env = {**os.environ, **self.settings.to_env()}
        out = (self.log_dir / "worker.log").open("ab")
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "upriver", "worker", "--log-level", self._worker_log_level],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def stop_worker(self, kill: bool = False, timeout: float = 30.0) -> None:
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
                desc = admin.describe_consumer_groups([group])[group].result(timeout=5)
                assigned = sum(len(m.assignment.topic_partitions) for m in desc.members)
                if str(desc.state).endswith("STABLE") and assigned:
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
            target=loader.run, args=(self._sink_stop,), name="upriver-sink", daemon=True
        )
        self._sink_thread.start()

    def stop_sink(self, timeout: float = 30.0) -> None:
        if self._sink_thread is None:
            return
        self._sink_stop.set()
        self._sink_thread.join(timeout)
        self._sink_thread = None
