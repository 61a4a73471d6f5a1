"""compose/grafana: every SQL query of the dashboards runs on embedded ClickHouse filled by the simulator
(through the pipeline's own derivations) and returns rows; every PromQL expression passes promtool and
names exported metrics; the provisioning points at the compose services."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from clickhouse_connect.driver.client import Client
from health_support import SCENARIO, config, feed
from prometheus_client import REGISTRY, generate_latest

import processors.metrics  # noqa: F401  (registers the processor's metrics)
import upriver.metrics  # noqa: F401
from processors.health.engine import HealthEngine
from producers.simulator import Simulator
from schemas.codec import make_codec
from sinks.metrics import default_metrics
from sinks.rows import ALERTS, DEAD_LETTERS, DRIFT_LINKS, HEALTH, alert_row, dead_letter_row, drift_link_row, health_row
from sinks.writer import ClickHouseWriter
from upriver.local.bulk import load

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "compose" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def _targets(kind: str) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                if target["datasource"]["type"] == kind:
                    out.append((path.name, panel["title"], target))
    return out


def test_three_dashboards_with_both_kinds_of_query() -> None:
    assert [p.stem for p in DASHBOARDS] == ["ai-assets", "lineage-health", "pipeline"]
    assert len(_targets("grafana-clickhouse-datasource")) >= 10 and len(_targets("prometheus")) >= 10


def _fill(client: Client, db: str) -> None:
    """The simulator's workload as the stack would store it: runs and edges, health outputs, dead letters."""
    codec = make_codec("lineage_event")
    sim = Simulator(codec, seed=5, **SCENARIO)
    messages = list(sim.messages(1500))
    events = [m.event.to_record() for m in messages if m.event is not None]
    writer = ClickHouseWriter(client, db)
    load(writer, events, derived_at=1_767_225_600_000)
    engine = HealthEngine(config(lateness_ms=60_000))
    metric_rows = []
    states: dict[str, Any] = {}
    for start in range(0, len(events), 100):  # a timer pass, and its namespace figures, every 100 events
        feed(engine, events[start : start + 100], states=states)
        engine.sweep()
        for (ns, m), v in engine.metrics().items():
            point = {"measured_at": engine.settled, "namespace": ns, "metric": m, "value": v}
            metric_rows.append(health_row(point, 0, len(metric_rows)))
    alerts, links = engine.take()
    alert_rows = [alert_row({**a, "updated_at": 1_800_000_000_000 + i}, 0, i) for i, a in enumerate(alerts)]
    link_rows = [drift_link_row({**x, "linked_at": x["signal_time"]}, 0, i) for i, x in enumerate(links)]
    bad = next(m for m in messages if m.event is None)
    letter = {"error_kind": "UNDECODABLE", "reason": "not an Avro single-object payload", "stage": "processor",
              "source_topic": "upriver.events.v1", "source_partition": 0, "source_offset": 1, "key": bad.key,
              "payload": bad.payload or b"", "failed_at": 1_767_225_600_000}  # fmt: skip
    for layout, rows in ((HEALTH, metric_rows), (ALERTS, alert_rows), (DRIFT_LINKS, link_rows),
                         (DEAD_LETTERS, [dead_letter_row(letter, 0, 0)])):  # fmt: skip
        assert rows, layout.name
        writer.insert(layout.name, rows, layout.columns, layout.types, f"dash:{layout.name}")


def _runnable(sql: str, db: str) -> str:
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN toDateTime64('2000-01-01', 3) AND toDateTime64('2100-01-01', 3)", sql
    )
    assert "$" not in sql, f"an unhandled Grafana macro in: {sql}"
    return sql.replace("upriver.", f"`{db}`.")


def test_every_dashboard_sql_query_returns_rows(ch_client: Client, ch_database: str) -> None:
    _fill(ch_client, ch_database)
    for dashboard, title, target in _targets("grafana-clickhouse-datasource"):
        rows = ch_client.query(_runnable(target["rawSql"], ch_database)).result_rows
        assert rows, f"{dashboard} / {title} returned no rows"


def test_every_promql_expression_passes_promtool_and_names_exported_metrics(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: `make test` installs Debian's prometheus package"
    exprs = [t["expr"] for _, _, t in _targets("prometheus")]
    rules = {"groups": [{"name": "dashboards", "rules": [{"record": f"upriver:dashboard_expr_{i}", "expr": e}
                                                         for i, e in enumerate(exprs)]}]}  # fmt: skip
    (tmp_path / "exprs.yml").write_text(yaml.safe_dump(rules))
    out = subprocess.run([promtool, "check", "rules", str(tmp_path / "exprs.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in out.stdout
    default_metrics()
    families = set(re.findall(r"^# TYPE (\S+) ", generate_latest(REGISTRY).decode(), flags=re.M))
    for expr in exprs:
        for name in re.findall(r"\b(upriver_[a-z_]+)", expr):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert name in families or base in families, f"{name} is not exported by any metrics catalogue"


def test_provisioning_points_at_the_compose_services() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "datasources.yml").read_text())["datasources"]
    by_uid = {s["uid"]: s for s in sources}
    assert by_uid["prometheus"]["url"] == "http://prometheus:9090"
    assert by_uid["clickhouse"]["type"] == "grafana-clickhouse-datasource"
    assert by_uid["clickhouse"]["jsonData"]["host"] == "clickhouse"
    used = {
        t["datasource"]["uid"] for kind in ("prometheus", "grafana-clickhouse-datasource") for _, _, t in _targets(kind)
    }
    assert used == set(by_uid)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboards_are_valid_grafana_json(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["uid"].startswith("upriver-") and doc["panels"]
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
