"""A real PySpark job, run in local mode with the OpenLineage Spark listener, and the events that listener emitted.

`ensure_spark(cache)` installs, once, a venv with a pinned pyspark (Scala 2.12) under
`cache/producers/spark-venv` and fetches the shaded listener jar from Maven Central into
`cache/producers/jars` (the jar's POM declares no dependencies: it needs nothing else on the classpath).
A stamp file naming the pinned versions makes later calls return at once.

`run_spark(workdir, cache)` runs `spark_job.py` (beside this file) twice in that venv, each run its own JVM:
`seed` writes the inputs (a CSV with the stdlib, a parquet file with a listener-free Spark app), then
`lineage` runs the watched app with the listener's `file` transport. That transport appends each event as
one JSON line (CREATE + APPEND, line separators stripped); `spark.stop()` drains the listener bus before the
process exits, so the file is complete when the process has ended. The events come back parsed but
otherwise unchanged, in emission (file) order.

Needs Java 17 (`java` on PATH or JAVA_HOME) and Maven; only PyPI and Maven Central are reached.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import HarnessError, read_events

PYSPARK_VERSION = "3.5.9"
SCALA_BINARY = "2.12"
OPENLINEAGE_VERSION = "1.53.0"
LISTENER_ARTIFACT = f"io.openlineage:openlineage-spark_{SCALA_BINARY}:{OPENLINEAGE_VERSION}"
LISTENER_JAR = f"openlineage-spark_{SCALA_BINARY}-{OPENLINEAGE_VERSION}.jar"
LISTENER_CLASS = "io.openlineage.spark.agent.OpenLineageSparkListener"
NAMESPACE = "spark-shop"
JOB_SCRIPT = Path(__file__).with_name("spark_job.py")

INSTALL_TIMEOUT_S = 1800.0
RUN_TIMEOUT_S = 600.0

# Spark's own logging at WARN, the listener's at INFO: enough to see what it did when a run fails.
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex
logger.openlineage.name = io.openlineage
logger.openlineage.level = info
# It warns at every query that it cannot open java.base to an extension class loader (harmless here).
logger.olextension.name = io.openlineage.spark.agent.lifecycle.SparkOpenLineageExtensionVisitorWrapper
logger.olextension.level = error
"""


class SparkHarnessError(HarnessError):
    """Installing Spark or running the job failed; the message carries the tool's output."""


@dataclass(frozen=True)
class SparkRun:
    """What one `run_spark` produced: the listener's events (parsed JSON, unchanged, emission order)."""

    events: list[dict[str, Any]]
    warehouse: Path
    logs: str = field(repr=False)
    exit_code: int


def _stamp_text() -> str:
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"pyspark=={PYSPARK_VERSION} {LISTENER_ARTIFACT} python{py}\n"


def _run(cmd: list[str], what: str, timeout: float) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise SparkHarnessError(f"{what} timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-40:])
        raise SparkHarnessError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return out


def _require_java() -> None:
    """PySpark's launcher takes JAVA_HOME/bin/java, else `java` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and (Path(java_home) / "bin" / "java").exists()) and shutil.which("java") is None:
        raise SparkHarnessError("`java` not found (PATH or JAVA_HOME): PySpark needs Java 17")


def ensure_spark(cache: Path) -> tuple[Path, Path]:
    """The Spark venv's bin dir and the listener jar, installed under `cache/producers` on first use only."""
    root = (cache / "producers").resolve()
    venv = root / "spark-venv"
    bin_dir = venv / "bin"
    jar = root / "jars" / LISTENER_JAR
    stamp = root / "spark.stamp"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".spark.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (pytest-xdist, two sessions)
        if stamp.exists() and stamp.read_text() == _stamp_text() and (bin_dir / "python").exists() and jar.exists():
            return bin_dir, jar
        _require_java()
        if shutil.which("mvn") is None:
            raise SparkHarnessError("`mvn` not found: the Spark harness fetches the listener jar with Maven")
        stamp.unlink(missing_ok=True)
        if venv.exists():
            shutil.rmtree(venv)
        _run([sys.executable, "-m", "venv", str(venv)], "creating the Spark venv", INSTALL_TIMEOUT_S)
        _run(
            [str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
             f"pyspark=={PYSPARK_VERSION}"],
            f"installing pyspark=={PYSPARK_VERSION}",
            INSTALL_TIMEOUT_S,
        )  # fmt: skip
        got = _run(
            [str(bin_dir / "python"), "-c", "import pyspark; print(pyspark.__version__)"],
            "importing pyspark",
            INSTALL_TIMEOUT_S,
        ).strip()
        if got != PYSPARK_VERSION:
            raise SparkHarnessError(f"the Spark venv has pyspark {got!r}, not {PYSPARK_VERSION}")
        jar.parent.mkdir(parents=True, exist_ok=True)
        _run(
            ["mvn", "-B", "-q", "dependency:copy", f"-Dartifact={LISTENER_ARTIFACT}",
             f"-DoutputDirectory={jar.parent}"],
            f"fetching {LISTENER_ARTIFACT} with Maven",
            INSTALL_TIMEOUT_S,
        )  # fmt: skip
        if not jar.exists():
            raise SparkHarnessError(f"Maven finished but {jar} is not there")
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(_stamp_text())
        tmp.replace(stamp)
        return bin_dir, jar


def base_conf(log4j: Path) -> dict[str, str]:
    """The Spark settings of both apps: local mode on loopback, one core, a small driver, no UI."""
    return {
        "spark.master": "local[1]",
        "spark.driver.memory": "512m",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "1",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={log4j.as_uri()}",
    }


def listener_conf(jar: Path, events_file: Path, log4j: Path) -> dict[str, str]:
    """The watched app's settings: the base ones, the listener jar and class, its `file` transport."""
    return base_conf(log4j) | {
        "spark.jars": str(jar),
        "spark.extraListeners": LISTENER_CLASS,
        "spark.openlineage.namespace": NAMESPACE,
        "spark.openlineage.transport.type": "file",
        "spark.openlineage.transport.location": str(events_file),
    }


def _spark_env(bin_dir: Path, workdir: Path) -> dict[str, str]:
    _require_java()
    env = dict(os.environ)
    for var in ("SPARK_HOME", "PYSPARK_SUBMIT_ARGS", "PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR"):
        env.pop(var, None)  # a Spark installed elsewhere must not take over
    env["PYSPARK_PYTHON"] = str(bin_dir / "python")
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["SPARK_LOCAL_DIRS"] = str(workdir / "spark-local")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _step(cmd: list[str], env: dict[str, str], cwd: Path, logs: list[str]) -> int:
    """Run one app in its own process group (the Python driver and the JVM it starts) and log what it said."""
    started = time.monotonic()
    label = " ".join(cmd[:3])
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            logs.append(f"$ {label} (killed after {RUN_TIMEOUT_S:.0f} s)\n{out}")
            raise SparkHarnessError("the Spark job timed out:\n" + "".join(logs)) from exc
    logs.append(f"$ {label} -> {proc.returncode} in {time.monotonic() - started:.1f} s\n{out}")
    return proc.returncode


def run_spark(workdir: Path, cache: Path) -> SparkRun:
    """Run the seed app, then the watched app, in `workdir`; the listener's events, unchanged, in order."""
    bin_dir, jar = ensure_spark(cache)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    events_file = workdir / "openlineage" / "events.jsonl"
    events_file.unlink(missing_ok=True)  # the transport appends: a second run must not see the first's events
    log4j = workdir / "log4j2.properties"
    log4j.write_text(LOG4J2)
    env = _spark_env(bin_dir, workdir)
    python = str(bin_dir / "python")
    logs: list[str] = []

    seed = [python, str(JOB_SCRIPT), "seed", str(workdir), json.dumps(base_conf(log4j))]
    seed_code = _step(seed, env, workdir, logs)
    if seed_code != 0:
        raise SparkHarnessError(f"the Spark seed app failed ({seed_code}):\n" + "".join(logs))
    conf = listener_conf(jar, events_file, log4j)
    code = _step([python, str(JOB_SCRIPT), "lineage", str(workdir), json.dumps(conf)], env, workdir, logs)
    text = "".join(logs)
    if code != 0:
        raise SparkHarnessError(f"the Spark lineage app failed ({code}):\n{text}")
    if not events_file.exists():
        raise SparkHarnessError(f"the Spark app exited 0 but the listener wrote no {events_file}:\n{text}")
    return SparkRun(
        events=read_events(events_file, SparkHarnessError), warehouse=workdir / "warehouse", logs=text, exit_code=code
    )
