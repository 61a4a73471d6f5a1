"""`upriver` command line: run the stack or one deployable, emit and simulate events, query lineage.

Reads the environment once (Settings.from_env) here, at the entry point; commands stay thin. Each command
lives in the module of its kind (upriver/cli/run.py, send.py, read.py) and imports what it needs inside its
function, so `upriver sink` never loads faust (tests/unit/test_boundaries.py).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from upriver.cli import read, run, send
from upriver.cli.run import up_banner
from upriver.settings import Settings

__all__ = ["COMMANDS", "main", "parser", "up_banner"]

COMMANDS = ("up", "demo", "worker", "sink", "emit", "simulate", "lineage", "kafka")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="upriver", description="Real-time lineage for AI/ML systems.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)
    run.add_commands(sub)
    send.add_commands(sub)
    read.add_commands(sub)
    run.add_kafka_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code: int = args.fn(Settings.from_env(), args)
    return code
