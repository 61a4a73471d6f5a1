"""`upriver lineage|health|alerts|drift-impact`: ask the read side, through the running stack's API or
ClickHouse directly."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from upriver.settings import Settings


class CliError(Exception):
    """A query the user can fix (unknown node, bad argument): printed to stderr, exit code 1."""


def _query_api(api_url: str, path: str, query: str, token: str = "") -> Any:
    request = urllib.request.Request(f"{api_url}{path}?{query}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            data = resp.read()
            if resp.headers.get_content_type() == "application/json":
                return json.loads(data)
            return data.decode()
    except urllib.error.HTTPError as exc:
        raise CliError(json.loads(exc.read()).get("error", str(exc))) from exc


def _read_side(settings: Settings, path: str, params: dict[str, Any]) -> Any:
    """One read-side query: through the running stack's API when it owns the embedded database, else
    against ClickHouse directly. Both run `upriver.http.routes.handle`, so the answers are the same."""
    from upriver.http.api import ApiError, TextBody
    from upriver.http.routes import handle
    from upriver.local.stack import read_state

    query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
    state = read_state(settings.home)
    if state is not None and state.get("api_url") and settings.clickhouse_url.startswith("chdb://"):
        return _query_api(state["api_url"], path, query, settings.api_token)
    from upriver.deploy.components import open_storage

    reader = open_storage(settings, migrate=False).reader()
    try:
        body = handle(reader, path, query)
    except ApiError as exc:
        raise CliError(str(exc)) from exc
    return body.text if isinstance(body, TextBody) else body


def _node_arg(args: argparse.Namespace) -> str:
    if getattr(args, "column", None):
        table, _, column = args.column.rpartition(".")
        if not table or not column:
            raise CliError(f"--column wants TABLE.COLUMN (a node id or name, a dot, a column), got {args.column!r}")
        return f"{table}#{column}"
    if not args.node:
        raise CliError("give a node (kind:namespace/name or a unique name), or --column TABLE.COLUMN")
    node: str = args.node
    return node


def _reporting_cli_errors(
    run: Callable[[Settings, argparse.Namespace], int],
) -> Callable[[Settings, argparse.Namespace], int]:
    """A command whose CliError (a query the user can fix) is printed to stderr with exit code 1."""

    def command(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return run(settings, args)
        except CliError as exc:
            print(str(exc), file=sys.stderr)
            return 1

    return command


def _walk(settings: Settings, args: argparse.Namespace, common: dict[str, Any]) -> int:
    from upriver.readside.lineage import LineageGraph, render_tree

    params = {"node": _node_arg(args), "depth": args.depth, "kind": args.kind, **common}
    if args.via_jobs:
        params["via_jobs"] = "true"
    body = _read_side(settings, f"/api/v1/{args.action}", params)
    if args.json:
        print(json.dumps(body, indent=2))
    elif args.kind:
        for n in body["nodes"]:
            print(f"{n['level']:>3}  {n['id']}")
    else:
        print(render_tree(LineageGraph.from_json(body)))
    return 0


def _impact(settings: Settings, args: argparse.Namespace, common: dict[str, Any]) -> int:
    fmt = "csv" if args.csv else "json"
    body = _read_side(
        settings,
        "/api/v1/impact",
        {"node": _node_arg(args), "depth": args.depth, "max_nodes": args.max_nodes, "format": fmt, **common},
    )
    if args.csv or args.json:
        print(body if args.csv else json.dumps(body, indent=2), end="" if args.csv else "\n")
        return 0
    print(f"impact of {body['root']}: {body['total']} node(s)" + (" (partial)" if body["partial"] else ""))
    for kind, nodes in body["by_kind"].items():
        print(f"  {kind} ({len(nodes)}):")
        for n in nodes[:50]:
            print(f"    {n}")
        if len(nodes) > 50:
            print(f"    ... {len(nodes) - 50} more (use --csv or --json for all)")
    return 0


def _path(settings: Settings, args: argparse.Namespace, common: dict[str, Any]) -> int:
    if not args.to:
        raise CliError("path needs two nodes: upriver lineage path FROM TO")
    body = _read_side(settings, "/api/v1/path", {"from": _node_arg(args), "to": args.to, **common})
    if args.json:
        print(json.dumps(body, indent=2))
    elif not body["found"]:
        print(f"no path between {body['from']} and {body['to']}")
        return 1
    else:
        for e in body["edges"]:
            print(f"{e['src']} -[{e['edge_type']}]-> {e['dst']}")
    return 0


def _provenance(settings: Settings, args: argparse.Namespace, common: dict[str, Any]) -> int:
    body = _read_side(settings, "/api/v1/provenance", {"node": _node_arg(args), "version": args.version, **common})
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    print(
        f"{body['node']}@{body['version']} was written by run {body['run_id']} of {body['job']} "
        f"({body['job_kind']}, {body['status']}), which read:"
    )
    for i in body["inputs"]:
        print(f"  {i['id']}" + (f"@{i['version']}" if i["version"] else ""))
    return 0


def _node(settings: Settings, args: argparse.Namespace, common: dict[str, Any]) -> int:
    print(json.dumps(_read_side(settings, "/api/v1/node", {"node": _node_arg(args)}), indent=2))
    return 0


def _search(settings: Settings, args: argparse.Namespace, common: dict[str, Any]) -> int:
    for n in _read_side(settings, "/api/v1/search", {"q": _node_arg(args)})["nodes"]:
        print(n)
    return 0


LINEAGE_ACTIONS: dict[str, Callable[[Settings, argparse.Namespace, dict[str, Any]], int]] = {
    "upstream": _walk,
    "downstream": _walk,
    "impact": _impact,
    "path": _path,
    "provenance": _provenance,
    "node": _node,
    "search": _search,
}


@_reporting_cli_errors
def cmd_lineage(settings: Settings, args: argparse.Namespace) -> int:
    return LINEAGE_ACTIONS[args.action](settings, args, {"as_of": args.as_of})


def _when(ms: int | None) -> str:
    from datetime import UTC, datetime

    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@_reporting_cli_errors
def cmd_health(settings: Settings, args: argparse.Namespace) -> int:
    """`upriver health`, `upriver alerts`, `upriver drift-impact NODE` (docs/health.md)."""
    if args.command == "health":
        body = _read_side(settings, "/api/v1/health", {"namespace": args.namespace, "as_of": args.as_of})
        if args.json:
            print(json.dumps(body, indent=2))
            return 0
        cols = ("artifacts", "fresh", "late", "stale", "never_seen", "unknown", "coverage_ratio", "open_alerts")
        print(f"{'namespace':<28} " + " ".join(f"{c:>10}" for c in cols) + "  as of")
        for ns in body["namespaces"]:
            cells = " ".join(f"{ns.get(c, 0):>10.2f}" if c == "coverage_ratio" else f"{int(ns.get(c, 0)):>10}"
                             for c in cols)  # fmt: skip
            print(f"{ns['namespace']:<28} {cells}  {_when(ns['measured_at'])}")
        return 0
    if args.command == "alerts":
        params = {"open": "true" if args.open else "", "kind": args.kind, "namespace": args.namespace,
                  "as_of": args.as_of}  # fmt: skip
        alerts = _read_side(settings, "/api/v1/alerts", params)["alerts"]
        if args.json:
            print(json.dumps(alerts, indent=2))
            return 0
        for a in alerts:
            resolved = "" if a["resolved_at"] is None else f" -> resolved {_when(a['resolved_at'])}"
            print(f"{a['status']:<8} {a['severity']:<8} {a['kind']:<18} {a['subject']}  "
                  f"opened {_when(a['opened_at'])}{resolved}: {a['reason']}")  # fmt: skip
        print(f"{len(alerts)} alert(s)", file=sys.stderr)
        return 0
    body = _read_side(settings, "/api/v1/drift-impact", {"node": args.node, "as_of": args.as_of})
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    if not body["signals"]:
        print(f"no drift or quality signal on {body['node']}")
    for s in body["signals"]:
        print(f"{s['signal_type']} on {body['node']} at {_when(s['signal_time'])} ({s['signal_id']})")
        for link in s["affects"]:
            print(f"  affects {link['target']}@{link['version'] or '-'}  via {' -> '.join(link['path'])}")
        for link in s["root_causes"]:
            print(f"  #{link['rank']} cause? {link['why'].lower()} on {link['target']}  ({link['distance']} hops)")
    return 0


def add_commands(sub: Any) -> None:
    """Register this module's commands on the `upriver` parser's subparsers."""
    lin = sub.add_parser(
        "lineage",
        help="query lineage: upstream, downstream, impact, path, provenance, node, search",
        description="Every query reads the graph as valid now, or at --as-of TIME (ISO 8601 or epoch ms).",
    )
    lin.add_argument("action", choices=tuple(LINEAGE_ACTIONS))
    lin.add_argument("node", nargs="?", help="node id kind:namespace/name (or a unique name); search: text")
    lin.add_argument("to", nargs="?", help="path: the other node")
    lin.add_argument("--depth", type=int, default=10)
    lin.add_argument("--as-of", default=None, help="time travel: the graph as valid at this time")
    lin.add_argument("--kind", action="append", help="upstream/downstream: list only nodes of these kinds")
    lin.add_argument("--column", help="upstream/downstream: walk column lineage from TABLE.COLUMN")
    lin.add_argument("--via-jobs", action="store_true", help="upstream/downstream: show the jobs between artifacts")
    lin.add_argument("--max-nodes", type=int, default=10_000, help="impact: stop after this many nodes")
    lin.add_argument("--version", help="provenance: the version to explain (default: the current one)")
    lin.add_argument("--csv", action="store_true", help="impact: CSV export")
    lin.add_argument("--json", action="store_true")
    lin.set_defaults(fn=cmd_lineage)
    health = sub.add_parser("health", help="lineage health per namespace: freshness, coverage, open alerts")
    health.add_argument("--namespace", help="only this namespace")
    health.add_argument("--as-of", default=None, help="as things stood at this time (ISO 8601 or epoch ms)")
    health.add_argument("--json", action="store_true")
    health.set_defaults(fn=cmd_health)
    alerts = sub.add_parser("alerts", help="lineage health alerts (stale, orphaned, incomplete, drift impact)")
    alerts.add_argument("--open", action="store_true", help="only open alerts")
    alerts.add_argument("--kind", help="only this kind, e.g. STALE")
    alerts.add_argument("--namespace", help="only this namespace")
    alerts.add_argument("--as-of", default=None, help="as things stood at this time (ISO 8601 or epoch ms)")
    alerts.add_argument("--json", action="store_true")
    alerts.set_defaults(fn=cmd_health)
    drift = sub.add_parser("drift-impact", help="models and deployments a node's drift reaches; root causes")
    drift.add_argument("node", help="node id kind:namespace/name (or a unique name)")
    drift.add_argument("--as-of", default=None, help="as things stood at this time (ISO 8601 or epoch ms)")
    drift.add_argument("--json", action="store_true")
    drift.set_defaults(fn=cmd_health)
