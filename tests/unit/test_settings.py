"""upriver.settings: env names, defaults, the child-process round trip, the docs table and UPRIVER_KAFKA_*."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer

from upriver.settings import ENV, KAFKA_PREFIX, Settings, Topics, config_table, declarations, kafka_key, kafka_var

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_without_environment() -> None:
    s = Settings.from_env({})
    assert s.kafka_bootstrap == ""
    assert s.topics.events == "upriver.events.v1"
    assert s.clickhouse_url.startswith("chdb://") and s.clickhouse_url.endswith("/.upriver/chdb")


def test_to_env_round_trips_and_uses_only_declared_names() -> None:
    s = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
            "CLICKHOUSE_URL": "http://ch:8123",
            "UPRIVER_TOPIC_PARTITIONS": "8",
            "UPRIVER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        }
    )
    assert s.kafka_config() == {"bootstrap.servers": "k:9092", "security.protocol": "SASL_SSL"}
    env = s.to_env()
    assert {k for k in env if not k.startswith("UPRIVER_KAFKA_")} <= set(ENV)
    assert Settings.from_env(env) == s


# -- one declaration per setting -------------------------------------------------------------------------
def _docs_table() -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    return "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))


def test_the_docs_configuration_table_is_the_one_the_declarations_generate() -> None:
    assert _docs_table() == config_table(), (
        "docs/operations.md '## Configuration' differs from upriver/settings.py: "
        "paste the output of `python -m upriver.settings` over the table"
    )


def test_every_field_is_declared_once_with_a_unique_variable() -> None:
    names = [s.env for s in declarations()]
    assert len(names) == len(set(names)) == len(ENV)
    assert not [n for n in names if n.startswith(KAFKA_PREFIX)]  # that prefix is librdkafka's
    declared = {f.name for cls in (Settings, Topics) for f in fields(cls) if "setting" in f.metadata}
    assert declared == {f.name for f in fields(Topics)} | {f.name for f in fields(Settings)} - {"topics", "kafka_extra"}
    assert all(s.doc and "|" not in s.doc for s in declarations())  # a table cell each


def test_declared_defaults_are_the_dataclass_defaults() -> None:
    built = Settings.from_env({})
    assert built == Settings(clickhouse_url=built.clickhouse_url)  # only the chDB path depends on UPRIVER_HOME
    assert Settings.from_env({name: "" for name in ENV}) == built  # empty counts as unset
    assert ENV["UPRIVER_TOPIC_PARTITIONS"] == "4" and ENV["UPRIVER_HEALTH_INTERVAL_S"] == "10"


def test_every_setting_is_read_and_written() -> None:
    env = {
        "UPRIVER_HOME": "/srv/upriver",
        "UPRIVER_CACHE_DIR": "/srv/cache",
        "KAFKA_BOOTSTRAP_SERVERS": "b1:9092,b2:9092",
        "SCHEMA_REGISTRY_URL": "http://sr:8081",
        "CLICKHOUSE_URL": "https://u:p@ch:8443",
        "CLICKHOUSE_DATABASE": "lineage",
        "UPRIVER_EVENTS_TOPIC": "e",
        "UPRIVER_EDGES_TOPIC": "ed",
        "UPRIVER_RUNS_TOPIC": "r",
        "UPRIVER_DLQ_TOPIC": "d",
        "UPRIVER_ALERTS_TOPIC": "a",
        "UPRIVER_HEALTH_TOPIC": "h",
        "UPRIVER_DRIFT_LINKS_TOPIC": "dl",
        "UPRIVER_TAGS_TOPIC": "tg",
        "UPRIVER_OPENLINEAGE_TOPIC": "ol",
        "UPRIVER_TOPIC_PARTITIONS": "12",
        "UPRIVER_PROCESSOR_ID": "proc",
        "UPRIVER_SINK_GROUP": "sinkg",
        "UPRIVER_DEDUP_RETENTION_S": "3600",
        "UPRIVER_SINK_BATCH_ROWS": "100",
        "UPRIVER_SINK_BATCH_MS": "50",
        "UPRIVER_RAW_EVENT_RETENTION_DAYS": "7",
        "UPRIVER_METRICS_PORT": "9100",
        "UPRIVER_API_HOST": "0.0.0.0",
        "UPRIVER_API_PORT": "5001",
        "UPRIVER_API_TOKEN": "tok",
        "UPRIVER_HEALTH_ENABLED": "off",
        "UPRIVER_HEALTH_RULES": "/etc/rules.toml",
        "UPRIVER_HEALTH_CLOCK": "event",
        "UPRIVER_HEALTH_INTERVAL_S": "2.5",
    }
    assert set(env) == set(ENV)
    s = Settings.from_env(env)
    assert (s.home, s.cache_dir, s.kafka_bootstrap) == (Path("/srv/upriver"), Path("/srv/cache"), "b1:9092,b2:9092")
    assert (s.schema_registry_url, s.clickhouse_url, s.clickhouse_database) == (
        "http://sr:8081",
        "https://u:p@ch:8443",
        "lineage",
    )
    assert s.topics == Topics("e", "ed", "r", "d", "a", "h", "dl", "tg", "ol", 12)
    assert (s.processor_id, s.sink_group, s.dedup_retention_s, s.sink_batch_rows, s.sink_batch_ms) == (
        "proc",
        "sinkg",
        3600,
        100,
        50,
    )
    assert (s.metrics_port, s.api_host, s.api_port, s.api_token) == (9100, "0.0.0.0", 5001, "tok")
    assert s.raw_event_retention_days == 7
    assert (s.health_enabled, s.health_rules, s.health_clock, s.health_interval_s) == (
        False,
        "/etc/rules.toml",
        "event",
        2.5,
    )
    assert s.to_env() == {**env, "UPRIVER_HEALTH_ENABLED": "0"}
    assert Settings.from_env(s.to_env()) == s


def test_health_settings_are_checked() -> None:
    for off in ("0", "false", "No", "OFF"):
        assert Settings.from_env({"UPRIVER_HEALTH_ENABLED": off}).health_enabled is False
    assert Settings.from_env({"UPRIVER_HEALTH_ENABLED": "yes"}).health_enabled is True
    with pytest.raises(ValueError, match="UPRIVER_HEALTH_CLOCK must be 'wall' or 'event', got 'utc'"):
        Settings.from_env({"UPRIVER_HEALTH_CLOCK": "utc"})


def test_topics_unique_suffixes_every_topic_name() -> None:
    topics = Topics.unique("t1", partitions=2)
    assert topics.names() == tuple(f"{name}.t1" for name in Topics().names())
    assert topics.partitions == 2 and len(topics.names()) == 9


# -- UPRIVER_KAFKA_<KEY> ------------------------------------------------------------------------------------
def test_kafka_variables_map_dots_and_literal_underscores() -> None:
    env = {
        "UPRIVER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",  # the common case: `_` is `.`
        "UPRIVER_KAFKA_SASL_OAUTHBEARER_CLIENT_ID": "upriver",
        "UPRIVER_KAFKA_LOG__LEVEL": "0",  # librdkafka's log_level: `__` is a literal `_`
        "UPRIVER_KAFKA_ENABLED__EVENTS": "0",  # enabled_events
    }
    s = Settings.from_env(env)
    assert dict(s.kafka_extra) == {
        "security.protocol": "SASL_SSL",
        "sasl.oauthbearer.client.id": "upriver",
        "log_level": "0",
        "enabled_events": "0",
    }
    assert {k: v for k, v in s.to_env().items() if k.startswith(KAFKA_PREFIX)} == env
    assert Settings.from_env(s.to_env()) == s


def test_librdkafka_accepts_a_key_with_an_underscore_set_through_the_environment() -> None:
    s = Settings.from_env({"UPRIVER_KAFKA_LOG__LEVEL": "0", "UPRIVER_KAFKA_CLIENT_ID": "settings-test"})
    Producer(s.kafka_config()).flush(0)  # an unknown key ("log.level") raises KafkaException here
    with pytest.raises(KafkaException, match=r"No such configuration property: \"log\.level\""):
        Producer({**s.kafka_config(), "log.level": "0"})


def test_kafka_key_and_var_are_inverses_and_refuse_what_cannot_round_trip() -> None:
    for key in ("bootstrap.servers", "log_level", "enabled_events", "sasl.oauthbearer.extensions", "a_.b"):
        assert kafka_key(kafka_var(key)) == key
    assert kafka_var("log_level") == "UPRIVER_KAFKA_LOG__LEVEL"
    for key in ("a._b", "Client.Id"):
        with pytest.raises(ValueError, match="cannot be written"):
            kafka_var(key)
    with pytest.raises(ValueError):
        kafka_key("KAFKA_LOG_LEVEL")
