"""The worker's two ways with an OpenLineage Kafka message, in process (no Kafka, no faust): the real
`EventHandler` and `ChangelogWriter` over the Data.Rentgen benchmark's stream (benchmarks/peers.py: 27,898
messages of ~3 KB keyed by job). "in_place": the worker owns every events-topic partition, so
`translate_openlineage` maps and handles each event where it read it. "sent_on": it owns none, so it maps each
event and publishes it as Avro to the events topic, and the same handler then takes those messages as the
lineage agent does (`handle_batch`): the path every message took before the in-place one. Alternating rounds;
the median Python time per OpenLineage message each way. What this leaves out (faust's second delivery, the
broker's write and read of the events topic) is in `make bench-peers`.

Writes benchmarks/results/experiments/openlineage-path.json. Run with `python -m benchmarks.openlineage_path`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import zlib
from pathlib import Path
from statistics import median
from typing import Any

import faust

from benchmarks.e2e import machine
from benchmarks.peers import DEFAULT_SEED, make_stream
from benchmarks.state_pack import Message
from processors.lineage.handling import Codecs, EventHandler, Topics
from processors.worker.app import DEDUP_PACK, RUN_STATE_PACK, TAKE_MAX, ChangelogWriter
from schemas.codec import make_codec

RESULTS = Path(__file__).parent / "results" / "experiments"
PARTITIONS = 8
TOPICS = Topics(events="events", edges="edges", runs="runs", dlq="dlq", openlineage="openlineage")


class Capture:
    """The handler's output: the events-topic messages kept (to hand them to the lineage agent's part), the
    rest counted."""

    def __init__(self) -> None:
        self.events: list[Message] = []
        self.others = 0

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        if topic != TOPICS.events:
            self.others += 1
            return
        p = partition if partition is not None else zlib.crc32(key or b"") % PARTITIONS
        self.events.append(Message(topic, p, len(self.events), key, value, time.time(), headers))


def one_round(messages: list[Message], way: str, datadir: str) -> tuple[float, int, int]:
    """Time per OpenLineage message (us), the messages sent on, and the outputs published otherwise."""
    app = faust.App(f"ol-path-{way}-{time.time_ns()}", broker="kafka://127.0.0.1:9", store="memory://",
                    datadir=datadir)  # fmt: skip
    out = Capture()
    seen = ChangelogWriter(app.Table("dedup", default=None, partitions=PARTITIONS, key_type=str), out, pack=DEDUP_PACK)
    runs = ChangelogWriter(app.Table("runs", default=None, partitions=PARTITIONS, key_type=str), out,
                           pack=RUN_STATE_PACK)  # fmt: skip
    codecs = Codecs(event=make_codec("lineage_event"), edge=make_codec("edge"), run=make_codec("run"),
                    letter=make_codec("dead_letter"))  # fmt: skip
    owned = set(range(PARTITIONS)) if way == "in_place" else set()
    handler = EventHandler(TOPICS, codecs, out, seen, runs, placement=lambda: (PARTITIONS, owned))
    started = time.perf_counter()
    for i in range(0, len(messages), TAKE_MAX):
        handler.translate_openlineage(messages[i : i + TAKE_MAX], time.time_ns() // 1_000_000)
    sent_on = list(out.events)
    for i in range(0, len(sent_on), TAKE_MAX):
        handler.handle_batch(sent_on[i : i + TAKE_MAX], time.time_ns() // 1_000_000)
    per_message = (time.perf_counter() - started) / len(messages) * 1e6
    return per_message, len(sent_on), out.others


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS / "openlineage-path.json")
    args = p.parse_args()
    stream = make_stream(args.seed)
    parts = [0] * PARTITIONS
    messages = []
    for key, value in stream.messages:
        partition = zlib.crc32(key) % PARTITIONS  # where the transport's key puts it
        messages.append(Message("openlineage", partition, parts[partition], key, value, time.time()))
        parts[partition] += 1
    ways = ("sent_on", "in_place")
    times: dict[str, list[float]] = {way: [] for way in ways}
    counts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as datadir:
        for _ in range(args.rounds):
            for way in ways:
                per_message, sent, others = one_round(messages, way, datadir)
                times[way].append(round(per_message, 1))
                counts[way] = {"sent_on": sent, "other_outputs": others}
    p50 = {way: median(times[way]) for way in ways}
    result = {
        "benchmark": "openlineage_path",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "messages": len(messages),
        "mean_message_bytes": round(sum(len(m.value or b"") for m in messages) / len(messages)),
        "us_per_message": times,
        "us_per_message_p50": p50,
        "in_place_over_sent_on": round(p50["in_place"] / p50["sent_on"], 3),
        "outputs": counts,
        "notes": (
            "in process, no Kafka and no faust: the real EventHandler and ChangelogWriter (the worker's store "
            "forms) over benchmarks/peers.py's stream; sent_on = map + Avro encode + publish to the events topic, "
            "then the lineage agent's handle_batch over those messages (Avro decode, dedup, merge, outputs); "
            "in_place = map, dedup, merge, outputs. Both publish the same run records, edges and changelog "
            "records (other_outputs)"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("us_per_message_p50", "in_place_over_sent_on", "outputs")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
