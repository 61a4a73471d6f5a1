-- Issue 14: every OpenLineage event as received (the OpenLineage topic's messages, the HTTP ingest's raw copies
-- among them), for Marquez's GET /api/v1/events/lineage and a future replay (docs/openlineage.md, "Raw events").
-- payload is the message value exactly; the other columns are read from it (empty when the event lacks them).
-- event_time keeps microseconds (Marquez orders by them). kind is Marquez's _event_type: RUN_EVENT, DATASET_EVENT or JOB_EVENT. received_at is the message's Kafka
-- timestamp. Ordered by event time, so /events/lineage reads a time range; a replayed message (the same
-- partition and offset, so the same event time) collapses. The TTL is the default retention: the sink sets
-- the configured one at start (UPRIVER_RAW_EVENT_RETENTION_DAYS, sinks/retention.py).
-- non_replicated_deduplication_window lets the loader's insert_deduplication_token drop a retried batch.
CREATE TABLE IF NOT EXISTS {db}.lineage_events
(
    event_time DateTime64(6, 'UTC'),
    kind LowCardinality(String),
    event_type LowCardinality(String),
    run_id String,
    job_namespace String,
    job_name String,
    producer String,
    payload String,
    received_at DateTime64(3, 'UTC'),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_partition UInt32,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toMonday(received_at)
ORDER BY (event_time, kafka_partition, kafka_offset)
TTL toDateTime(received_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;
