-- Issue 4: lineage health (docs/health.md).
--
-- health: per-namespace time series from the health processor's timer passes (one row per metric).
CREATE TABLE IF NOT EXISTS {db}.health
(
    measured_at DateTime64(3, 'UTC'),
    namespace LowCardinality(String),
    metric LowCardinality(String),
    value Float64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_partition UInt32,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY (namespace, metric, measured_at)
SETTINGS non_replicated_deduplication_window = 1000;

-- alerts: every published state of an alert; the row with the greatest updated_at is the current one
-- (FINAL or argMax). A replay re-publishes the same alert_id (a hash of kind, subject, opened_at).
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id String,
    kind LowCardinality(String),
    category LowCardinality(String),
    subject String,
    namespace LowCardinality(String),
    severity LowCardinality(String),
    status LowCardinality(String),
    reason String,
    path Array(String),
    opened_at DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    updated_at DateTime64(3, 'UTC'),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_partition UInt32,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000;

-- drift_links: a drift or quality signal linked to the models/deployments it affects (DOWNSTREAM) or to
-- upstream root-cause candidates (ROOT_CAUSE_*), with the path; one row per (signal, direction, target).
CREATE TABLE IF NOT EXISTS {db}.drift_links
(
    signal_id String,
    signal_type LowCardinality(String),
    source String,
    source_version Nullable(String),
    signal_time DateTime64(3, 'UTC'),
    direction LowCardinality(String),
    target String,
    target_kind LowCardinality(String),
    target_version Nullable(String),
    distance UInt16,
    path Array(String),
    rank UInt16,
    linked_at DateTime64(3, 'UTC'),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_partition UInt32,
    kafka_offset UInt64,
    INDEX target_idx target TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY (source, signal_id, direction, target)
SETTINGS non_replicated_deduplication_window = 1000;
