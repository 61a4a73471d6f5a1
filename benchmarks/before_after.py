"""Headline medians of two sets of benchmark results side by side (a change's before and after).

Each set is a directory holding what `benchmarks/e2e.py`, `openlineage_http.py`, `graph.py` and the health
engine figure wrote (any may be missing). Writes benchmarks/results/<name>.json with, per figure, before,
after and after/before. Used for the restructure of issue 12:

    python -m benchmarks.before_after --before DIR [DIR ...] --after DIR [DIR ...] --name restructure

Several directories per side are several trials (each file already a median of its runs): each figure
is reported as the median over the trials, with every trial's value.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.e2e import RESULTS, machine

Extract = Callable[[dict[str, Any]], dict[str, float]]


def _e2e(d: dict[str, Any]) -> dict[str, float]:
    return {
        "e2e_events_per_s": d["events_per_s"],
        "e2e_latency_p50_ms": d["latency_ms"]["p50"],
        **{f"paced_latency_{k}_ms": v for k, v in d.get("paced", {}).get("latency_ms", {}).items()},
    }


def _openlineage(d: dict[str, Any]) -> dict[str, float]:
    return {f"http_{name}_events_per_s": level["events_per_s"] for name, level in d["levels"].items()}


def _graph(d: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for run in d["runs"]:
        edges = run["target_edges"]
        for query in ("one_hop", "upstream_depth10", "impact_depth10", "hub_blast_radius", "path"):
            if isinstance(run.get(query), dict) and "p50_ms" in run[query]:
                out[f"graph_{edges}_{query}_p50_ms"] = run[query]["p50_ms"]
    return out


def _health_engine(d: dict[str, Any]) -> dict[str, float]:
    return {"health_engine_runs_per_s": d["runs_per_s"], "health_timer_pass_s": d["timer_pass_s"]["median"]}


FILES: dict[str, Extract] = {
    "e2e.json": _e2e,
    "openlineage.json": _openlineage,
    "graph.json": _graph,
    "health_engine.json": _health_engine,
}


def figures(directory: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, extract in FILES.items():
        path = directory / name
        if path.exists():
            out.update(extract(json.loads(path.read_text())))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--before", type=Path, nargs="+", required=True)
    p.add_argument("--after", type=Path, nargs="+", required=True)
    p.add_argument("--name", default="before_after")
    p.add_argument("--note", default="")
    args = p.parse_args()
    before = [figures(d) for d in args.before]
    after = [figures(d) for d in args.after]
    names = set.intersection(*(set(f) for f in before + after))
    rows = {}
    for k in sorted(names):
        b, a = round(median(f[k] for f in before), 3), round(median(f[k] for f in after), 3)
        rows[k] = {
            "before": b,
            "after": a,
            "ratio": round(a / b, 3) if b else None,
            "before_trials": [f[k] for f in before],
            "after_trials": [f[k] for f in after],
        }
    out = {
        "benchmark": args.name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "note": args.note,
        "figures": rows,
    }
    path = RESULTS / f"{args.name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
