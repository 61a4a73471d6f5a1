"""Graph query benchmark: build 1M- and 10M-edge lineage graphs from the simulator, then time the read side.

Graphs are built without Kafka: the simulator's events go through the processor's own run merge and edge
derivation (`upriver.local.bulk.load_stream`) into a fresh embedded ClickHouse (chDB) database. Then, with
the same `LineageReader` the CLI and API use, it times (p50/p95 over samples):
1-hop upstream, upstream depth 10, downstream impact depth 10 (<= 10k nodes), hub blast radius (count +
first 1,000) and path; plus storage bytes per edge and the process's peak RSS.

Big answers: `answer_sizes` walks the impact (depth 10, up to 10,001 nodes, untimed) of 300 nodes in
cityHash order, every kind but the leaves of the RAG fan-out (CHUNK, DOCUMENT, EMBEDDING), and counts
them by size. The nodes whose answers are complete and between 1,000 and 10,000 nodes are timed as
`impact_1k_10k`; the nodes whose answers go past 10,000 are timed with the answer cut at 1,000 and at
10,000 nodes (`impact_capped`: each answer is exactly that many nodes, `partial`).
As of: the same one-hop, upstream, impact and path samples at the median `valid_from` of the edges, with
their ratio to the current-graph figures (`as_of`).

    python -m benchmarks.graph --edges 1000000 10000000     # or: make bench-graph
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from producers.simulator import Simulator
from schemas.codec import SingleObjectCodec
from sinks.clickhouse import connect
from sinks.migrations import apply_migrations
from sinks.writer import ClickHouseWriter
from upriver.local.bulk import BulkStats, load_stream
from upriver.readside.lineage import LineageReader
from upriver.readside.model import Impact

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "graph.json"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timed(samples: list[Any], fn: Callable[[Any], Any]) -> tuple[dict[str, Any], list[Any]]:
    times: list[float] = []
    results: list[Any] = []
    for s in samples:
        started = time.perf_counter()
        results.append(fn(s))
        times.append((time.perf_counter() - started) * 1000)
    return {
        "samples": len(times),
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(_pct(times, 0.95), 2),
        "max_ms": round(max(times), 2),
    }, results


def _events(target_edges: int, seed: int) -> tuple[Iterator[dict[str, Any]], Simulator]:
    codec = SingleObjectCodec("lineage_event")
    sim = Simulator(
        codec, seed=seed, duplicate_rate=0.0, malformed_rate=0.0, record_truth=False,
        **Simulator.knobs_for_edges(target_edges),
    )  # fmt: skip

    def gen() -> Iterator[dict[str, Any]]:
        while sim.truth.edge_rows_emitted < target_edges:
            for m in sim.messages(10_000):
                if m.event is not None:
                    yield m.event.to_record()

    return gen(), sim


def _sample(client: Any, db: str, where: str, n: int) -> list[str]:
    sql = f"SELECT node_id FROM `{db}`.nodes WHERE {where} GROUP BY node_id ORDER BY cityHash64(node_id) LIMIT {n}"
    return [str(r[0]) for r in client.query(sql).result_rows]


def build(client: Any, db: str, target_edges: int, seed: int) -> tuple[BulkStats, float]:
    """A fresh database `db` holding the simulator's graph of about `target_edges` edges, merged; the load's
    stats and its seconds."""
    client.command(f"DROP DATABASE IF EXISTS `{db}`")
    apply_migrations(client, db)
    events, _ = _events(target_edges, seed)
    started = time.perf_counter()
    stats = load_stream(ClickHouseWriter(client, db), events, derived_at=int(time.time() * 1000))
    build_s = time.perf_counter() - started
    client.command(f"OPTIMIZE TABLE `{db}`.edges FINAL")
    client.command(f"OPTIMIZE TABLE `{db}`.nodes FINAL")
    return stats, build_s


def samples(client: Any, db: str) -> tuple[list[str], list[str], list[str]]:
    """The walks' start nodes: 60 sinks (deployments, predictions, models), 200 of any kind, 60 sources."""
    not_col = "position(node_id, '#') = 0"
    sinks_ = _sample(client, db, f"{not_col} AND kind IN ('DEPLOYMENT', 'PREDICTION', 'MODEL')", 60)
    any_nodes = _sample(client, db, not_col, 200)
    sources = _sample(client, db, f"{not_col} AND kind IN ('DATASET', 'DOCUMENT', 'FEATURE', 'FEATURE_VIEW')", 60)
    return sinks_, any_nodes, sources


def bench(target_edges: int, workdir: Path, seed: int) -> dict[str, Any]:
    db = f"graph_{target_edges}"
    client = connect(f"chdb://{workdir}")
    stats, build_s = build(client, db, target_edges, seed)
    edge_rows = int(client.query(f"SELECT count() FROM `{db}`.edges").result_rows[0][0])
    node_count = int(client.query(f"SELECT uniqExact(node_id) FROM `{db}`.nodes").result_rows[0][0])
    sizes = {
        str(t): int(b)
        for t, b in client.query(
            "SELECT table, sum(bytes_on_disk) FROM system.parts WHERE database = {d:String} AND active GROUP BY table",
            parameters={"d": db},
        ).result_rows
    }
    reader = LineageReader(client, db)
    rng = random.Random(seed)
    sinks_, any_nodes, sources = samples(client, db)
    out: dict[str, Any] = {
        "target_edges": target_edges,
        "edge_rows": edge_rows,
        "nodes": node_count,
        "events": stats.events,
        "runs": stats.runs,
        "build_s": round(build_s, 1),
        "bytes": sizes,
        "edge_bytes_per_edge": round(sizes.get("edges", 0) / max(edge_rows, 1), 1),
        "all_bytes_per_edge": round(sum(sizes.values()) / max(edge_rows, 1), 1),
    }
    walks, pairs = _walks(reader, any_nodes, sinks_, sources, None, rng=rng)
    out.update(walks)
    hubs = [str(r[0]) for r in client.query(
        f"SELECT src, count() AS c FROM `{db}`.edges WHERE position(src, '#') = 0 GROUP BY src ORDER BY c DESC LIMIT 3"
    ).result_rows]  # fmt: skip

    def blast(n: str) -> tuple[int, list[str]]:
        impact = reader.impact(n, depth=10, max_nodes=50_000_000)
        return len(impact.levels) - 1, sorted(impact.levels)[:1000]

    out["hub_blast_radius"], blasts = _timed(hubs, blast)
    out["hub_blast_radius"]["hubs"] = {h: c for h, (c, _) in zip(hubs, blasts, strict=True)}
    out.update(_big_answers(client, db, reader))
    # As of the median valid_from of the edges: the same samples (and path pairs), their p95 against now's.
    sql = f"SELECT toUnixTimestamp64Milli(quantileExact(0.5)(valid_from)) FROM `{db}`.edges"
    at = int(client.query(sql).result_rows[0][0])
    then, _ = _walks(reader, any_nodes, sinks_, sources, at, pairs=pairs)
    then["p95_ratio_to_current"] = {k: round(then[k]["p95_ms"] / max(walks[k]["p95_ms"], 1e-9), 2) for k in walks}
    out["as_of"] = {"as_of_ms": at, **then}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _size_bucket(n: int) -> str:
    for bound, name in ((1, "0"), (10, "1-9"), (100, "10-99"), (1_000, "100-999"), (10_001, "1000-10000")):
        if n < bound:
            return name
    return "over 10000"


def _big_answers(client: Any, db: str, reader: LineageReader) -> dict[str, Any]:
    """Impact answers of 1,000-10,000 nodes: how many the graph has (a sample of 300 non-leaf nodes), and
    their timings; and the timings of bigger answers cut at 1,000 and 10,000 nodes (module doc)."""
    not_leaf = "position(node_id, '#') = 0 AND kind NOT IN ('CHUNK', 'DOCUMENT', 'EMBEDDING')"
    candidates = _sample(client, db, not_leaf, 300)
    sizes = {node: len(reader.impact(node, depth=10, max_nodes=10_001).levels) - 1 for node in candidates}
    buckets = Counter(_size_bucket(n) for n in sizes.values())
    out: dict[str, Any] = {"answer_sizes": {"sampled": len(candidates), "by_size": dict(sorted(buckets.items()))}}
    in_range = [node for node, n in sizes.items() if 1_000 <= n <= 10_000]
    if in_range:
        out["impact_1k_10k"], imps = _timed(in_range, lambda n: reader.impact(n, depth=10, max_nodes=10_000))
        out["impact_1k_10k"]["median_nodes"] = statistics.median(len(i.levels) - 1 for i in imps)
    bigger = [node for node, n in sizes.items() if n > 10_000]
    if bigger:
        capped: dict[str, Any] = {}
        for cap in (1_000, 10_000):

            def cut(n: str, c: int = cap) -> Impact:
                return reader.impact(n, depth=10, max_nodes=c)

            capped[str(cap)], imps = _timed(bigger, cut)
            capped[str(cap)]["median_nodes"] = statistics.median(len(i.levels) - 1 for i in imps)
            capped[str(cap)]["partial"] = sum(1 for i in imps if i.partial)
        out["impact_capped"] = capped
    return out


def _walks(
    reader: LineageReader, any_nodes: list[str], sinks_: list[str], sources: list[str], as_of: int | None,
    *, pairs: list[tuple[str, str]] | None = None, rng: random.Random | None = None,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:  # fmt: skip
    """One-hop, upstream depth 10, impact depth 10 and path timings as valid at `as_of` (None: now). The
    path pairs are `pairs`, or (with `rng`) a far node of each of the first 30 upstream answers and its root."""
    out: dict[str, Any] = {}
    out["one_hop"], _ = _timed(any_nodes, lambda n: reader.upstream(n, depth=1, as_of=as_of))
    out["upstream_depth10"], ups = _timed(sinks_, lambda n: reader.upstream(n, depth=10, as_of=as_of))
    out["upstream_depth10"]["median_nodes"] = statistics.median(len(g.nodes) for g in ups)
    out["impact_depth10"], imps = _timed(sources, lambda n: reader.impact(n, depth=10, as_of=as_of, max_nodes=10_000))
    out["impact_depth10"]["median_nodes"] = statistics.median(len(i.levels) for i in imps)
    out["impact_depth10"]["partial"] = sum(1 for i in imps if i.partial)
    if pairs is None:
        if rng is None:
            raise ValueError("path pairs need either pairs or rng")
        pairs = []
        for g in ups[:30]:
            far = [n for n, lvl in g.nodes.items() if lvl >= 2]
            if far:
                pairs.append((rng.choice(sorted(far)), g.root))
    out["path"], found = _timed(pairs, lambda p: reader.path(p[0], p[1], as_of=as_of))
    out["path"]["found"] = sum(1 for f in found if f)
    return out, pairs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--edges", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", type=Path, default=ROOT / ".cache" / "bench-graph")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    results = []
    for target in sorted(args.edges):
        print(f"building a {target:,}-edge graph ...", file=sys.stderr, flush=True)
        r = bench(target, args.workdir, args.seed)
        print(json.dumps(r, indent=2), file=sys.stderr, flush=True)
        results.append(r)
    doc = {
        "benchmark": "graph",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]},
        "targets_ms": {"one_hop_p95": 5, "impact_p95_10M": 100, "hub_p95": 500},
        "note": "one process: simulator + derivation + chDB + queries; peak RSS covers the build too",
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
