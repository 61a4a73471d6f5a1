"""compose/docker-compose.yml cannot run here (no Docker engine), so its wiring is checked against the
code: services, env names, ports, topics, commands and the image's packages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from upriver.cli.main import COMMANDS
from upriver.settings import ENV, Topics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose" / "docker-compose.yml"
UPRIVER_SERVICES = ("processor", "sink")


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in _services()[service]["environment"].items()}


def _published(service: str) -> set[int]:
    return {int(str(p).split(":")[-2]) for p in _services()[service].get("ports", [])}


def _container_ports(service: str) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in _services()[service].get("ports", [])}


def test_the_stack_has_its_services() -> None:
    assert set(_services()) >= {"kafka", "init-topics", "schema-registry", "clickhouse", *UPRIVER_SERVICES}


def test_upriver_services_use_only_env_names_the_code_reads() -> None:
    for service in UPRIVER_SERVICES:
        unknown = set(_env(service)) - set(ENV)
        assert unknown == set(), f"{service} sets {unknown}, which upriver/settings.py never reads"


def test_upriver_services_run_real_cli_commands() -> None:
    for service in UPRIVER_SERVICES:
        command = _services()[service]["command"]
        assert command[0] == "upriver" and command[1] in COMMANDS


def test_kafka_bootstrap_is_the_kafka_plaintext_listener() -> None:
    listeners = _env("kafka")["KAFKA_ADVERTISED_LISTENERS"]
    advertised = dict(re.findall(r"(\w+)://([^,]+)", listeners))
    for service in UPRIVER_SERVICES:
        assert _env(service)["KAFKA_BOOTSTRAP_SERVERS"] == advertised["PLAINTEXT"]
    port = int(advertised["PLAINTEXT"].rsplit(":", 1)[1])
    assert f"PLAINTEXT://0.0.0.0:{port}" in _env("kafka")["KAFKA_LISTENERS"]


def test_init_topics_creates_the_default_topics_with_the_default_partitions() -> None:
    script = " ".join(_services()["init-topics"]["command"])
    loop = re.search(r"for t in ([^;]+);", script)
    assert loop is not None
    assert tuple(loop.group(1).split()) == Topics().names()
    partitions = re.search(r"--partitions (\d+)", script)
    assert partitions is not None and partitions.group(1) == ENV["UPRIVER_TOPIC_PARTITIONS"]


def test_clickhouse_url_matches_the_clickhouse_service() -> None:
    ch = _env("clickhouse")
    for service in UPRIVER_SERVICES:
        url = urlsplit(_env(service)["CLICKHOUSE_URL"])
        assert url.scheme == "http"
        assert url.hostname == "clickhouse"
        assert url.port in _container_ports("clickhouse")
        assert (url.username, url.password) == (ch["CLICKHOUSE_USER"], ch["CLICKHOUSE_PASSWORD"])


def test_schema_registry_url_matches_its_service() -> None:
    listener = urlsplit(_env("schema-registry")["SCHEMA_REGISTRY_LISTENERS"])
    for service in UPRIVER_SERVICES:
        url = urlsplit(_env(service)["SCHEMA_REGISTRY_URL"])
        assert (url.hostname, url.port) == ("schema-registry", listener.port)


def test_sink_publishes_the_api_port() -> None:
    port = int(_env("sink").get("UPRIVER_API_PORT", ENV["UPRIVER_API_PORT"]))
    assert port in _container_ports("sink")
    assert _env("sink")["UPRIVER_API_HOST"] == "0.0.0.0"  # reachable from outside the container


def test_image_copies_every_package_the_distribution_ships() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.removesuffix("*") for p in patterns}
    dockerfile = (ROOT / "compose" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) ", dockerfile, flags=re.MULTILINE))
    assert set(packages) <= copied
    for service in UPRIVER_SERVICES:
        assert _services()[service]["build"]["dockerfile"] == "compose/Dockerfile"


def test_prometheus_scrapes_both_upriver_services_with_the_rules() -> None:
    config = yaml.safe_load((ROOT / "compose" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    env = _env("processor")
    assert targets == {f"processor:{env['UPRIVER_METRICS_PORT']}", f"sink:{env['UPRIVER_API_PORT']}"}
    assert "./prometheus:/etc/prometheus:ro" in _services()["prometheus"]["volumes"]


def test_the_full_stack_has_grafana_and_the_ddl_mounted() -> None:
    services = _services()
    assert {"clickhouse-init", "prometheus", "grafana"} <= set(services)
    assert "../sinks/ddl:/ddl:ro" in services["clickhouse-init"]["volumes"]
    assert (ROOT / "sinks" / "ddl").is_dir() and "{db}" in (ROOT / "sinks" / "ddl" / "001_edges.sql").read_text()
    grafana = services["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].rsplit("/", 1)[1]
    assert (ROOT / "compose" / "grafana" / "dashboards" / home).is_file()
    assert services["processor"]["depends_on"]["clickhouse-init"]["condition"] == "service_completed_successfully"
