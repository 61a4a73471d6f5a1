"""A/B of how a walk level is judged, in one process on one graph: small levels' stored rows judged in
Python (the default, `queries.RAW_LEVEL_ROWS`) against every level judged by ClickHouse (`raw_rows=0`).

Builds the simulator's graph as `benchmarks/graph.py` does (1M edges by default), samples its nodes the same
way, times where a one-node level's time goes (`level_costs`: the judging query, its planning alone, the
plain read, SELECT 1), then times graph.py's one-hop, upstream depth 10, impact depth 10 and path walks with
each reader, alternating A and B for `--rounds` rounds so the box's drift falls on both; checks that both
readers give the same answers. Writes benchmarks/results/experiments/level-ab.json (or --out).

With `--peers`, the graph is instead `benchmarks/peers.py`'s OpenLineage stream (mapped as the worker maps
it, loaded without Kafka) and the walks are its 18 lineage cells, each answer checked against the stream's
truth; no REST API in between (peers.json's cells go through it). Writes level-ab-peers.json.

    python -m benchmarks.level_ab [--edges 1000000 --rounds 3] [--peers]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import peers
from benchmarks.e2e import machine
from benchmarks.graph import ROOT, _walks, build, samples
from schemas import identity, openlineage
from sinks.clickhouse import connect
from sinks.migrations import apply_migrations
from sinks.writer import ClickHouseWriter
from upriver.local.bulk import load_stream
from upriver.readside.lineage import LineageReader
from upriver.readside.queries import RAW_LEVEL_ROWS, ClickHouseLineage

OUT = ROOT / "benchmarks" / "results" / "experiments" / "level-ab.json"
OUT_PEERS = OUT.with_name("level-ab-peers.json")
FIGURES = ("one_hop", "upstream_depth10", "impact_depth10", "path")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--edges", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", type=Path, default=ROOT / ".cache" / "bench-level-ab")
    p.add_argument("--peers", action="store_true", help="the peers benchmark's OpenLineage stream and cells")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.peers:
        return _peers(args)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    client = connect(f"chdb://{args.workdir}")
    db = "level_ab"
    print(f"building a {args.edges:,}-edge graph ...", file=sys.stderr, flush=True)
    build(client, db, args.edges, args.seed)
    sinks_, any_nodes, sources = samples(client, db)
    costs = level_costs(client, db, any_nodes)
    readers = {"python": LineageReader(client, db), "clickhouse": LineageReader(client, db, raw_rows=0)}
    for n in sinks_:
        assert readers["python"].upstream(n, 10) == readers["clickhouse"].upstream(n, 10), n
    for n in sources:
        a, b = (r.impact(n, 10, max_nodes=10_000) for r in readers.values())
        assert (a.levels, a.partial) == (b.levels, b.partial), n
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in readers}
    pairs = None
    for i in range(args.rounds):
        for name, reader in readers.items():
            out, pairs = _walks(reader, any_nodes, sinks_, sources, None, pairs=pairs, rng=random.Random(args.seed))
            rounds[name].append(out)
            print(i, name, {k: (out[k]["p50_ms"], out[k]["p95_ms"]) for k in FIGURES}, file=sys.stderr, flush=True)
    medians = {
        name: {f: {q: statistics.median(r[f][q] for r in rs) for q in ("p50_ms", "p95_ms")} for f in FIGURES}
        for name, rs in rounds.items()
    }
    ratio = {
        f: {q: round(medians["python"][f][q] / medians["clickhouse"][f][q], 2) for q in ("p50_ms", "p95_ms")}
        for f in FIGURES
    }
    doc = {
        "benchmark": "level_ab",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "edges": args.edges,
        "raw_level_rows": RAW_LEVEL_ROWS,
        "answers_equal": {"upstream_depth10": len(sinks_), "impact_depth10": len(sources)},
        "level_costs_p50_ms": costs,
        "median_of_rounds": medians,
        "python_over_clickhouse": ratio,
        "rounds": rounds,
    }
    _write(args.out or OUT, doc)
    print(json.dumps({"median_of_rounds": medians, "python_over_clickhouse": ratio}, indent=1), file=sys.stderr)
    return 0


def level_costs(client: Any, db: str, nodes: list[str]) -> dict[str, float]:
    """Where a one-node level's time goes (p50 over `nodes`, ms): the judging query, ClickHouse's planning of
    it alone (EXPLAIN PIPELINE), the plain read of the rows `valid_rows` judges, and a bare SELECT 1."""
    port = ClickHouseLineage(client, db)
    judged = port._valid_sql("dst IN {f:Array(String)}", None)
    plain = (
        "SELECT src, dst, edge_type, run_id, job, toUnixTimestamp64Milli(valid_from), run_status, revision, append"
        f" FROM `{db}`.edges WHERE dst IN {{f:Array(String)}}"
    )
    queries = {"judged": judged, "judged_planning_only": f"EXPLAIN PIPELINE {judged}", "plain_read": plain}
    out: dict[str, float] = {}
    for name, sql in {**queries, "select_1": "SELECT 1"}.items():
        times = []
        for n in nodes:
            started = time.perf_counter()
            client.query(sql, parameters=None if name == "select_1" else {"f": [n]})
            times.append((time.perf_counter() - started) * 1000)
        out[name] = round(statistics.median(times), 2)
    return out


def _write(out: Path, doc: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


def _peers(args: argparse.Namespace) -> int:
    client = connect(f"chdb://{args.workdir}")
    db = "level_ab_peers"
    client.command(f"DROP DATABASE IF EXISTS `{db}`")
    apply_migrations(client, db)
    stream = peers.make_stream(peers.DEFAULT_SEED)
    records = (openlineage.to_record(openlineage.decode(value)) for _, value in stream.messages)
    load_stream(ClickHouseWriter(client, db), records, derived_at=int(time.time() * 1000))
    down = stream.edges()
    readers = {"python": LineageReader(client, db), "clickhouse": LineageReader(client, db, raw_rows=0)}

    def answer_of(reader: LineageReader) -> peers.Answer:
        def answer(start: peers.Key, direction: str, depth: int) -> tuple[float, int, set[peers.Key]]:
            walk = reader.upstream if direction == "upstream" else reader.downstream
            started = time.perf_counter()
            graph = walk(identity.node_id("DATASET", *start), depth)
            took = time.perf_counter() - started
            return took, 200, peers.datasets_of(graph.nodes, start)

        return answer

    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in readers}
    for i in range(args.rounds):
        for name, reader in readers.items():
            got = peers.queries(stream, down, answer_of(reader))
            if got["exact"] != got["answers"]:
                raise SystemExit(f"{name}: {got['exact']}/{got['answers']} exact: {got['mismatches']}")
            rounds[name].append(got["cells"])
            print(i, name, {k: v["p50_ms"] for k, v in got["cells"].items()}, file=sys.stderr, flush=True)
    cells = list(rounds["python"][0])
    medians = {
        name: {c: {q: statistics.median(r[c][q] for r in rs) for q in ("p50_ms", "p95_ms")} for c in cells}
        for name, rs in rounds.items()
    }
    ratio = {c: round(medians["python"][c]["p50_ms"] / medians["clickhouse"][c]["p50_ms"], 2) for c in cells}
    doc = {
        "benchmark": "level_ab --peers",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "stream": {"messages": len(stream.messages), "seed": peers.DEFAULT_SEED},
        "raw_level_rows": RAW_LEVEL_ROWS,
        "exact": "every answer of every round equal to the stream's truth, both readers",
        "median_of_rounds": medians,
        "python_over_clickhouse_p50": ratio,
        "rounds": rounds,
    }
    _write(args.out or OUT_PEERS, doc)
    print(json.dumps(ratio, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
