"""What the producer harnesses share: running a command with its output captured, reading the events a
file transport wrote, and a lock so two test processes never build the same venv at once."""

from __future__ import annotations

import contextlib
import fcntl
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class HarnessError(RuntimeError):
    """A producer did not run as the harness expects; the message holds what it printed."""


def read_events(path: Path, error: type[HarnessError]) -> list[dict[str, Any]]:
    """The events of a file transport's output, one JSON object a line, in the order written."""
    if not path.exists():
        return []
    events: list[dict[str, Any]] = []
    # "\n" only: str.splitlines() would also cut at U+2028 and friends, which JSON strings may hold raw.
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        event = json.loads(line)
        if not isinstance(event, dict):
            raise error(f"{path}:{number} is not a JSON object")
        events.append(event)
    return events


def invoke(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout: int, must_succeed: bool, error: type[HarnessError]
) -> tuple[int, str]:
    """Run one producer invocation, output captured: (exit code, a log entry naming the command, its output,
    exit code and duration). Raises `error` on a timeout, and when the exit code is not the expected one
    (0 when `must_succeed`, else anything but 0: a run made to fail)."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode(errors="replace")
        raise error(f"{shown(command)} did not finish in {timeout} s; its output:\n{output}") from exc
    log = f"$ {shown(command)}\n{done.stdout}[exit {done.returncode} after {time.monotonic() - started:.1f} s]\n"
    if must_succeed and done.returncode != 0:
        raise error(f"{shown(command)} exited {done.returncode}, expected 0; its output:\n{log}")
    if not must_succeed and done.returncode == 0:
        raise error(f"{shown(command)} exited 0, expected a failure; its output:\n{log}")
    return done.returncode, log


def check_call(command: list[str], what: str, *, timeout: int, error: type[HarnessError]) -> None:
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise error(f"could not {what}: {shown(command)} did not finish in {timeout} s") from exc
    if done.returncode != 0:
        raise error(f"could not {what}: {shown(command)} exited {done.returncode}:\n{done.stdout}")


def read_or_none(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`, so two test processes never build the same venv at once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shown(command: list[str]) -> str:
    return " ".join(part if part and " " not in part else repr(part) for part in command)
