"""The alert kinds are declared once (processors/health/kinds.py); everything that names them agrees:
the engine's conditions, the test oracle (tests/health_truth.py), docs/health.md, the Avro docs, the
read side's figure names, and the kinds the Prometheus rules, dashboards and docs filter on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import health_truth

from processors.health import conditions, figures, kinds
from processors.health.config import HealthConfig
from processors.health.engine import HealthEngine
from upriver.readside import health as readside

ROOT = Path(__file__).resolve().parents[2]

# as released: (category, severity) per kind — what users' routing and dashboards rely on
RELEASED = {
    "STALE": ("stale", "warning"),
    "STALE_MODEL": ("stale", "warning"),
    "MISSING_UPSTREAM": ("orphaned", "warning"),
    "UNREGISTERED_MODEL": ("orphaned", "critical"),
    "UNUSED": ("orphaned", "info"),
    "INCOMPLETE_RUN": ("completeness", "warning"),
    "MISSING_IO": ("completeness", "warning"),
    "DRIFT_IMPACT": ("drift", "critical"),
}


def test_the_declared_kinds_are_the_released_ones() -> None:
    assert {k.name: (k.category, k.severity) for k in kinds.KINDS} == RELEASED
    assert len(kinds.NAMES) == len(set(kinds.NAMES))
    assert set(kinds.JOB_ALERTS) == {"INCOMPLETE_RUN", "MISSING_IO"}


def test_every_kind_has_a_condition_and_a_reason() -> None:
    assert set(conditions.ONSETS) == set(kinds.NAMES) == set(conditions.REASONS)


def test_the_oracle_works_out_every_kind_the_simulator_can_raise() -> None:
    covered = {*health_truth.ARTIFACT_KINDS, *health_truth.JOB_KINDS}
    assert covered | set(health_truth.NOT_SIMULATED) == set(kinds.NAMES)
    assert set(health_truth.ARTIFACT_KINDS) == set(kinds.NODE_ALERTS)


def test_the_docs_list_every_kind_with_its_category_and_severity() -> None:
    page = (ROOT / "docs" / "health.md").read_text()
    assert kinds.markdown_table() in page
    for name in kinds.NAMES:  # and each is explained in the prose
        assert page.count(f"**{name}**") == 1, name


def test_the_avro_docs_name_the_declared_kinds_categories_and_figures() -> None:
    fields = {f["name"]: f.get("doc", "") for f in json.loads((ROOT / "schemas" / "alert.avsc").read_text())["fields"]}
    assert set(re.findall(r"[A-Z][A-Z_]+", fields["kind"])) == set(kinds.NAMES)
    assert set(re.findall(r"[a-z]+", fields["category"])) - {"or"} == set(kinds.CATEGORIES)
    assert set(re.findall(r"[a-z]+", fields["severity"])) - {"or"} == set(kinds.SEVERITIES)
    metric = next(
        f["doc"] for f in json.loads((ROOT / "schemas" / "health_metric.avsc").read_text())["fields"]
        if f["name"] == "metric"
    )  # fmt: skip
    assert set(figures.METRICS) <= set(re.findall(r"[a-z_]+", metric))


def test_the_read_side_knows_every_figure_a_pass_publishes() -> None:
    """A figure the read side did not know would be dropped; one per category of alert."""
    assert readside.METRICS == figures.METRICS
    assert {f"alerts_{c}" for c in kinds.CATEGORIES} <= set(readside.METRICS)
    page = (ROOT / "docs" / "health.md").read_text()
    listed = page.split("HealthMetric metrics per namespace and timer pass:")[1].split("\n\n")[0]
    assert re.findall(r"`([a-z_]+)`", listed) == list(figures.METRICS)


def test_a_pass_publishes_only_declared_figures() -> None:
    e = HealthEngine(HealthConfig(lateness_ms=0, upstream_grace_ms=0, run_timeout_ms=1))
    model = {"kind": "MODEL", "namespace": "reg", "name": "m", "version": "v1", "facets": None}
    e.add_run({"run_id": "r", "revision": 2, "job_namespace": "p", "job_name": "up", "status": "COMPLETE",
               "started_at": 0, "ended_at": 0, "inputs": [], "outputs": [model]})  # fmt: skip
    e.add_run({"run_id": "s", "revision": 1, "job_namespace": "p", "job_name": "slow", "status": "START",
               "started_at": 0, "ended_at": None})  # fmt: skip
    e.advance(10)
    e.sweep()
    published = {metric for _, metric in e.metrics()}
    assert {"alerts_orphaned", "alerts_completeness", "running_runs", "unknown"} <= published
    assert published <= set(figures.METRICS)


def test_rules_dashboards_and_docs_filter_on_declared_kinds() -> None:
    """`kind="X"` in the Prometheus rules and Grafana dashboards, `--kind X` in the docs, `["kind"] == "X"`
    in the API and CLI code."""
    named = set()
    for p in (ROOT / "compose").rglob("*"):
        if p.suffix in (".yml", ".json"):
            named |= set(re.findall(r'kind=\\?"([A-Z][A-Z_]+)\\?"', p.read_text()))
    for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "compose").rglob("*.yml")]:
        named |= set(re.findall(r"alerts[^\n]*--kind ([A-Z][A-Z_]+)", p.read_text()))
    for p in (ROOT / "upriver").rglob("*.py"):
        named |= set(re.findall(r'\["kind"\] == "([A-Z][A-Z_]+)"', p.read_text()))
    assert {"STALE", "DRIFT_IMPACT"} <= named <= set(kinds.NAMES), named - set(kinds.NAMES)
