"""Secrets in settings never reach what Upriver prints or writes: `upriver up`'s banner, the demo's
pointers, `.upriver/stack.json` and a `Settings` in a log line show the ClickHouse URL as `user:***@`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from upriver.cli.main import up_banner
from upriver.local.demo import where_to_look
from upriver.local.stack import STATE_FILE, LocalStack, read_state
from upriver.settings import Settings

SECRETS = ("ch-secret", "sr-secret", "api-secret", "sasl-secret")


def _settings(home: Path) -> Settings:
    return Settings.from_env(
        {
            "UPRIVER_HOME": str(home),
            "KAFKA_BOOTSTRAP_SERVERS": "broker:9092",
            "CLICKHOUSE_URL": "http://upriver:ch-secret@clickhouse:8123",
            "SCHEMA_REGISTRY_URL": "https://reg:sr-secret@registry:8081",
            "UPRIVER_API_TOKEN": "api-secret",
            "UPRIVER_KAFKA_SASL_USERNAME": "upriver",
            "UPRIVER_KAFKA_SASL_PASSWORD": "sasl-secret",
            "UPRIVER_METRICS_PORT": "9100",
        }
    )


def _leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_upriver_up_prints_no_password(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    banner = up_banner(s, "http://127.0.0.1:5000", tmp_path / "logs")
    assert _leaked(banner) == []
    assert "ClickHouse: http://upriver:***@clickhouse:8123 (database upriver)" in banner
    assert "Kafka:      broker:9092" in banner and "API:        http://127.0.0.1:5000" in banner


def test_the_demo_prints_no_password(tmp_path: Path) -> None:
    text = where_to_look(_settings(tmp_path), tmp_path / "logs", "deployment:prod/churn")
    assert _leaked(text) == []
    assert "ClickHouse data   http://upriver:***@clickhouse:8123 (database upriver;" in text
    assert "http://127.0.0.1:9100/metrics" in text and "`upriver lineage upstream deployment:prod/churn`" in text


def test_stack_json_holds_no_password_and_still_tells_commands_where_the_stack_is(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    stack = LocalStack(s)  # not started: only what it writes is under test
    stack._write_state()
    text = (tmp_path / STATE_FILE).read_text()
    assert _leaked(text) == []
    state = read_state(tmp_path)  # this process wrote it, so it is "live"
    assert state is not None
    assert state["clickhouse_url"] == "http://upriver:***@clickhouse:8123"
    # what the other commands read from it (cli._bootstrap, cli._read_side)
    assert state["bootstrap"] == "broker:9092" and state["api_url"] == ""
    assert json.loads(text)["database"] == "upriver"


def test_settings_in_a_log_line_mask_every_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = _settings(tmp_path)
    with caplog.at_level(logging.INFO):
        logging.getLogger("upriver.test").info("settings: %s / %r", s, s)
    assert _leaked(caplog.text) == []
    assert "clickhouse_url='http://upriver:***@clickhouse:8123'" in repr(s)
    assert "schema_registry_url='https://reg:***@registry:8081'" in repr(s)
    assert "api_token='***'" in repr(s) and "'sasl.password': '***'" in repr(s)
    assert "'sasl.username': 'upriver'" in repr(s)  # not a secret
    # the real values still reach the clients and the worker child
    assert s.kafka_config()["sasl.password"] == "sasl-secret"
    assert s.to_env()["CLICKHOUSE_URL"] == "http://upriver:ch-secret@clickhouse:8123"


def test_an_url_without_a_password_is_shown_as_it_is(tmp_path: Path) -> None:
    s = Settings.from_env({"UPRIVER_HOME": str(tmp_path)})
    assert f"ClickHouse: {s.clickhouse_url} " in up_banner(s, "", tmp_path)
    assert "clickhouse_url='chdb://" in repr(s) and "api_token=''" in repr(s)
