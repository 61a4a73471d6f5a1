-- Lineage edges, one row per (src, dst, edge_type, run_id); a replayed insert keeps the newest copy.
-- ReplacingMergeTree only collapses duplicates at merge time, so exact reads use GROUP BY or FINAL.
-- The by_dst projection serves upstream walks (WHERE dst IN ...); chDB/ClickHouse refuse projections
-- on ReplacingMergeTree unless deduplicate_merge_projection_mode says what merges do with them.
-- non_replicated_deduplication_window lets the loader's insert_deduplication_token drop a retried batch.
CREATE TABLE IF NOT EXISTS {db}.edges
(
    src String,
    dst String,
    edge_type LowCardinality(String),
    src_version Nullable(String),
    dst_version Nullable(String),
    run_id String,
    job String,
    event_id String,
    event_time DateTime64(3, 'UTC'),
    derived_at DateTime64(3, 'UTC'),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_partition UInt32,
    kafka_offset UInt64,
    PROJECTION by_dst
    (
        SELECT dst, src, edge_type, run_id
        ORDER BY (dst, src, edge_type, run_id)
    )
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY (src, dst, edge_type, run_id)
SETTINGS
    non_replicated_deduplication_window = 1000,
    deduplicate_merge_projection_mode = 'rebuild';
