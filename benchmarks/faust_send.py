"""Micro-benchmark behind the processor's design: what faust alone costs here, per mode.

Modes, each a fresh faust worker over the same N pre-produced 300-byte messages on a local broker:
`consume` (iterate events, no work), `send` (one awaited faust send per event), `take`
(take_events batches of 1,000, no work). Writes benchmarks/results/faust_send.json (medians).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import os, sys, time, faust
mode, bootstrap, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
app = faust.App(f"fb-{mode}-{os.getpid()}", broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
                topic_partitions=4, consumer_auto_offset_reset="earliest")
src = app.topic("fb.in", value_type=bytes, value_serializer="raw", key_serializer="raw", partitions=4)
dst = app.topic("fb.out", value_type=bytes, value_serializer="raw", key_serializer="raw", partitions=4)
state = {"n": 0, "t0": 0.0}
def done():
    open(out, "w").write(str(n / (time.time() - state["t0"])))
    os._exit(0)
@app.agent(src)
async def run(stream):
    if mode == "take":
        async for batch in stream.take_events(1000, within=0.05):
            state["t0"] = state["t0"] or time.time()
            state["n"] += len(batch)
            if state["n"] >= n: done()
    async for ev in stream.events():
        state["t0"] = state["t0"] or time.time()
        if mode == "send":
            await dst.send(key=ev.message.key, value=ev.value)
        state["n"] += 1
        if state["n"] >= n: done()
faust.Worker(app, loglevel="ERROR", quiet=True).execute_from_commandline()
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS / "faust_send.json")
    args = p.parse_args()

    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    from upriver.local.broker import LocalBroker, ensure_jars

    cache = Path(os.environ.get("UPRIVER_CACHE_DIR", ROOT / ".cache"))
    ensure_jars(cache)
    rates: dict[str, list[float]] = {"consume": [], "send": [], "take": []}
    with tempfile.TemporaryDirectory(prefix="upriver-fb-") as tmp, LocalBroker(Path(tmp) / "kafka", cache) as broker:
        bootstrap = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic("fb.in", 4, 1), NewTopic("fb.out", 4, 1)]).values():
            future.result(30)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
        for i in range(args.events):
            producer.produce("fb.in", key=str(i % 500).encode(), value=b"x" * 300)
            if i % 10_000 == 0:
                producer.poll(0)
        producer.flush(60)
        script = Path(tmp) / "worker.py"
        script.write_text(WORKER)
        for _ in range(args.repeat):
            for mode in rates:
                out = Path(tmp) / f"{mode}.rate"
                subprocess.run(
                    [sys.executable, str(script), mode, bootstrap, str(args.events), str(out)],
                    timeout=300, check=False, capture_output=True,
                )  # fmt: skip
                rates[mode].append(float(out.read_text()))
                out.unlink()
    figures = {
        "benchmark": "faust_send",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "events": args.events,
        "runs": args.repeat,
        "events_per_s_median": {m: round(median(r), 1) for m, r in rates.items()},
        "events_per_s_all": rates,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures["events_per_s_median"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
