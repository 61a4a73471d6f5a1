"""A single-node KRaft Apache Kafka broker run with Java from jars Maven fetches once (no Docker).

Used by the local stack and the test suite. Starts on free loopback ports, keeps its data dir (and
ports, cluster id) across restarts, stops cleanly. It must never be pointed at a non-loopback address.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from types import TracebackType

from schemas.openlineage import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).parent / "kafka" / "pom.xml"
HOST = "127.0.0.1"

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


class BrokerError(RuntimeError):
    """The broker could not be fetched, started or reached; the message says what to check."""


def ensure_jars(
    cache_dir: Path,
    version: str = KAFKA_VERSION,
    *,
    pom_file: Path = POM,
    folder: str = "libs",
    expect: str = "kafka_2.13",
) -> Path:
    """The folder holding the broker's jars (or, with another `pom_file`, that pom's), fetched from Maven
    Central on first use only; `expect` names the artifact whose jar proves the fetch complete."""
    libs = (cache_dir / "kafka" / f"{folder}-{version}").resolve()
    marker = libs / ".complete"
    if marker.exists():
        return libs
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise BrokerError(f"`{tool}` not found: the local Kafka broker needs Java 17+ and Maven")
    libs.mkdir(parents=True, exist_ok=True)
    pom = libs.parent / f"pom-{folder}-{version}.xml"
    pom.write_text(pom_file.read_text().replace("@KAFKA_VERSION@", version))
    log.info("fetching Kafka %s jars into %s (once)", version, libs)
    proc = subprocess.run(
        ["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={libs}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
        raise BrokerError(f"fetching the Kafka jars with Maven failed ({proc.returncode}):\n" + "\n".join(tail))
    if not list(libs.glob(f"{expect}-{version}.jar")):
        raise BrokerError(f"Maven finished but {expect}-{version}.jar is not in {libs}")
    marker.touch()
    return libs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # As Java's listener does: a port whose old connections linger in TIME_WAIT is still usable.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _cluster_id() -> str:
    """22 base64url characters, never starting with '-' (the storage tool would read it as an option;
    Kafka's own Uuid.randomUuid() avoids it for the same reason)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class LocalBroker:
    """One broker+controller process on loopback; the data dir is kept across restarts."""

    def __init__(self, data_dir: Path, cache_dir: Path, *, version: str = KAFKA_VERSION, heap: str = "512m"):
        self.data_dir = data_dir.resolve()
        self.cache_dir = cache_dir
        self.version = version
        self.heap = heap
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self._port is None:
            raise BrokerError("the broker has not been started")
        return f"{HOST}:{self._port}"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The broker JVM's process id while it runs (benchmarks read its CPU time)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _identity(self) -> dict[str, object]:
        """Ports and cluster id, reused on restart so clients and the formatted log dir still match."""
        path = self.data_dir / "broker.json"
        ident: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
        if "cluster_id" not in ident:
            ident["cluster_id"] = _cluster_id()
        for key in ("port", "controller_port"):
            port = ident.get(key)
            if not isinstance(port, int) or not _port_free(port):
                ident[key] = _free_port()
        if ident["port"] == ident["controller_port"]:
            ident["controller_port"] = _free_port()
        path.write_text(json.dumps(ident))
        return ident

    def _write_config(self, port: int, controller_port: int) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.voters": f"1@{HOST}:{controller_port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir / "log"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            # The stack's one message limit (schemas/openlineage.py) for every topic, faust's changelogs too.
            "message.max.bytes": str(MAX_MESSAGE_BYTES),
            "replica.fetch.max.bytes": str(MAX_MESSAGE_BYTES),
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(LOG4J2)
        return path

    def start(self, timeout: float = 90.0) -> str:
        """Start (formatting storage on first use) and wait until the admin API answers."""
        if self.is_running():
            return self.bootstrap_servers
        libs = ensure_jars(self.cache_dir, self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        ident = self._identity()
        port, controller_port = int(str(ident["port"])), int(str(ident["controller_port"]))
        config = self._write_config(port, controller_port)
        classpath = f"{libs}/*"
        if not (self.data_dir / "log" / "meta.properties").exists():
            fmt = subprocess.run(
                ["java", "-cp", classpath, "kafka.tools.StorageTool", "format",
                 "-t", str(ident["cluster_id"]), "-c", str(config), "--ignore-formatted"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if fmt.returncode != 0:
                output = (fmt.stdout + fmt.stderr).strip()[-2000:]
                raise BrokerError(f"formatting Kafka storage in {self.data_dir} failed: {output}")
        out = (logs / "broker.out").open("ab")
        self._proc = subprocess.Popen(
            ["java", f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseSerialGC",
             f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
             f"-Dkafka.logs.dir={logs}", "-cp", classpath, "kafka.Kafka", str(config)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        out.close()
        self._port = port
        try:
            self._wait_ready(timeout)
        except BrokerError:
            self.stop()
            raise
        log.info("Kafka %s broker up at %s (data %s)", self.version, self.bootstrap_servers, self.data_dir)
        return self.bootstrap_servers

    def _log_tail(self) -> str:
        lines: list[str] = []
        for name in ("broker.out", "server.log"):
            path = self.data_dir / "logs" / name
            if path.exists():
                lines += path.read_text(errors="replace").splitlines()[-15:]
        return "\n".join(lines)

    def _wait_ready(self, timeout: float) -> None:
        from upriver.deploy.kafka import broker_answers

        deadline = time.monotonic() + timeout
        port = self._port or 0
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(f"the broker exited with {self._proc.returncode}:\n{self._log_tail()}")
            if _port_open(port):
                try:
                    broker_answers(self.bootstrap_servers)
                    return
                except Exception as exc:  # KafkaException while the controller settles
                    log.debug("broker not ready yet: %s", exc)
            time.sleep(0.3)
        raise BrokerError(f"the broker did not answer within {timeout}s:\n{self._log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait (a clean shutdown); SIGKILL if it takes longer than `timeout`. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the broker did not stop within %.0fs; killing it", timeout)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill(self) -> None:
        """SIGKILL, for fault tests: no clean shutdown."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
