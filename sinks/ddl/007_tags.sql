-- Issue 14: the Marquez tag writes (docs/marquez.md, Tags).
--
-- tag_changes: every TagChange of the tags topic (upriver.tags.v1, kept forever), one row per change; the
-- current tags are the last change per (entity, tag) (upriver/readside/tags.py). entity_id is the node id
-- the change is about (a FIELD change's: its dataset's; a TAG's: empty), so a node's changes are one range.
CREATE TABLE IF NOT EXISTS {db}.tag_changes
(
    change_id String,
    op LowCardinality(String),
    entity LowCardinality(String),
    entity_id String,
    namespace String,
    name String,
    field Nullable(String),
    tag String,
    description Nullable(String),
    changed_at DateTime64(3, 'UTC'),
    source Nullable(String),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_partition UInt32,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY (entity_id, tag, change_id)
SETTINGS non_replicated_deduplication_window = 1000;
