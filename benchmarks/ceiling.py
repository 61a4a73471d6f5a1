"""The ceiling Upriver's end-to-end figure is judged against, measured on the same broker and chDB.

Two figures, both with no lineage semantics at all:
- `bare_pipeline`: one confluent-kafka consumer reads the events topic the e2e runs filled, fastavro
  decodes each message (the single-object header skipped, no schema resolution), one row per input and
  per output (artifact -> job, job -> artifact: about as many rows as Upriver's edges, which join a run's
  inputs to its outputs across events) is built with the columns of Upriver's `edges` table, and the rows
  go into a plain MergeTree table of the same chDB in batches. No dedup, no run state, no validation, no
  second topic.
- `producer_perf`: Kafka's own `ProducerPerformance` (the kafka-producer-perf-test tool, jars fetched by
  Maven like the broker's) writing records of the e2e messages' mean size, acks=all with idempotence,
  as Upriver's producers send.

Called by benchmarks/e2e.py after its own runs, so the three figures come from one stack and one run.
"""

from __future__ import annotations

import io
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, TopicPartition

from schemas.codec import parse, schema_json
from sinks.clickhouse import connect
from upriver.local.broker import KAFKA_VERSION, ensure_jars

TOOLS_POM = Path(__file__).parent / "kafka-tools" / "pom.xml"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HEADER = 10  # single-object encoding: 2 magic bytes + 8-byte schema fingerprint
INSERT_ROWS = 20_000
COLUMNS = [
    "src", "dst", "edge_type", "src_version", "dst_version", "run_id", "job", "event_id",
    "event_time", "derived_at", "kafka_partition", "kafka_offset",
]  # fmt: skip
DDL = """CREATE TABLE IF NOT EXISTS {db}.ceiling_edges
(
    src String, dst String, edge_type LowCardinality(String),
    src_version Nullable(String), dst_version Nullable(String),
    run_id String, job String, event_id String,
    event_time DateTime64(3, 'UTC'), derived_at DateTime64(3, 'UTC'),
    kafka_partition UInt32, kafka_offset UInt64
)
ENGINE = MergeTree ORDER BY (src, dst, edge_type, run_id)"""


def _node(ref: dict[str, Any]) -> str:
    # Deliberately not schemas.identity.node_id (escaping, lower-case kinds): the ceiling has no semantics.
    return f"{ref['kind']}:{ref['namespace']}/{ref['name']}"


def bare_pipeline(bootstrap: str, topic: str, clickhouse_url: str, database: str) -> dict[str, Any]:
    """Consume every message now in `topic`, decode, insert edge rows; events/s from first message to the
    last insert's return."""
    schema = parse(schema_json("lineage_event"))
    client = connect(clickhouse_url)
    client.command(DDL.format(db=database))
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"ceiling-{time.time_ns()}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "log_level": 3,
    })  # fmt: skip
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}
    total = sum(ends.values())
    consumer.subscribe([topic])
    rows: list[list[Any]] = []
    messages = events = undecodable = edge_rows = payload_bytes = 0
    start = 0.0
    deadline = time.monotonic() + 600
    try:
        while messages < total:
            if time.monotonic() > deadline:  # also when no message ever comes
                raise TimeoutError(f"bare pipeline read {messages} of {total} messages in 600 s")
            batch = consumer.consume(num_messages=1000, timeout=1.0)
            if batch and not start:
                start = time.perf_counter()
            for msg in batch:
                if msg.error():
                    continue
                messages += 1
                value = msg.value() or b""
                payload_bytes += len(value)
                body = io.BytesIO(value)
                body.seek(HEADER)
                try:
                    rec: dict[str, Any] = fastavro.schemaless_reader(body, schema, None)  # type: ignore[assignment]
                except Exception:  # the workload's malformed messages: counted, skipped
                    undecodable += 1
                    continue
                events += 1
                when = EPOCH + timedelta(milliseconds=rec["event_time"])
                now = datetime.now(UTC)
                job = f"{rec['job_namespace']}/{rec['job_name']}"
                for i in rec["inputs"]:
                    rows.append([_node(i), job, "input", i["version"], None, rec["run_id"], job,
                                 rec["event_id"], when, now, msg.partition(), msg.offset()])  # fmt: skip
                for o in rec["outputs"]:
                    rows.append([job, _node(o), "output", None, o["version"], rec["run_id"], job,
                                 rec["event_id"], when, now, msg.partition(), msg.offset()])  # fmt: skip
                if len(rows) >= INSERT_ROWS:
                    edge_rows += _insert(client, database, rows)
        edge_rows += _insert(client, database, rows)
        seconds = time.perf_counter() - start
    finally:
        consumer.close()
    stored = client.command(f"SELECT count() FROM {database}.ceiling_edges")
    return {
        "messages": messages,
        "events_decoded": events,
        "undecodable": undecodable,
        "edge_rows_inserted": edge_rows,
        "edge_rows_stored": int(stored),  # type: ignore[arg-type]
        "seconds": round(seconds, 3),
        "messages_per_s": round(messages / seconds, 1),
        "mean_message_bytes": round(payload_bytes / max(messages, 1)),
    }


def _insert(client: Any, database: str, rows: list[list[Any]]) -> int:
    if not rows:
        return 0
    client.insert(f"{database}.ceiling_edges", rows, column_names=COLUMNS)
    n = len(rows)
    rows.clear()
    return n


PERF_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency")


def producer_perf(bootstrap: str, cache_dir: Path, record_bytes: int, records: int = 300_000) -> dict[str, Any]:
    """Kafka's ProducerPerformance against the same broker: records/s for `record_bytes`-sized records."""
    broker_libs = ensure_jars(cache_dir)
    tools = ensure_jars(cache_dir, pom_file=TOOLS_POM, folder="tools", expect="kafka-tools")
    topic = f"ceiling-perf-{time.time_ns()}"
    props = [f"bootstrap.servers={bootstrap}", "acks=all", "enable.idempotence=true", "linger.ms=5"]
    cmd = ["java", "-Xmx512m", "-cp", f"{tools}/*:{broker_libs}/*", "org.apache.kafka.tools.ProducerPerformance",
           "--topic", topic, "--num-records", str(records), "--record-size", str(record_bytes),
           "--throughput", "-1", "--producer-props", *props]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    found = PERF_LINE.findall(proc.stdout)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"ProducerPerformance failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
    sent, per_s, mb_s, avg_ms = found[-1]  # the last line is the whole run's summary
    return {
        "tool": f"org.apache.kafka.tools.ProducerPerformance {KAFKA_VERSION}",
        "records": int(sent),
        "record_bytes": record_bytes,
        "producer_props": props,
        "records_per_s": float(per_s),
        "mb_per_s": float(mb_s),
        "avg_latency_ms": float(avg_ms),
    }
