-- Rejected input kept whole with its reason, one row per source message (topic, partition, offset).
-- non_replicated_deduplication_window lets the loader's insert_deduplication_token drop a retried batch.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    error_kind LowCardinality(String),
    reason String,
    stage LowCardinality(String),
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    key Nullable(String),
    payload String,
    failed_at DateTime64(3, 'UTC'),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_partition UInt32,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY (source_topic, source_partition, source_offset)
SETTINGS non_replicated_deduplication_window = 1000;
