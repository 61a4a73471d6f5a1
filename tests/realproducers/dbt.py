"""The real OpenLineage dbt integration, run for the tests: `dbt-ol` (openlineage-dbt) on dbt-core with
dbt-duckdb, over the small project in tests/realproducers/dbt_project, returning the events it emitted.

`ensure_dbt(cache)` installs the pinned tools once into their own venv (cache/producers/dbt-venv), so the
project's own venv needs nothing but the standard library and pytest. `run_dbt(workdir, cache)` copies the
project into `workdir` and runs four invocations against a DuckDB file there:

1. `dbt-ol seed`  - the two seeds (the on-run-start hook also creates the source table landed.payments,
   which no dbt node writes);
2. `dbt-ol run`   - staging views and marts tables;
3. `dbt-ol test`  - the data tests (one of severity warn fails on purpose, so dbt still exits 0);
4. `dbt-ol run --vars '{fail_model: true}'` - the model country_revenue fails, so this one exits non-zero.

The events are captured with openlineage-python's `file` transport (append mode: one JSON object a line),
configured through an openlineage.yml named by OPENLINEAGE_CONFIG; every OPENLINEAGE_* and DBT_* variable of
the caller's environment is dropped first, so no OPENLINEAGE_URL or parent run leaks in. They are returned
parsed but otherwise unchanged, in emission order.

dbt-ol has two ways of producing events, and in 1.54.0 neither gives every facet:

- `mode="artifacts"` (dbt-ol's default): events are built after dbt exits from target/manifest.json and
  run_results.json. Outputs carry `columnLineage` (with empty `transformations`); seeds are not datasets of
  their own (they appear only inside columnLineage); each tested model or source gets one job
  `<db>.<schema>.<node>.test` whose only input carries `dataQualityAssertions`; FAIL events have no
  `errorMessage`.
- `mode="structured-logs"` (`dbt-ol --consume-structured-logs`): events are emitted while dbt runs, from its
  JSON log. Job names are dbt unique ids (`model.shop.orders`), each SQL statement is a child job
  (`<unique id>.sql.<n>`), seeds are jobs with an output, test jobs have their audit table as an output,
  FAIL events carry `errorMessage`, and no output carries `columnLineage` (the manifest read while dbt runs
  has no compiled SQL).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .common import HarnessError, check_call, invoke, locked, read_events, read_or_none, shown

# dbt-core >= 1.11 needs dbt-core-experimental-parser, whose build downloads from outside the registries.
DBT_CORE_VERSION = "1.10.23"
DBT_DUCKDB_VERSION = "1.10.1"
OPENLINEAGE_DBT_VERSION = "1.54.0"
# dbt-duckdb accepts any duckdb >= 1; pinned so a new duckdb cannot change what the tests see.
DUCKDB_VERSION = "2.0.1"
REQUIREMENTS: tuple[str, ...] = (
    f"dbt-core=={DBT_CORE_VERSION}",
    f"dbt-duckdb=={DBT_DUCKDB_VERSION}",
    f"openlineage-dbt=={OPENLINEAGE_DBT_VERSION}",
    f"duckdb=={DUCKDB_VERSION}",
)

PROJECT_DIR = Path(__file__).resolve().parent / "dbt_project"
JOB_NAMESPACE = "dbt-shop"
DUCKDB_PATH_VAR = "UPRIVER_DBT_DUCKDB_PATH"
FAIL_VARS = "{fail_model: true}"
STAMP_NAME = ".upriver-installed"
INSTALL_TIMEOUT_S = 1200
INVOCATION_TIMEOUT_S = 600

Mode = Literal["artifacts", "structured-logs"]
MODES: tuple[Mode, ...] = ("artifacts", "structured-logs")

# (step name, dbt arguments after the command's global options, whether dbt must exit 0)
STEPS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("seed", ("seed",), True),
    ("run", ("run",), True),
    ("test", ("test",), True),
    ("run-fail", ("run", "--vars", FAIL_VARS), False),
)


class DbtHarnessError(HarnessError):
    """Installing dbt or running dbt-ol did not go as the harness expects."""


@dataclass(frozen=True)
class DbtRun:
    """What the four dbt-ol invocations of `run_dbt` emitted and printed."""

    events: list[dict[str, Any]]
    """Every OpenLineage event, in emission order, as parsed JSON (nothing added, removed or reordered)."""
    duckdb_path: Path
    logs: str
    """stdout and stderr of every invocation, each after a `$ command` line."""
    invocations: list[tuple[list[str], int]]
    """(command line, exit code) of each invocation, in order."""
    mode: Mode

    @property
    def dataset_namespace(self) -> str:
        """The namespace dbt-ol gives every dataset: `duckdb://` followed by the profile's (absolute) path."""
        return f"duckdb://{self.duckdb_path}"


def ensure_dbt(cache: Path) -> Path:
    """Install the pinned dbt-core, dbt-duckdb, duckdb and openlineage-dbt into cache/producers/dbt-venv
    (once: a stamp file names the pinned versions) and return the venv's bin directory."""
    venv = cache / "producers" / "dbt-venv"
    bin_dir = venv / "bin"
    stamp = venv / STAMP_NAME
    # The venv's interpreter counts too: a new Python minor version gets a new venv.
    python = f"python=={sys.version_info.major}.{sys.version_info.minor}"
    wanted = "\n".join([python, *REQUIREMENTS]) + "\n"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with locked(venv.parent / "dbt-venv.lock"):
        if read_or_none(stamp) == wanted and (bin_dir / "dbt-ol").exists() and (bin_dir / "dbt").exists():
            return bin_dir
        shutil.rmtree(venv, ignore_errors=True)
        check_call([sys.executable, "-m", "venv", str(venv)], "create the dbt venv", timeout=300, error=DbtHarnessError)
        pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        check_call(
            [*pip, *REQUIREMENTS], "install dbt and openlineage-dbt", timeout=INSTALL_TIMEOUT_S, error=DbtHarnessError
        )
        stamp.write_text(wanted)
    return bin_dir


def run_dbt(workdir: Path, cache: Path, *, mode: Mode = "artifacts") -> DbtRun:
    """Copy the dbt project into `workdir`, run dbt-ol seed, run, test and the failing run there, and return
    the events emitted. Raises DbtHarnessError when an invocation exits otherwise than expected or emits
    no event."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    bin_dir = ensure_dbt(cache)
    workdir = workdir.resolve()
    project = workdir / "project"
    if project.exists():
        shutil.rmtree(project)
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt-logs-*", "dbt_packages"))
    duckdb_path = workdir / "shop.duckdb"
    duckdb_path.unlink(missing_ok=True)
    events_dir = workdir / "events"
    shutil.rmtree(events_dir, ignore_errors=True)
    shutil.rmtree(workdir / "dbt-logs", ignore_errors=True)
    events_dir.mkdir(parents=True)

    env = _environment(bin_dir, duckdb_path)
    events: list[dict[str, Any]] = []
    logs: list[str] = []
    invocations: list[tuple[list[str], int]] = []
    for number, (step, dbt_args, must_succeed) in enumerate(STEPS, start=1):
        name = f"{number}-{step}"
        events_file = events_dir / f"{name}.ndjson"
        config = events_dir / f"{name}.openlineage.yml"
        # JSON is YAML: the paths need no quoting rules of their own.
        transport = {"type": "file", "log_file_path": str(events_file), "append": True}
        config.write_text(json.dumps({"transport": transport}) + "\n")
        command = [
            str(bin_dir / "dbt-ol"),
            *(["--consume-structured-logs"] if mode == "structured-logs" else []),
            dbt_args[0],
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--log-path",
            str(workdir / "dbt-logs" / name),
            *dbt_args[1:],
        ]
        step_env = {**env, "OPENLINEAGE_CONFIG": str(config)}
        code, log = invoke(command, cwd=project, env=step_env, timeout=INVOCATION_TIMEOUT_S,
                           must_succeed=must_succeed, error=DbtHarnessError)  # fmt: skip
        logs.append(log)
        invocations.append((command, code))
        (workdir / "dbt-ol.log").write_text("".join(logs))
        emitted = read_events(events_file, DbtHarnessError)
        if not emitted:
            raise DbtHarnessError(f"{shown(command)} emitted no OpenLineage event to {events_file}:\n{log}")
        events.extend(emitted)
    return DbtRun(events=events, duckdb_path=duckdb_path, logs="".join(logs), invocations=invocations, mode=mode)


def _environment(bin_dir: Path, duckdb_path: Path) -> dict[str, str]:
    """The caller's environment without its OpenLineage, dbt and Python-path settings, plus the harness's own.
    The venv's bin comes first on PATH: dbt-ol starts `dbt` by name."""
    dropped = ("OPENLINEAGE", "DBT_", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith(dropped)}
    env.update(
        {
            "PATH": os.pathsep.join([str(bin_dir), env.get("PATH", os.defpath)]),
            "OPENLINEAGE_NAMESPACE": JOB_NAMESPACE,
            DUCKDB_PATH_VAR: str(duckdb_path),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_USE_COLORS": "false",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
    )
    return env
