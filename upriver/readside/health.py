"""Read side of lineage health (docs/health.md): namespace health, alerts, drift impact. Same SQL on chDB
and a ClickHouse server; JSON-able dicts out (the API and the CLI print them). The figure names come from
the health processor's declaration (processors/health/figures.py, from the alert kinds' categories)."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client

from processors.health.figures import METRICS  # every figure a timer pass publishes; absent from one means zero

ALERT_COLUMNS = ("alert_id", "kind", "category", "subject", "namespace", "severity", "status", "reason", "path")


class HealthReader:
    """Queries over the `health`, `alerts` and `drift_links` tables of one database."""

    def __init__(self, client: Client, database: str) -> None:
        self._client = client
        self._db = quote_identifier(database)

    def health(self, namespace: str | None = None, as_of: int | None = None) -> dict[str, Any]:
        """The figures per namespace (artifacts, fresh/late/stale/never_seen/unknown, coverage_ratio, open
        alerts by category, running_runs) of the health processor's last timer pass (at or before `as_of`)."""
        bound = "WHERE toUnixTimestamp64Milli(measured_at) <= {as_of:Int64}" if as_of is not None else ""
        params: dict[str, Any] = {"ns": namespace or "", "as_of": as_of or 0}
        # the rows of the latest timer pass (every namespace of a pass shares its measured_at): a metric or
        # a namespace missing from it (no stale artifact, no running run any more) reads as zero, not as
        # its last value
        latest, seen = self._client.query(
            "SELECT toUnixTimestamp64Milli(max(measured_at)), countIf(namespace = {ns:String})"
            f" FROM {self._db}.health {bound}",
            parameters=params,
        ).result_rows[0]
        sql = (
            f"SELECT namespace, metric, value FROM {self._db}.health WHERE measured_at = fromUnixTimestamp64Milli("
            "{latest:Int64}, 'UTC')"
            + (" AND namespace = {ns:String}" if namespace else "")
            + " ORDER BY namespace, metric"
        )
        out: dict[str, dict[str, Any]] = {}
        for ns, metric, value in self._client.query(sql, parameters={**params, "latest": latest}).result_rows:
            entry = out.setdefault(
                str(ns), {"namespace": str(ns), "measured_at": int(latest), **dict.fromkeys(METRICS, 0.0)}
            )
            entry[str(metric)] = float(value)
        if namespace and not out:
            if not seen:
                raise LookupError(f"no health figures for namespace {namespace!r} (yet)")
            out[namespace] = {"namespace": namespace, "measured_at": int(latest), **dict.fromkeys(METRICS, 0.0)}
        return {"namespaces": list(out.values())}

    def alerts(
        self,
        open_only: bool = False,
        kind: str | None = None,
        namespace: str | None = None,
        limit: int = 1000,
        subject: str | None = None,
        as_of: int | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts in their latest state, newest first; with `as_of`, the alerts opened by then, in their
        state then (`open_only`: open at that time)."""
        cond = []
        if as_of is not None:
            cond.append("opened_ms <= {as_of:Int64}")
            if open_only:
                cond.append("(resolved_ms IS NULL OR resolved_ms > {as_of:Int64})")
        elif open_only:
            cond.append("status = 'OPEN'")
        if kind:
            cond.append("kind = {kind:String}")
        if namespace:
            cond.append("namespace = {ns:String}")
        if subject:
            cond.append("subject = {subject:String}")
        having = f"HAVING {' AND '.join(cond)}" if cond else ""
        cols = ", ".join(f"argMax({c}, updated_at) AS {c}" for c in ALERT_COLUMNS[1:])
        sql = (
            f"SELECT alert_id, {cols}, toUnixTimestamp64Milli(argMax(opened_at, updated_at)) AS opened_ms, "
            "toUnixTimestamp64Milli(argMax(resolved_at, updated_at)) AS resolved_ms "
            f"FROM {self._db}.alerts GROUP BY alert_id {having} "
            "ORDER BY opened_ms DESC, alert_id LIMIT {limit:UInt32}"
        )
        params: dict[str, Any] = {
            "limit": limit,
            "kind": kind or "",
            "ns": namespace or "",
            "subject": subject or "",
            "as_of": as_of or 0,
        }
        out = []
        for row in self._client.query(sql, parameters=params).result_rows:
            alert = dict(zip(ALERT_COLUMNS, row[: len(ALERT_COLUMNS)], strict=True))
            alert["path"] = list(alert["path"])
            alert["opened_at"] = int(row[-2])
            alert["resolved_at"] = None if row[-1] is None else int(row[-1])
            if as_of is not None and (alert["resolved_at"] is None or alert["resolved_at"] > as_of):
                alert["status"], alert["resolved_at"] = "OPEN", None  # not resolved yet at that time
            out.append(alert)
        return out

    def drift_impact(self, node: str, as_of: int | None = None) -> dict[str, Any]:
        """Drift/quality signals on `node` (up to `as_of`): the models and deployments each reaches
        (DOWNSTREAM) and, for a signal on a model or deployment, its ranked upstream root-cause candidates."""
        until = "" if as_of is None else " AND toUnixTimestamp64Milli(signal_time) <= {as_of:Int64}"
        sql = (
            "SELECT signal_id, any(signal_type), toUnixTimestamp64Milli(any(signal_time)), direction, target, "
            "any(target_kind), "
            "any(target_version), any(distance), any(path), any(rank) "
            f"FROM {self._db}.drift_links WHERE source = {{node:String}}{until} "
            "GROUP BY signal_id, direction, target ORDER BY 3 DESC, signal_id, direction, 10, 8, target"
        )
        signals: dict[str, dict[str, Any]] = {}
        for sid, stype, at, direction, target, tkind, tversion, dist, path, rank in self._client.query(
            sql, parameters={"node": node, "as_of": as_of or 0}
        ).result_rows:
            signal = signals.setdefault(
                str(sid),
                {"signal_id": str(sid), "signal_type": stype, "signal_time": int(at), "affects": [], "root_causes": []},
            )
            link = {"target": target, "kind": tkind, "version": tversion, "distance": int(dist), "path": list(path)}
            if direction == "DOWNSTREAM":
                signal["affects"].append(link)
            else:
                signal["root_causes"].append({**link, "rank": int(rank), "why": str(direction)[len("ROOT_CAUSE_") :]})
        return {"node": node, "signals": list(signals.values())}
