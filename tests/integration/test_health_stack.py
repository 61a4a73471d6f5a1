"""Lineage health through the real stack (Kafka, faust worker, sink, chDB): the simulator's drift, stuck-run
and stopped-ingest scenarios, every alert and drift link compared with its ground truth; the CLI and API
answers; /metrics scraped by a real Prometheus (Debian's package, on loopback) evaluating the alert rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from health_support import DURATIONS, SCENARIO, rules_toml
from health_truth import AlertKey, LinkKey, expected_alerts, expected_drift_links
from stack_support import isolated_settings

from producers.emitter import LineageEmitter
from producers.simulator import Simulator
from producers.truth import Truth
from schemas.codec import make_codec
from upriver.cli.main import main
from upriver.http.routes import handle
from upriver.local.stack import LocalStack, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LATENESS_MS = 300_000
RULES = rules_toml(lateness="300s")


@dataclass
class Loaded:
    stack: LocalStack
    sim: Simulator
    settled: int
    alerts: set[AlertKey]
    links: set[LinkKey]
    watermark: int

    @property
    def truth(self) -> Truth:
        return self.sim.truth


def _send(stack: LocalStack, sim: Simulator, events: int, watermark: int) -> int:
    """`events` more simulated events at ~400/s (arrival skew across partitions stays within the bound);
    returns the event clock's new watermark (greatest start or end time)."""
    settings = stack.settings
    codec = make_codec("lineage_event", "", settings.topics.events)
    started = time.monotonic()
    with LineageEmitter(settings.kafka_config(), settings.topics.events, codec=codec) as emitter:
        for i, message in enumerate(sim.messages(events)):
            if message.event is not None:
                emitter.emit(message.event)
                if message.event.event_type.value != "RUNNING":
                    watermark = max(watermark, message.event.event_time)
            else:
                emitter.send_encoded(message.payload or b"", message.key)
            if i % 100 == 0:
                time.sleep(max(0.0, i / 400 - (time.monotonic() - started)))
    return watermark


def _wait_for(stack: LocalStack, alerts: set[AlertKey], links: set[LinkKey], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _stored_alerts(stack) == alerts and _stored_links(stack) == links:
            return
        time.sleep(1)


def _wait_recovered(stack: LocalStack, timeout: float = 90) -> None:
    """Until the restarted worker's health engine has recovered its table and made a timer pass (the pass
    waits for recovery; until then the settled-time gauge of the new process reads 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if stack.worker_metrics().get("upriver_health_settled_time_seconds", 0) > 0:
                return
        except OSError:
            pass  # its /metrics is not up yet
        time.sleep(0.25)
    raise AssertionError(f"the restarted worker did not recover its health state in {timeout}s")


def _stored_alerts(stack: LocalStack) -> set[AlertKey]:
    assert stack.storage is not None
    rows = stack.storage.reader().health.alerts(limit=100_000)
    return {(a["kind"], a["subject"], a["opened_at"], a["resolved_at"]) for a in rows}


def _stored_links(stack: LocalStack) -> set[LinkKey]:
    assert stack.storage is not None
    sql = (
        "SELECT DISTINCT toUnixTimestamp64Milli(signal_time), source, target, target_version, distance "
        f"FROM {stack.storage.database}.drift_links WHERE direction = 'DOWNSTREAM'"
    )
    rows = stack.storage.read_client.query(sql).result_rows
    return {(int(t), str(s), str(d), v, int(n)) for t, s, d, v, n in rows}


@pytest.fixture(scope="module")
def loaded(kafka_bootstrap: str, chdb_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    home = tmp_path_factory.mktemp("health")
    rules = home / "health-rules.toml"
    rules.write_text(RULES)
    settings = isolated_settings(
        kafka_bootstrap,
        chdb_url,
        home,
        "health",
        health_clock="event",  # the simulator's synthetic times drive the clock
        health_rules=str(rules),
        health_interval_s=0.5,
    )
    with LocalStack(settings, api_port=free_port()) as stack:
        stack.wait_worker_ready()
        sim = Simulator(make_codec("lineage_event"), seed=11, **SCENARIO)
        watermark = _send(stack, sim, 2000, 0)
        settled = watermark - LATENESS_MS
        want_alerts = expected_alerts(sim.truth, settled, DURATIONS)
        want_links = expected_drift_links(sim.truth, settled)
        _wait_for(stack, want_alerts, want_links)
        yield Loaded(stack, sim, settled, want_alerts, want_links, watermark)


def test_no_record_arrived_later_than_the_lateness_bound(loaded: Loaded) -> None:
    # otherwise a difference below would be the test's pacing, not the processor
    assert loaded.stack.worker_metrics()["upriver_health_late_facts"] == 0


def test_every_alert_matches_the_simulator_truth(loaded: Loaded) -> None:
    got = _stored_alerts(loaded.stack)
    missed, false = loaded.alerts - got, got - loaded.alerts
    assert not missed and not false, f"missed {sorted(missed)[:5]}; false {sorted(false)[:5]}"
    kinds = {k for k, *_ in got}
    assert {"STALE", "STALE_MODEL", "MISSING_UPSTREAM", "UNUSED", "INCOMPLETE_RUN", "DRIFT_IMPACT"} <= kinds
    stale = {s for k, s, _, resolved in got if k == "STALE" and resolved is None}
    assert "dataset:warehouse/growth.raw_events" in stale  # the ingest that stopped


def test_one_open_alert_per_subject_and_kind(loaded: Loaded) -> None:
    assert loaded.stack.storage is not None
    open_alerts = loaded.stack.storage.reader().health.alerts(open_only=True, limit=100_000)
    keys = [(a["kind"], a["subject"]) for a in open_alerts]
    assert keys and len(keys) == len(set(keys))


def test_each_drift_is_linked_to_exactly_the_affected_models_and_deployments(loaded: Loaded) -> None:
    assert _stored_links(loaded.stack) == loaded.links
    assert {target.split(":")[0] for _, _, target, _, _ in loaded.links} == {"model", "deployment"}


def test_health_series_and_queries(loaded: Loaded, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    stack = loaded.stack
    assert stack.storage is not None
    reader = stack.storage.reader()
    body = handle(reader, "/api/v1/health", "namespace=warehouse")
    assert isinstance(body, dict)
    (warehouse,) = body["namespaces"]
    assert warehouse["measured_at"] == loaded.settled
    assert warehouse["artifacts"] >= 7 and warehouse["late"] + warehouse["stale"] >= 1
    assert 0 < warehouse["coverage_ratio"] <= 1
    for key, value in stack.settings.to_env().items():
        monkeypatch.setenv(key, value)
    assert main(["alerts", "--open", "--kind", "STALE"]) == 0
    assert "dataset:warehouse/growth.raw_events" in capsys.readouterr().out
    source = sorted(loaded.links)[0][1]
    assert main(["drift-impact", source, "--json"]) == 0
    impact = json.loads(capsys.readouterr().out)
    affected = {link["target"] for s in impact["signals"] for link in s["affects"]}
    assert affected == {target for _, src, target, _, _ in loaded.links if src == source}
    assert main(["health"]) == 0
    assert "warehouse" in capsys.readouterr().out


def test_metrics_endpoints_expose_the_catalogue(loaded: Loaded) -> None:
    worker = loaded.stack.worker_metrics()
    assert worker["upriver_processor_events_total"] >= 2000
    assert any(k.startswith("upriver_health_stale_artifacts{") and v > 0 for k, v in worker.items())
    assert any(k.startswith('upriver_health_open_alerts{kind="DRIFT_IMPACT"') for k in worker)
    assert loaded.stack.api is not None
    with urllib.request.urlopen(f"{loaded.stack.api.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert "upriver_sink_end_to_end_seconds_bucket" in text
    assert "upriver_consumer_lag{" in text


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_a_real_prometheus_scrapes_the_stack_and_evaluates_the_rules(loaded: Loaded, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: `make test` installs Debian's prometheus package"
    stack = loaded.stack
    assert stack.api is not None
    shutil.copy(ROOT / "compose" / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    api = stack.api.url.removeprefix("http://")
    worker = f"127.0.0.1:{stack.settings.metrics_port}"
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n"
        f"  - {{job_name: upriver-processor, static_configs: [{{targets: ['{worker}']}}]}}\n"
        f"  - {{job_name: upriver-sink, static_configs: [{{targets: ['{api}']}}]}}\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            try:
                targets = _get(f"{base}/targets")["data"]["activeTargets"]
                rules = [r for g in _get(f"{base}/rules")["data"]["groups"] for r in g["rules"]]
                states = {a["labels"]["alertname"]: a["state"] for a in _get(f"{base}/alerts")["data"]["alerts"]}
            except OSError:
                time.sleep(0.5)
                continue
            if (
                len(targets) == 2
                and all(t["health"] == "up" for t in targets)
                and rules
                and all(r["health"] == "ok" and r["lastEvaluation"] > "2000" for r in rules)
                and "UpriverStaleArtifacts" in states
            ):
                break
            time.sleep(0.5)
        assert len(targets) == 2 and all(t["health"] == "up" for t in targets), targets
        assert len(rules) == 11 and all(r["health"] == "ok" for r in rules), rules
        # the stopped ingest is past its SLA and drift reaches models: both rules see it
        assert states.get("UpriverStaleArtifacts") in ("pending", "firing"), states
        assert states.get("UpriverDriftReachesModels") == "firing", states
        assert "UpriverTargetDown" not in states
        query = _get(f"{base}/query?query=sum(upriver_health_stale_artifacts)")["data"]["result"]
        assert float(query[0]["value"][1]) >= 1
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_restarted_worker_recovers_the_health_state_and_stays_exact(loaded: Loaded) -> None:
    """Stop the worker, start another: it rebuilds the engine from the changelog-backed `health` table,
    re-reads uncommitted run records without applying them twice, and the alerts and drift links after
    more events still match the truth exactly (a fresh engine would re-open MISSING_UPSTREAM and UNUSED
    alerts with new onsets, and lose the stale table's history)."""
    stack = loaded.stack
    stack.stop_worker()
    stack.start_worker()
    stack.wait_worker_ready()
    _wait_recovered(stack)  # else run records pile up during recovery and arrive skewed across partitions
    watermark = _send(stack, loaded.sim, 600, loaded.watermark)
    settled = watermark - LATENESS_MS
    want_alerts = expected_alerts(loaded.truth, settled, DURATIONS)
    want_links = expected_drift_links(loaded.truth, settled)
    assert want_alerts != loaded.alerts  # the new events change the answer
    _wait_for(stack, want_alerts, want_links)
    got = _stored_alerts(stack)
    assert got == want_alerts, (sorted(want_alerts - got)[:5], sorted(got - want_alerts)[:5])
    assert _stored_links(stack) == want_links
    assert stack.worker_metrics()["upriver_health_late_facts"] == 0


def test_alerts_and_health_as_of_an_earlier_time(loaded: Loaded) -> None:
    """Alerts open at a past moment are exactly the stored alerts (equal to the truth, tests above) opened by
    then and not yet resolved then."""
    assert loaded.stack.storage is not None
    reader = loaded.stack.storage.reader()
    at = loaded.settled - 250_000
    stored = reader.health.alerts(open_only=True, as_of=at, limit=100_000)
    got = {(a["kind"], a["subject"], a["opened_at"]) for a in stored}
    want = {(k, s, o) for k, s, o, r in _stored_alerts(loaded.stack) if o <= at and (r is None or r > at)}
    assert got == want and want, (sorted(want - got)[:3], sorted(got - want)[:3])
    assert all(a["status"] == "OPEN" and a["resolved_at"] is None for a in stored)
    then = reader.health.health("warehouse", as_of=at)["namespaces"][0]
    assert then["measured_at"] <= at
