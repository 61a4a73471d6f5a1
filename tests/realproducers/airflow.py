"""A real Airflow DAG, run with Airflow's OpenLineage provider, and the events that provider emitted.

`ensure_airflow(cache)` installs the pinned apache-airflow and apache-airflow-providers-openlineage (with the
providers and OpenLineage libraries they need, pinned too) once into their own venv,
`cache/producers/airflow-venv`; a stamp file naming the pins makes later calls return at once. Airflow's
constraint files live on GitHub, which is not reachable here, so the direct dependencies are pinned instead.

`run_airflow(workdir, cache)` copies the DAG of tests/realproducers/airflow_dags (`shop`, see shop_dag.py)
into `workdir`, gives Airflow a home and a SQLite metadata database there and runs, in one process each:

1. `airflow db migrate`                                        - the metadata database (emits nothing);
2. `airflow dags test shop`                                    - every task succeeds;
3. `airflow dags test shop --conf '{"fail_revenue": true}'`    - revenue_by_country fails, so the DAG run
   fails and this command exits non-zero.

The provider sends its events with openlineage-python's `file` transport (append mode: one JSON object a
line), configured through `[openlineage] transport` (AIRFLOW__OPENLINEAGE__TRANSPORT), one file per
`dags test`; every AIRFLOW_* and OPENLINEAGE_* variable of the caller's environment is dropped first. The
events are returned parsed but otherwise unchanged, in emission order. Nothing needs the network: the tasks
only read and write CSV files under `workdir/data`, declared as `file://` Assets.

When the events are on disk: task events are emitted from a forked child the task runner waits for (up to
`[openlineage] execution_timeout`, raised here from 10 s to INVOCATION_TIMEOUT_S so a slow machine loses
none); the DAG run's event is emitted from a process pool that the interpreter drains before it exits. So
the file is complete when `airflow dags test` has returned.

What Airflow 3.3.2 with provider 2.20.3 emits under `airflow dags test`:

- task runs: job `shop.<task_id>` (namespace airflow-shop), START then COMPLETE or FAIL, with the `parent`
  run facet naming the DAG run (and `root` the same), `airflow`, `nominalTime`, `processing_engine`,
  `unknownSourceAttribute` run facets and `jobType` TASK, `sourceCode` (python or bash) job facets; inputs
  and outputs are the inlets and outlets, as datasets in namespace `file` named by absolute path;
- the DAG run: job `shop`, jobType DAG, one terminal event only (COMPLETE or FAIL, the latter with an
  `errorMessage` "task_failure"), with `airflowDagRun` and `airflowState` run facets. There is no START:
  `dags test` creates the DAG run already running, and Airflow announces a DAG run as started only when the
  scheduler moves it from queued to running;
- the failed task's FAIL event carries `errorMessage` with the exception's message and Python stack trace.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import HarnessError, check_call, invoke, locked, read_events, read_or_none, shown

AIRFLOW_VERSION = "3.3.2"
OPENLINEAGE_PROVIDER_VERSION = "2.20.3"
OPENLINEAGE_VERSION = "1.54.0"
# What apache-airflow 3.3.2 and the provider resolved to when this was written; pinned so that a new
# release of any of them cannot change what the tests see.
REQUIREMENTS: tuple[str, ...] = (
    f"apache-airflow=={AIRFLOW_VERSION}",
    "apache-airflow-task-sdk==1.3.2",
    f"apache-airflow-providers-openlineage=={OPENLINEAGE_PROVIDER_VERSION}",
    "apache-airflow-providers-common-compat==1.23.0",
    "apache-airflow-providers-common-io==1.11.0",  # translates file:// Assets into OpenLineage datasets
    "apache-airflow-providers-common-sql==2.4.0",
    "apache-airflow-providers-standard==1.21.0",  # PythonOperator, BashOperator
    f"openlineage-python=={OPENLINEAGE_VERSION}",
    f"openlineage-integration-common=={OPENLINEAGE_VERSION}",
    f"openlineage-sql=={OPENLINEAGE_VERSION}",
    "sqlalchemy==2.1.9",
)

DAGS_DIR = Path(__file__).resolve().parent / "airflow_dags"
DAG_ID = "shop"
JOB_NAMESPACE = "airflow-shop"
DATASET_NAMESPACE = "file"
DATA_DIR_VAR = "UPRIVER_AIRFLOW_DATA_DIR"
FAIL_CONF = '{"fail_revenue": true}'
STAMP_NAME = ".upriver-installed"
INSTALL_TIMEOUT_S = 1800
INVOCATION_TIMEOUT_S = 600

# (step name, airflow arguments, whether airflow must exit 0, whether the step emits OpenLineage events)
STEPS: tuple[tuple[str, tuple[str, ...], bool, bool], ...] = (
    ("db-migrate", ("db", "migrate"), True, False),
    ("dags-test", ("dags", "test", DAG_ID), True, True),
    ("dags-test-fail", ("dags", "test", DAG_ID, "--conf", FAIL_CONF), False, True),
)


class AirflowHarnessError(HarnessError):
    """Installing Airflow or running the DAG did not go as the harness expects."""


@dataclass(frozen=True)
class AirflowRun:
    """What the invocations of `run_airflow` emitted and printed."""

    events: list[dict[str, Any]]
    """Every OpenLineage event, in emission order, as parsed JSON (nothing added, removed or reordered)."""
    logs: str
    """stdout and stderr of every invocation, each after a `$ command` line."""
    invocations: list[tuple[list[str], int]]
    """(command line, exit code) of each invocation, in order: db migrate, then the two `dags test`."""
    data_dir: Path
    """Where the DAG's tasks read and wrote their files (absolute): the datasets' names start with it."""


def ensure_airflow(cache: Path) -> Path:
    """Install the pinned Airflow, its OpenLineage provider and their pinned dependencies into
    cache/producers/airflow-venv (once: a stamp file names the pins) and return the venv's bin directory."""
    venv = (cache / "producers" / "airflow-venv").resolve()
    bin_dir = venv / "bin"
    stamp = venv / STAMP_NAME
    # The venv's interpreter counts too: a new Python minor version gets a new venv.
    python = f"python=={sys.version_info.major}.{sys.version_info.minor}"
    wanted = "\n".join([python, *REQUIREMENTS]) + "\n"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with locked(venv.parent / "airflow-venv.lock"):
        if read_or_none(stamp) == wanted and (bin_dir / "airflow").exists():
            return bin_dir
        shutil.rmtree(venv, ignore_errors=True)
        check_call(
            [sys.executable, "-m", "venv", str(venv)], "create the Airflow venv", timeout=300, error=AirflowHarnessError
        )
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        check_call(
            [*pip, *REQUIREMENTS],
            "install Airflow and its OpenLineage provider",
            timeout=INSTALL_TIMEOUT_S,
            error=AirflowHarnessError,
        )
        stamp.write_text(wanted)
    return bin_dir


def run_airflow(workdir: Path, cache: Path) -> AirflowRun:
    """Copy the DAG into `workdir`, create Airflow's metadata database there, run the DAG once as it is and
    once with its failing task, and return the events emitted. Raises AirflowHarnessError when an
    invocation exits otherwise than expected or a DAG run's events are missing."""
    bin_dir = ensure_airflow(cache)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for leftover in ("dags", "data", "events", "airflow-home"):
        shutil.rmtree(workdir / leftover, ignore_errors=True)
    (workdir / "airflow.db").unlink(missing_ok=True)
    shutil.copytree(DAGS_DIR, workdir / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    data_dir = workdir / "data"
    data_dir.mkdir()
    events_dir = workdir / "events"
    events_dir.mkdir()

    env = _environment(bin_dir, workdir, data_dir)
    events: list[dict[str, Any]] = []
    logs: list[str] = []
    invocations: list[tuple[list[str], int]] = []
    for number, (step, airflow_args, must_succeed, emits) in enumerate(STEPS, start=1):
        events_file = events_dir / f"{number}-{step}.ndjson"
        step_env = dict(env)
        if emits:
            transport = {"type": "file", "log_file_path": str(events_file), "append": True}
            step_env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(transport)
        command = [str(bin_dir / "airflow"), *airflow_args]
        code, log = invoke(command, cwd=workdir, env=step_env, timeout=INVOCATION_TIMEOUT_S,
                           must_succeed=must_succeed, error=AirflowHarnessError)  # fmt: skip
        logs.append(log)
        invocations.append((command, code))
        (workdir / "airflow.log").write_text("".join(logs))
        if not emits:
            continue
        emitted = read_events(events_file, AirflowHarnessError)
        # The DAG run's terminal event comes last, from the provider's process pool: without it, either the
        # provider did not run or the process ended before the pool had written everything.
        if not any(event["job"]["name"] == DAG_ID and event["eventType"] in {"COMPLETE", "FAIL"} for event in emitted):
            raise AirflowHarnessError(
                f"{shown(command)} emitted {len(emitted)} OpenLineage event(s) to {events_file}, none of them "
                f"the end of DAG run {DAG_ID!r}:\n{log}"
            )
        events.extend(emitted)
    return AirflowRun(events=events, logs="".join(logs), invocations=invocations, data_dir=data_dir)


def _environment(bin_dir: Path, workdir: Path, data_dir: Path) -> dict[str, str]:
    """The caller's environment without its Airflow, OpenLineage and Python-path settings, plus the
    harness's own: Airflow's home, DAG folder and SQLite database under `workdir`, the provider's namespace
    and timeout. The venv's bin comes first on PATH (BashOperator and the provider start processes)."""
    dropped = ("AIRFLOW", "OPENLINEAGE", "UPRIVER_AIRFLOW", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith(dropped)}
    env.update(
        {
            "PATH": os.pathsep.join([str(bin_dir), env.get("PATH", os.defpath)]),
            "AIRFLOW_HOME": str(workdir / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(workdir / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{workdir / 'airflow.db'}",
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            "AIRFLOW__OPENLINEAGE__NAMESPACE": JOB_NAMESPACE,
            "AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT": str(INVOCATION_TIMEOUT_S),
            DATA_DIR_VAR: str(data_dir),
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
    )
    return env
