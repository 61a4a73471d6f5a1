"""Settings: one frozen object per deployable, read from the environment only at entry points.

Every setting is declared once, at its field of `Topics` or `Settings`: `setting(ENV_NAME, default, doc)`.
The default's type says how the variable is parsed. `Settings.from_env`, `Settings.to_env`, `ENV` (every
name with its default; the compose test checks `compose/docker-compose.yml` against it) and the table in
docs/operations.md ("## Configuration", `python -m upriver.settings` prints it; a unit test compares) all
come from those declarations. `UPRIVER_KAFKA_<KEY>` passes any librdkafka key through (`kafka_var`).
Secrets (a URL's password, the API token, librdkafka passwords) are masked wherever settings are shown
(`redact_url`, `repr`). Nothing here is read at import time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from schemas import topics

Value = TypeVar("Value", bound=str | int | float | Path)  # bool is an int

KAFKA_PREFIX = "UPRIVER_KAFKA_"
_MASK = "***"
_OFF = ("0", "false", "no", "off")
# librdkafka keys whose values are secrets (or may hold one): masked when settings are shown.
_SECRET_KAFKA_KEY = re.compile(r"password|secret|passphrase|\.pem$|^sasl\.oauthbearer\.config$")


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, its default (whose type says how it is parsed) and its meaning."""

    env: str
    default: str | int | float | bool | Path
    doc: str
    shown_default: str = ""  # the docs' default column, when the default alone would not say it
    choices: tuple[str, ...] = ()
    secret: Literal["", "url", "value"] = ""  # url: mask the URL's password; value: mask the whole value

    def parse(self, raw: str) -> Any:
        d = self.default
        value: str | int | float | bool | Path
        if isinstance(d, bool):
            value = raw.lower() not in _OFF
        elif isinstance(d, int):
            value = int(raw)
        elif isinstance(d, float):
            value = float(raw)
        elif isinstance(d, Path):
            value = Path(raw)
        else:
            value = raw
        if self.choices and value not in self.choices:
            allowed = " or ".join(repr(c) for c in self.choices)
            raise ValueError(f"{self.env} must be {allowed}, got {value!r}")
        return value

    def format(self, value: object) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, float):
            return repr(value).removesuffix(".0")
        return str(value)

    def shown(self, value: object) -> str:
        """`value` as text with any secret masked: safe to print or log."""
        text = self.format(value)
        if self.secret == "url":
            return redact_url(text)
        if self.secret == "value" and text:
            return _MASK
        return text

    def doc_row(self) -> str:
        default = self.shown_default
        if not default:
            text = self.format(self.default)
            quoted = isinstance(self.default, str | Path)
            default = "unset" if text == "" else f"`{text}`" if quoted else text
        return f"| `{self.env}` | {default} | {self.doc} |"


def setting(
    env: str,
    default: Value,
    doc: str,
    *,
    shown_default: str = "",
    choices: tuple[str, ...] = (),
    secret: Literal["", "url", "value"] = "",
) -> Value:
    """A dataclass field read from `env` (empty or unset: `default`); its declaration is its documentation."""
    declared = Setting(env, default, doc, shown_default, choices, secret)
    return field(default=default, metadata={"setting": declared})


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***` (sinks.clickhouse.redact), safe to print, log or write."""
    from sinks.clickhouse import redact  # not at import time: it loads the ClickHouse client

    return redact(url)


def _declared(cls: type) -> Iterator[tuple[str, Setting]]:
    for f in fields(cls):
        declared = f.metadata.get("setting")
        if isinstance(declared, Setting):
            yield f.name, declared


def _read(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, s in _declared(cls):
        raw = env.get(s.env, "")
        values[name] = s.parse(raw) if raw != "" else s.default
    return values


def _write(obj: object) -> dict[str, str]:
    return {s.env: s.format(getattr(obj, name)) for name, s in _declared(type(obj))}


# -- UPRIVER_KAFKA_<KEY>: any librdkafka key ------------------------------------------------------------
def kafka_key(var: str) -> str:
    """The librdkafka key an `UPRIVER_KAFKA_*` variable sets: `_` is `.`, `__` is a literal `_`.

    `UPRIVER_KAFKA_SECURITY_PROTOCOL` -> `security.protocol`, `UPRIVER_KAFKA_LOG__LEVEL` -> `log_level`.
    """
    if not var.startswith(KAFKA_PREFIX):
        raise ValueError(f"{var!r} is not an {KAFKA_PREFIX}* variable")
    return "_".join(part.replace("_", ".") for part in var[len(KAFKA_PREFIX) :].lower().split("__"))


def kafka_var(key: str) -> str:
    """The `UPRIVER_KAFKA_*` variable that sets librdkafka key `key` (the inverse of `kafka_key`)."""
    var = KAFKA_PREFIX + "__".join(part.replace(".", "_") for part in key.upper().split("_"))
    if kafka_key(var) != key:
        raise ValueError(f"librdkafka key {key!r} cannot be written as an {KAFKA_PREFIX}* variable")
    return var


def _kafka_extra(env: Mapping[str, str]) -> dict[str, str]:
    return {kafka_key(k): v for k, v in env.items() if k.startswith(KAFKA_PREFIX)}


KAFKA_ROW = (
    f"| `{KAFKA_PREFIX}<KEY>` | | any librdkafka setting: `_` in the name is `.` in the key, `__` a literal `_`: "
    f"`{KAFKA_PREFIX}SECURITY_PROTOCOL=SASL_SSL` → `security.protocol`, `{KAFKA_PREFIX}LOG__LEVEL=3` → `log_level` |"
)


@dataclass(frozen=True)
class Topics:
    """The topics' names (defaults in schemas/topics.py), each read from its variable, and their partition count."""

    events: str = setting(
        "UPRIVER_EVENTS_TOPIC", topics.EVENTS, "LineageEvents in: producers, `upriver emit`, `upriver simulate`"
    )
    edges: str = setting("UPRIVER_EDGES_TOPIC", topics.EDGES, "Avro Edges of each run revision (worker → sink)")
    runs: str = setting("UPRIVER_RUNS_TOPIC", topics.RUNS, "Avro Runs, merged state (worker → sink, health)")
    dlq: str = setting("UPRIVER_DLQ_TOPIC", topics.DLQ, "dead letters, the reason in headers")
    alerts: str = setting("UPRIVER_ALERTS_TOPIC", topics.ALERTS, "health output: Alerts")
    health: str = setting("UPRIVER_HEALTH_TOPIC", topics.HEALTH, "health output: the HealthMetric series")
    drift_links: str = setting("UPRIVER_DRIFT_LINKS_TOPIC", topics.DRIFT_LINKS, "health output: DriftLinks")
    tags: str = setting(
        "UPRIVER_TAGS_TOPIC", topics.TAGS, "Marquez tag writes: TagChanges (API → sink), kept forever (retention.ms=-1)"
    )
    # OpenLineage JSON as the openlineage-python/Java `kafka` transport writes it.
    openlineage: str = setting(
        "UPRIVER_OPENLINEAGE_TOPIC",
        topics.OPENLINEAGE,
        "OpenLineage JSON from the `kafka` transport ([openlineage.md](openlineage.md))",
    )
    partitions: int = setting(
        "UPRIVER_TOPIC_PARTITIONS", 4, "partitions of the nine topics (and of the dedup, run-state and health tables)"
    )

    @classmethod
    def unique(cls, suffix: str, partitions: int = 4) -> Topics:
        """Every topic with `suffix` appended (tests and benchmarks that share one broker)."""
        base = cls()
        names = {name: f"{getattr(base, name)}.{suffix}" for name in _topic_fields()}
        return replace(base, **names, partitions=partitions)

    def names(self) -> tuple[str, ...]:
        return tuple(getattr(self, name) for name in _topic_fields())


def _topic_fields() -> tuple[str, ...]:
    return tuple(name for name, s in _declared(Topics) if isinstance(s.default, str))


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything a deployable needs; build with `Settings.from_env()` at the entry point."""

    # setting() returns a dataclasses.field (ruff knows a str or int default is immutable, not a Path)
    home: Path = setting("UPRIVER_HOME", Path(".upriver"), "local state: broker data, chDB, worker state, logs")  # noqa: RUF009
    cache_dir: Path = setting("UPRIVER_CACHE_DIR", Path(".cache"), "downloaded Kafka jars")  # noqa: RUF009
    kafka_bootstrap: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS", "", "an existing Kafka cluster", shown_default="unset → local broker"
    )
    schema_registry_url: str = setting(
        "SCHEMA_REGISTRY_URL",
        "",
        "a Confluent-compatible registry (Confluent wire format); `http(s)://user:password@host:port` for basic auth",
        shown_default="unset → single-object encoding (schema fingerprint)",
        secret="url",
    )
    clickhouse_url: str = setting(
        "CLICKHOUSE_URL",
        "",  # from_env: chdb://$UPRIVER_HOME/chdb
        "`http(s)://user:password@host:8123` for a server (the password is shown as `***`); "
        "`chdb:///dir` is embedded ClickHouse, one process owns it",
        shown_default="`chdb://$UPRIVER_HOME/chdb`",
        secret="url",
    )
    clickhouse_database: str = setting(
        "CLICKHOUSE_DATABASE", "upriver", "created with its tables on start (migrations in `sinks/ddl/`)"
    )
    topics: Topics = field(default_factory=Topics)
    processor_id: str = setting("UPRIVER_PROCESSOR_ID", "upriver-processor", "faust app id = consumer group")
    sink_group: str = setting("UPRIVER_SINK_GROUP", "upriver-sink", "the sink's consumer group")
    dedup_retention_s: int = setting(
        "UPRIVER_DEDUP_RETENTION_S",
        86400,
        "how long an event id, and a silent run's merged state, are remembered (the lateness bound)",
    )
    sink_batch_rows: int = setting("UPRIVER_SINK_BATCH_ROWS", 5000, "sink batch by size: rows")
    sink_batch_ms: int = setting("UPRIVER_SINK_BATCH_MS", 200, "sink batch by time: milliseconds")
    raw_event_retention_days: int = setting(
        "UPRIVER_RAW_EVENT_RETENTION_DAYS",
        30,
        "days the raw OpenLineage events (`lineage_events`, Marquez's `/events/lineage`) are kept after arrival; "
        "0 keeps them forever; the sink sets it at start ([openlineage.md](openlineage.md#raw-events-as-received))",
    )
    metrics_port: int = setting(
        "UPRIVER_METRICS_PORT",
        0,
        "the worker's Prometheus `/metrics`",
        shown_default="0 (off; the local stack picks one)",
    )
    api_host: str = setting("UPRIVER_API_HOST", "127.0.0.1", "the read API's address")
    api_port: int = setting("UPRIVER_API_PORT", 5000, "the read API's port")
    api_token: str = setting(
        "UPRIVER_API_TOKEN",
        "",
        "when set, every `/api/` request needs `Authorization: Bearer <token>` (OpenLineage transports' api_key); "
        "never printed",
        secret="value",
    )
    health_enabled: bool = setting(
        "UPRIVER_HEALTH_ENABLED",
        True,
        "run the health processor in the worker ([health.md](health.md)) unless `0`, `false`, `no` or `off`",
    )
    health_rules: str = setting(
        "UPRIVER_HEALTH_RULES",
        "",
        "TOML rules file: SLAs, timeouts, retention, declared job IO",
        shown_default="unset → defaults",
    )
    health_clock: str = setting(
        "UPRIVER_HEALTH_CLOCK",
        "wall",
        "`event`: now = greatest event time seen (replays, backfills)",
        choices=("wall", "event"),
    )
    health_interval_s: float = setting(
        "UPRIVER_HEALTH_INTERVAL_S", 10.0, "health timer pass, seconds: sweep, HealthMetric series, gauges"
    )
    # librdkafka keys passed through unchanged to every confluent-kafka client (e.g. security): UPRIVER_KAFKA_*.
    kafka_extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values = _read(cls, env)
        if not values["clickhouse_url"]:
            values["clickhouse_url"] = f"chdb://{(values['home'] / 'chdb').resolve()}"
        return cls(**values, topics=Topics(**_read(Topics, env)), kafka_extra=_kafka_extra(env))

    def with_bootstrap(self, bootstrap: str) -> Settings:
        return replace(self, kafka_bootstrap=bootstrap)

    def to_env(self) -> dict[str, str]:
        """The environment a child process needs to rebuild these settings (used by the local stack)."""
        env = {**_write(self), **_write(self.topics)}
        for k, v in self.kafka_extra.items():
            env[kafka_var(k)] = v
        return env

    def kafka_config(self) -> dict[str, str | int | float | bool]:
        """Base librdkafka config shared by producers, consumers and admin clients."""
        return {"bootstrap.servers": self.kafka_bootstrap, **self.kafka_extra}

    def __repr__(self) -> str:
        """Every field, secrets masked: settings may end up in a log line or a test's failure message."""
        shown: dict[str, object] = {name: s.shown(getattr(self, name)) for name, s in _declared(Settings) if s.secret}
        shown["kafka_extra"] = {k: _MASK if _SECRET_KAFKA_KEY.search(k) else v for k, v in self.kafka_extra.items()}
        items = (f"{f.name}={shown.get(f.name, getattr(self, f.name))!r}" for f in fields(self))
        return f"Settings({', '.join(items)})"


def declarations() -> tuple[Setting, ...]:
    """Every setting, in the order of the docs table (Settings' fields, Topics' at `topics`)."""
    out: list[Setting] = []
    for f in fields(Settings):
        if f.name == "topics":
            out += [s for _, s in _declared(Topics)]
        elif isinstance(f.metadata.get("setting"), Setting):
            out.append(f.metadata["setting"])
    return tuple(out)


# Every environment variable name Upriver reads, with its default as text (the compose test uses it).
ENV: dict[str, str] = {s.env: s.format(s.default) for s in declarations()}


def config_table() -> str:
    """The configuration table of docs/operations.md, generated from the declarations."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in declarations():
        rows.append(s.doc_row())
        if s.env == "KAFKA_BOOTSTRAP_SERVERS":
            rows.append(KAFKA_ROW)
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(config_table(), end="")
