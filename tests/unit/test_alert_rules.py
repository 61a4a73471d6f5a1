"""compose/prometheus/alerts.yml: valid for Prometheus (promtool check rules), firing on the series it is
about (promtool test rules), and naming only metrics the code exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import REGISTRY, generate_latest

import processors.metrics  # noqa: F401  (registers the processor's metrics)
import producers.metrics  # noqa: F401
import upriver.metrics  # noqa: F401
from sinks.metrics import default_metrics
from upriver.deploy.lag import STALL_WARN_AFTER_S

RULES_DIR = Path(__file__).resolve().parents[2] / "compose" / "prometheus"


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: `make test` installs Debian's prometheus package (see Makefile: promtool)"
    return path


def test_promtool_checks_the_rules() -> None:
    out = subprocess.run([_promtool(), "check", "rules", "alerts.yml"], cwd=RULES_DIR, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 11 rules found" in out.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    out = subprocess.run(
        [_promtool(), "test", "rules", "alerts.test.yml"], cwd=RULES_DIR, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_name_only_exported_metrics() -> None:
    default_metrics()
    families = set(re.findall(r"^# TYPE (\S+) ", generate_latest(REGISTRY).decode(), flags=re.M))
    doc = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())
    used = {
        name
        for group in doc["groups"]
        for rule in group["rules"]
        for name in re.findall(r"\b(upriver_[a-z_]+)", rule["expr"])
    }
    assert used
    for name in used:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert name in families or base in families, f"{name} is not exported by any metrics catalogue"


def test_the_stall_rule_and_the_lag_monitors_warning_share_the_threshold() -> None:
    doc = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())
    [rule] = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "UpriverConsumerStalled"]
    assert rule["expr"] == f"max by (group, topic) (upriver_consumer_stalled_seconds) > {STALL_WARN_AFTER_S:.0f}"
    assert rule["for"] == "1m" and rule["labels"] == {"severity": "warning"}
