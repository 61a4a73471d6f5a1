"""Data.Rentgen (PyPI `data-rentgen`), the peer of benchmarks/peers.py, run beside Upriver on this machine.

Data.Rentgen is a Kafka consumer of OpenLineage JSON (FastStream on aiokafka) writing into PostgreSQL, plus a
REST server (FastAPI). Everything here is its documented way of running, with its defaults, except what a
one-box benchmark has to set (addresses, a fresh consumer group, `earliest` offsets, a dummy auth secret):

- `ensure_installed`: a Python 3.12 virtualenv (Data.Rentgen needs >= 3.12; pyenv's 3.12 here) with
  `data-rentgen[server,consumer,postgres]==0.7.2` from PyPI, under the benchmark cache.
- `Postgres`: Debian's PostgreSQL 15 server binaries, a throw-away cluster (initdb, trust auth on 127.0.0.1),
  run as the `postgres` user when this process is root (initdb refuses root).
- `Rentgen`: the schema migrations (alembic), the partitions of the time-partitioned tables (its
  `create_partitions` script: runs, operations, inputs and outputs are partitioned by the run id's time, and
  an event of a month without a partition is lost), its consumer and its server, each a process.

Found while writing it (kept for peers.py and the docs): run ids must be UUIDv7 (others go to the consumer's
malformed topic); the consumer's offsets default to `latest`; its offsets are committed by aiokafka's
auto-commit, ~5 s behind what is queryable, so freshness is measured by polling the REST answer; with
granularity DATASET one dataset -> run -> dataset is one hop of `depth`, as in Upriver; the API caps depth at 10.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urlencode

from benchmarks.rest import Api
from upriver.local.stack import free_port

VERSION = "0.7.2"
PACKAGE = f"data-rentgen[server,consumer,postgres]=={VERSION}"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PYTHON_312 = (Path.home() / ".pyenv/versions/3.12.1/bin/python", Path("/usr/bin/python3.12"))
SINCE = "2000-01-01T00:00:00Z"


def ensure_installed(cache: Path) -> Path:
    """The venv's python with Data.Rentgen installed (pip from PyPI once; a stamp file marks it done)."""
    venv = cache / "rentgen" / "venv"
    python = venv / "bin" / "python"
    stamp = venv / f".installed-{VERSION}"
    if stamp.exists():
        return python
    base = next((p for p in PYTHON_312 if p.exists()), None)
    if base is None:
        raise RuntimeError(f"Data.Rentgen needs Python >= 3.12; none of {[str(p) for p in PYTHON_312]} exists")
    subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", PACKAGE], check=True)
    stamp.write_text(PACKAGE + "\n")
    return python


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    """A throw-away PostgreSQL cluster in `data_dir` on a free port; `.dsn` for Data.Rentgen."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None
        self.dsn = f"postgresql+asyncpg://postgres:postgres@127.0.0.1:{self.port}/data_rentgen"

    def __enter__(self) -> Postgres:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql-15)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for path in (self.data_dir, self.data_dir.parent):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U",
                                     "postgres", "-E", "UTF8"]), check=True, capture_output=True)  # fmt: skip
        self._log = open(self.data_dir.parent / "postgres.log", "wb")
        self.proc = subprocess.Popen(
            _as_postgres(
                [
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-k",
                    "/tmp",
                    "-c",
                    "listen_addresses=127.0.0.1",
                ]
            ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while self.psql("SELECT 1", db="postgres") != "1":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: see {self.data_dir.parent / 'postgres.log'}")
            time.sleep(0.3)
        self.psql("CREATE DATABASE data_rentgen", db="postgres")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def server_pids(self) -> list[int]:
        """The postmaster and every backend (runuser's descendants when started through runuser)."""
        return process_tree(self.pid)

    def psql(self, sql: str, db: str = "data_rentgen") -> str:
        done = subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "-d", db, "-tAc", sql], capture_output=True, text=True)  # fmt: skip
        return done.stdout.strip() if done.returncode == 0 else ""

    def __exit__(self, *exc: object) -> None:
        _stop(self.proc)
        if self._log is not None:
            self._log.close()


class Rentgen:
    """Data.Rentgen's migrations, partitions, consumer (of `topic`, from the earliest offset, group `group_id`)
    and REST server, as processes of `python`; `.api` (logged in once the server is up) for its REST API."""

    def __init__(self, python: Path, dsn: str, bootstrap: str, topic: str, workdir: Path, group_id: str) -> None:
        self.python, self.workdir = python, workdir
        self.server_port, self.monitor_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.server_port}"
        self.env = {
            **os.environ,
            "DATA_RENTGEN__DATABASE__URL": dsn,
            "DATA_RENTGEN__KAFKA__BOOTSTRAP_SERVERS": json.dumps(bootstrap.split(",")),
            "DATA_RENTGEN__CONSUMER__TOPICS_LIST": json.dumps([topic]),
            "DATA_RENTGEN__CONSUMER__MALFORMED_TOPIC": f"{topic}.malformed",
            "DATA_RENTGEN__CONSUMER__GROUP_ID": group_id,
            "DATA_RENTGEN__CONSUMER__AUTO_OFFSET_RESET": "earliest",
            "DATA_RENTGEN__AUTH__ACCESS_TOKEN__SECRET_KEY": "benchmark-only-secret",
            "DATA_RENTGEN__AUTH__PERSONAL_TOKENS__ENABLED": "false",
            "DATA_RENTGEN__SERVER__STATIC_FILES__ENABLED": "false",
            "DATA_RENTGEN__LOGGING__SETUP": "false",
        }
        self.env.pop("PYTHONPATH", None)
        self.consumer: subprocess.Popen[bytes] | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self.api: Api | None = None

    def _run(self, *args: str) -> None:
        done = subprocess.run([str(self.python), "-m", *args], env=self.env, cwd=self.workdir, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"data_rentgen {' '.join(args)} failed:\n{done.stderr.decode()[-3000:]}")

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen([str(self.python), "-m", *args], env=self.env, cwd=self.workdir, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip

    def prepare(self) -> None:
        """Schema and partitions (from last month to two months ahead, so every run id of the stream fits)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._run("data_rentgen.db.migrations", "upgrade", "head")
        start = time.strftime("%Y-%m-01", time.gmtime(time.time() - 40 * 86400))
        self._run("data_rentgen.db.scripts.create_partitions", "--start", start, "--granularity", "month")

    def start_server(self, timeout: float = 120.0) -> None:
        self.server = self._spawn("server", "data_rentgen.server", "--host", "127.0.0.1", "--port",
                                  str(self.server_port))  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._login()
                return
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Data.Rentgen server did not start: {self.workdir / 'server.log'}") from None
                time.sleep(0.5)

    def start_consumer(self) -> None:
        self.consumer = self._spawn("consumer", "data_rentgen.consumer", "--host", "127.0.0.1", "--port",
                                    str(self.monitor_port))  # fmt: skip

    def stop_consumer(self) -> None:
        _stop(self.consumer)

    def _login(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.server_port, timeout=30)
        body = urlencode({"username": "benchmark", "password": "benchmark"})
        conn.request("POST", "/v1/auth/token", body, {"Content-Type": "application/x-www-form-urlencoded"})
        resp = conn.getresponse()
        answer = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"Data.Rentgen login: {resp.status} {answer[:300]!r}")
        self.api = Api(self.base_url, json.loads(answer)["access_token"])
        conn.close()

    def __enter__(self) -> Rentgen:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.api is not None:
            self.api.close()
        _stop(self.consumer)
        _stop(self.server)


def lineage(api: Api, dataset_id: str, direction: str, depth: int) -> tuple[float, int, Any]:
    """Data.Rentgen's `GET /v1/datasets/lineage` at granularity DATASET (direction DOWNSTREAM or UPSTREAM)."""
    return api.get("/v1/datasets/lineage", start_node_id=dataset_id, direction=direction, depth=depth,
                        granularity="DATASET", since=SINCE)  # fmt: skip


def dataset_id(api: Api, namespace: str, name: str) -> str | None:
    """The id of the dataset an OpenLineage (namespace, name) became, by the REST search; None if absent."""
    _, status, body = api.get("/v1/datasets", search_query=name, page_size=50)
    if status != 200:
        return None
    for item in body.get("items", []):
        ds = item.get("data", item)
        if ds.get("name") == name and ol_namespace(ds["location"]) == namespace.lower():
            return str(ds["id"])
    return None


def process_tree(pid: int) -> list[int]:
    """`pid` and every live descendant of it (from /proc)."""
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        found.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        frontier.extend(int(c) for c in children)
    return found


def ol_namespace(location: dict[str, Any]) -> str:
    """The OpenLineage namespace Data.Rentgen's location came from (`scheme://host`, lower case)."""
    return f"{location['type']}://{location['name']}"


def datasets_in_answer(body: dict[str, Any], start_id: str) -> set[tuple[str, str]]:
    """The (namespace, name) of every dataset of a lineage answer but the start node."""
    found = set()
    for key, ds in (body.get("nodes", {}).get("datasets") or {}).items():
        if str(key) != str(start_id):
            found.add((ol_namespace(ds["location"]), ds["name"]))
    return found


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
