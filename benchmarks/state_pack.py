"""How the worker's state stores hold their values: the e2e workload's events handled in process by the real
`EventHandler` and `ChangelogWriter` (no Kafka), once per form of the run-state store: unpacked (the decoded
dict), "json" (the changelog record's bytes), "lz4" (those bytes as an LZ4 block). Alternating rounds;
per form the median handling time per event and the bytes of Python objects its run-state store holds.

Writes benchmarks/results/experiments/state-pack.json. Run with `python -m benchmarks.state_pack`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import faust

from benchmarks.e2e import machine
from processors.health.config import HealthConfig
from processors.health.engine import HealthEngine
from processors.health.state import PendingRun
from processors.lineage.handling import Codecs, EventHandler, Output, Topics
from processors.worker.app import DEDUP_PACK, RUN_STATE_PACK, TAKE_MAX, ChangelogWriter
from producers.simulator import Simulator
from schemas.codec import make_codec

RESULTS = Path(__file__).parent / "results" / "experiments"
PACKS = ("", "json", "lz4")  # unpacked, the JSON bytes, an LZ4 block
assert RUN_STATE_PACK in PACKS  # the worker's own form is among those measured


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    headers: Any = None


class Discard:
    """The handler's output: nothing is kept (this measures handling and the state, not Kafka), except the
    run records when `runs` is a list (for the health engine's part)."""

    def __init__(self, runs: list[bytes] | None = None) -> None:
        self.runs = runs

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        if self.runs is not None and topic == "runs" and value is not None:
            self.runs.append(value)


def workload(events: int, seeds: int) -> list[Message]:
    """The e2e workload's messages (duplicates and malformed ones included), `events` valid ones per seed."""
    codec = make_codec("lineage_event")
    out: list[Message] = []
    for seed in range(7, 7 + seeds):
        for m in Simulator(codec, seed=seed).messages(events):
            value = codec.encode(m.event.to_record()) if m.event is not None else (m.payload or b"")
            out.append(Message("events", 0, len(out), m.key, value, time.time()))
    return out


def deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes of the Python objects reachable from `obj` (each counted once)."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        size += sum(deep_size(v, seen) for v in obj)
    return size


def one_round(
    messages: list[Message], pack: str, datadir: str, runs: list[bytes] | None = None, out: Output | None = None
) -> tuple[float, int, int]:
    """Handling time per event (us), the run-state store's values in bytes, and how many runs it holds.
    `out` takes what the handler publishes (default: `Discard(runs)`)."""
    app = faust.App(
        f"state-pack-{pack or 'none'}-{time.time_ns()}",
        broker="kafka://127.0.0.1:9",
        store="memory://",
        datadir=datadir,
    )
    out = out if out is not None else Discard(runs)
    seen = ChangelogWriter(app.Table("dedup", default=None, partitions=1, key_type=str), out, pack=DEDUP_PACK)
    run_table = app.Table("runs", default=None, partitions=1, key_type=str)
    run_states = ChangelogWriter(run_table, out, pack=pack)
    codecs = Codecs(
        event=make_codec("lineage_event"),
        edge=make_codec("edge"),
        run=make_codec("run"),
        letter=make_codec("dead_letter"),
    )
    handler = EventHandler(
        Topics(events="events", edges="edges", runs="runs", dlq="dlq"), codecs, out, seen, run_states
    )
    started = time.perf_counter()
    for i in range(0, len(messages), TAKE_MAX):
        handler.handle_batch(messages[i : i + TAKE_MAX], time.time_ns() // 1_000_000)
    per_event = (time.perf_counter() - started) / len(messages) * 1e6
    held = deep_size(list(run_table.data.values()), set())
    return per_event, held, len(run_table.data)


def pending_runs(records: list[bytes]) -> dict[str, int]:
    """The health engine holding every run record as a run awaiting its facts (nothing settles): the bytes
    its pending runs hold, strings shared between runs counted once, and counted once per run that names them
    (what they held before the artifacts' strings were interned: each run record decoded apart)."""
    codec = make_codec("run")
    engine = HealthEngine(HealthConfig(lateness_ms=10**12))
    for value in records:
        engine.add_run(codec.decode(value))
    runs = list(engine.pending.values())
    shared: set[int] = set()
    return {
        "pending_runs": len(runs),
        "held_bytes": sum(run_size(run, shared) for run in runs),
        "held_bytes_unshared": sum(run_size(run, set()) for run in runs),
    }


def run_size(run: PendingRun, seen: set[int]) -> int:
    size = sys.getsizeof(run) + sum(deep_size(getattr(run, f), seen) for f in ("job", "kind", "status", "facets"))
    for a in run.inputs + run.outputs:
        fields = ("kind", "namespace", "name", "version", "facets")
        size += sys.getsizeof(a) + sum(deep_size(getattr(a, f), seen) for f in fields)
    return size + sys.getsizeof(run.inputs) + sys.getsizeof(run.outputs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=50_000, help="valid events per seed")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS / "state-pack.json")
    args = p.parse_args()
    messages = workload(args.events, args.seeds)
    times: dict[str, list[float]] = {pack: [] for pack in PACKS}
    held: dict[str, int] = {}
    runs = 0
    records: list[bytes] = []
    with tempfile.TemporaryDirectory() as datadir:
        for r in range(args.rounds):
            for pack in PACKS:
                keep = records if r == 0 and pack == RUN_STATE_PACK else None
                per_event, held[pack], runs = one_round(messages, pack, datadir, keep)
                times[pack].append(round(per_event, 1))
    pending = pending_runs(records)
    result = {
        "benchmark": "state_pack",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "messages": len(messages),
        "runs_held": runs,
        "handle_us_per_event": {pack or "unpacked": times[pack] for pack in PACKS},
        "handle_us_per_event_p50": {pack or "unpacked": median(times[pack]) for pack in PACKS},
        "run_store_mib": {pack or "unpacked": round(held[pack] / 2**20, 1) for pack in PACKS},
        "run_store_bytes_per_run": {pack or "unpacked": round(held[pack] / max(runs, 1)) for pack in PACKS},
        "health_pending_runs": pending["pending_runs"],
        "health_pending_mib": {
            "interned": round(pending["held_bytes"] / 2**20, 1),
            "one_copy_per_run": round(pending["held_bytes_unshared"] / 2**20, 1),
        },
        "notes": (
            "in process, no Kafka: the real EventHandler and ChangelogWriter over the e2e workload (simulator "
            "seeds 7..); the dedup store in the worker's form (DEDUP_PACK) in every round; the run-state store "
            "in the form named; sizes are the Python objects its values hold (keys not counted, strings shared "
            "between values counted once); health_pending_mib: every run record of the first round in the "
            "worker's form held by the health engine as a run awaiting its facts, its strings counted once "
            "(interned, as the engine holds them) and once per run naming them"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("handle_us_per_event_p50", "run_store_mib", "run_store_bytes_per_run", "health_pending_mib")
            }
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
