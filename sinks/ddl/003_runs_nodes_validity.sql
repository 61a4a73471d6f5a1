-- Issue 3: run lifecycle, time travel and node attributes (docs/lineage-model.md).
--
-- edges: every edge row now carries its run's merged state. Readers keep the highest revision per
-- (src, dst, edge_type, run_id); valid_from is the run's started_at; run_status FAIL/ABORT rows are never
-- valid; append rows are never superseded. The dst-ordered projection is rebuilt to carry these columns,
-- so an upstream walk with a validity filter still reads only the projection.
ALTER TABLE {db}.edges ADD COLUMN IF NOT EXISTS valid_from DateTime64(3, 'UTC') DEFAULT event_time AFTER derived_at;
ALTER TABLE {db}.edges ADD COLUMN IF NOT EXISTS run_status LowCardinality(String) DEFAULT 'COMPLETE' AFTER valid_from;
ALTER TABLE {db}.edges ADD COLUMN IF NOT EXISTS revision UInt32 DEFAULT 1 AFTER run_status;
ALTER TABLE {db}.edges ADD COLUMN IF NOT EXISTS append Bool DEFAULT false AFTER revision;
ALTER TABLE {db}.edges DROP PROJECTION IF EXISTS by_dst;
ALTER TABLE {db}.edges ADD PROJECTION IF NOT EXISTS by_dst_v2
(
    SELECT dst, src, edge_type, run_id, job, valid_from, run_status, revision, append
    ORDER BY (dst, src, edge_type, run_id)
);
ALTER TABLE {db}.edges MATERIALIZE PROJECTION by_dst_v2;

-- runs: the merged state of every run, one row per revision; FINAL or argMax(revision) gives the last word.
-- Artifacts are parallel arrays (id, kind, version, facets JSON) so a row maps to nodes without parsing.
CREATE TABLE IF NOT EXISTS {db}.runs
(
    run_id String,
    revision UInt32,
    job_namespace String,
    job_name String,
    job_kind LowCardinality(String),
    parent_run_id Nullable(String),
    status LowCardinality(String),
    started_at DateTime64(3, 'UTC'),
    ended_at Nullable(DateTime64(3, 'UTC')),
    error Nullable(String),
    input_ids Array(String),
    input_kinds Array(LowCardinality(String)),
    input_versions Array(String),
    input_facets Array(String),
    output_ids Array(String),
    output_kinds Array(LowCardinality(String)),
    output_versions Array(String),
    output_facets Array(String),
    facets String,
    updated_at DateTime64(3, 'UTC'),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kafka_partition UInt32,
    kafka_offset UInt64,
    INDEX output_ids_idx output_ids TYPE bloom_filter GRANULARITY 4,
    INDEX input_ids_idx input_ids TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY run_id
SETTINGS non_replicated_deduplication_window = 1000;

-- nodes: attributes kept current, aggregated by ClickHouse from every run row (any order, any repeats:
-- min/max/argMax are idempotent). Empty values carry time 0 in argMax so they never hide a real one.
CREATE TABLE IF NOT EXISTS {db}.nodes
(
    node_id String,
    kind SimpleAggregateFunction(any, LowCardinality(String)),
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_written SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    retired_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    latest_version AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    owner AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    tags AggregateFunction(argMax, Array(String), DateTime64(3, 'UTC')),
    fields AggregateFunction(argMax, Array(String), DateTime64(3, 'UTC')),
    producing_job AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    producing_run AggregateFunction(argMax, String, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY node_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.nodes_from_runs TO {db}.nodes AS
WITH
    toDateTime64(0, 3, 'UTC') AS never,
    coalesce(ended_at, started_at) AS seen_at,
    status NOT IN ('FAIL', 'ABORT') AS valid,
    arrayConcat(output_ids, input_ids) AS ids,
    arrayConcat(output_kinds, input_kinds) AS kinds,
    arrayConcat(output_versions, input_versions) AS versions,
    arrayConcat(output_facets, input_facets) AS all_facets,
    arrayEnumerate(ids) AS positions
SELECT
    ids[i] AS node_id,
    any(kinds[i]) AS kind,
    min(seen_at) AS first_seen,
    max(seen_at) AS last_seen,
    max(if(i <= length(output_ids) AND valid AND status != 'RETIRE', seen_at, never)) AS last_written,
    max(if(status = 'RETIRE', started_at, never)) AS retired_at,
    argMaxState(versions[i], if(versions[i] = '', never, seen_at)) AS latest_version,
    argMaxState(JSONExtractString(all_facets[i], 'ownership', 'owners', 1, 'name') AS o, if(o = '', never, seen_at)) AS owner,
    argMaxState(
        arrayMap(t -> if(JSONExtractString(t, 'field') = '', JSONExtractString(t, 'key'),
                         concat(JSONExtractString(t, 'key'), ':', JSONExtractString(t, 'field'))),
                 JSONExtractArrayRaw(all_facets[i], 'tags', 'tags')) AS tg,
        if(empty(tg), never, seen_at)) AS tags,
    argMaxState(arrayMap(f -> JSONExtractString(f, 'name'), JSONExtractArrayRaw(all_facets[i], 'schema', 'fields')) AS fl,
                if(empty(fl), never, seen_at)) AS fields,
    argMaxState(if(i <= length(output_ids) AND valid, concat(job_namespace, '/', job_name), '') AS pj,
                if(pj = '', never, started_at)) AS producing_job,
    argMaxState(if(i <= length(output_ids) AND valid, run_id, '') AS pr, if(pr = '', never, started_at)) AS producing_run
FROM {db}.runs
ARRAY JOIN positions AS i
GROUP BY node_id;

-- retirements: (node, when) of every RETIRE signal, tiny, so each walk reads all of them in one go.
CREATE TABLE IF NOT EXISTS {db}.retirements
(
    node_id String,
    retired_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (node_id, retired_at);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.retirements_from_runs TO {db}.retirements AS
SELECT arrayJoin(arrayConcat(input_ids, output_ids)) AS node_id, started_at AS retired_at
FROM {db}.runs
WHERE status = 'RETIRE';
