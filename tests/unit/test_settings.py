"""upriver.settings: env names, defaults and the child-process round trip."""

from __future__ import annotations

from upriver.settings import ENV, Settings


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
