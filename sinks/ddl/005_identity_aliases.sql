-- Issue 11: exact identity (schemas/identity.py), aliases, producing runs (docs/lineage-model.md).
--
-- edges: column edges carry their OpenLineage transformation subtypes.
ALTER TABLE {db}.edges ADD COLUMN IF NOT EXISTS subtype Nullable(String) AFTER append;

-- runs: the job's node id and every artifact's namespace and name as their own columns (no reader parses
-- an id), and the aliases (other names an artifact was sent under -> its node id).
ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS job_id String AFTER updated_at;
ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS input_namespaces Array(String) AFTER job_id;
ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS input_names Array(String) AFTER input_namespaces;
ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS output_namespaces Array(String) AFTER input_names;
ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS output_names Array(String) AFTER output_namespaces;
ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS alias_ids Array(String) AFTER output_names;
ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS alias_targets Array(String) AFTER alias_ids;

-- aliases: alias id -> node id, from every run row (tiny; each query reads them all, like retirements).
CREATE TABLE IF NOT EXISTS {db}.aliases
(
    alias_id String,
    node_id String
)
ENGINE = ReplacingMergeTree
ORDER BY (alias_id, node_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.aliases_from_runs TO {db}.aliases AS
SELECT alias_ids[i] AS alias_id, alias_targets[i] AS node_id
FROM {db}.runs
ARRAY JOIN arrayEnumerate(alias_ids) AS i;

-- Existing ids were written as kind:namespace/name unescaped, which cannot always be split back. They are
-- rewritten to the new grammar by the rule the producers' naming makes most likely (docs/lineage-model.md,
-- "Migrating old ids"): a namespace `scheme:///path` or `scheme:path` ends at the last '/', a namespace
-- `scheme://host` at the first '/' after the host, any other at the first '/'. Job ids come exactly from
-- runs' job_namespace and job_name. An exact rebuild replays the events topic into a new database.
CREATE FUNCTION IF NOT EXISTS upriver_esc_ns AS (s) -> replaceAll(replaceAll(s, '%', '%25'), '#', '%23');
CREATE FUNCTION IF NOT EXISTS upriver_esc_name AS (s) -> replaceAll(upriver_esc_ns(s), '/', '%2F');
CREATE FUNCTION IF NOT EXISTS upriver_v1_part AS (x) -> splitByChar('#', substring(x, position(x, ':') + 1))[1];
CREATE FUNCTION IF NOT EXISTS upriver_v1_cut AS (p) -> multiIf(
    match(p, '^[A-Za-z][A-Za-z0-9+.-]*:///') OR (position(p, ':') > 0 AND position(p, '://') = 0),
    toInt64(length(p)) - toInt64(position(reverse(p), '/')) + 1,
    position(p, '://') > 0, toInt64(position(p, '/', position(p, '://') + 3)),
    toInt64(position(p, '/')));
CREATE FUNCTION IF NOT EXISTS upriver_v1_ns AS (x) -> substring(upriver_v1_part(x), 1, upriver_v1_cut(upriver_v1_part(x)) - 1);
CREATE FUNCTION IF NOT EXISTS upriver_v1_name AS (x) -> substring(upriver_v1_part(x), upriver_v1_cut(upriver_v1_part(x)) + 1);
CREATE FUNCTION IF NOT EXISTS upriver_id_v2 AS (x) -> if(
    position(x, ':') = 0 OR upriver_v1_cut(upriver_v1_part(x)) <= 0, x,
    concat(substring(x, 1, position(x, ':')), upriver_esc_ns(upriver_v1_ns(x)), '/', upriver_esc_name(upriver_v1_name(x)),
           if(position(substring(x, position(x, ':') + 1), '#') > 0,
              concat('#', substring(substring(x, position(x, ':') + 1), position(substring(x, position(x, ':') + 1), '#') + 1)),
              '')));
ALTER TABLE {db}.runs UPDATE
    job_id = concat('job:', upriver_esc_ns(job_namespace), '/', upriver_esc_name(job_name)),
    input_ids = arrayMap(x -> upriver_id_v2(x), input_ids),
    output_ids = arrayMap(x -> upriver_id_v2(x), output_ids),
    input_namespaces = arrayMap(x -> upriver_v1_ns(x), input_ids),
    input_names = arrayMap(x -> upriver_v1_name(x), input_ids),
    output_namespaces = arrayMap(x -> upriver_v1_ns(x), output_ids),
    output_names = arrayMap(x -> upriver_v1_name(x), output_ids)
WHERE job_id = '' SETTINGS mutations_sync = 2;
CREATE TABLE IF NOT EXISTS {db}.edges_v2 AS {db}.edges;
TRUNCATE TABLE IF EXISTS {db}.edges_v2;
INSERT INTO {db}.edges_v2
SELECT * REPLACE (upriver_id_v2(src) AS src, upriver_id_v2(dst) AS dst, upriver_id_v2(concat('job:', job)) AS job)
FROM {db}.edges;
EXCHANGE TABLES {db}.edges AND {db}.edges_v2;
DROP TABLE IF EXISTS {db}.edges_v2;
ALTER TABLE {db}.alerts UPDATE subject = upriver_id_v2(subject)
WHERE 1 SETTINGS mutations_sync = 2;
CREATE TABLE IF NOT EXISTS {db}.drift_links_v2 AS {db}.drift_links;
TRUNCATE TABLE IF EXISTS {db}.drift_links_v2;
INSERT INTO {db}.drift_links_v2
SELECT * REPLACE (upriver_id_v2(source) AS source, upriver_id_v2(target) AS target,
                  arrayMap(x -> upriver_id_v2(x), path) AS path)
FROM {db}.drift_links;
EXCHANGE TABLES {db}.drift_links AND {db}.drift_links_v2;
DROP TABLE IF EXISTS {db}.drift_links_v2;

-- nodes: namespace and name columns; only a COMPLETE run (or a live STREAMING one) writes a node: a run's
-- START revision no longer names it the producer, and a FAIL run never does. The view is re-made and the
-- table rebuilt from runs below (re-running this file after a crash rebuilds it again, harmlessly).
ALTER TABLE {db}.nodes ADD COLUMN IF NOT EXISTS namespace SimpleAggregateFunction(any, String) AFTER kind;
ALTER TABLE {db}.nodes ADD COLUMN IF NOT EXISTS name SimpleAggregateFunction(any, String) AFTER namespace;
DROP VIEW IF EXISTS {db}.nodes_from_runs;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.nodes_from_runs TO {db}.nodes AS
WITH
    toDateTime64(0, 3, 'UTC') AS never,
    coalesce(ended_at, started_at) AS seen_at,
    status = 'COMPLETE' OR (status IN ('START', 'RUNNING') AND positionCaseInsensitive(facets, 'STREAMING') > 0
        AND 'STREAMING' IN (upper(JSONExtractString(facets, 'jobType', 'processingType')),
                            upper(JSONExtractString(facets, 'jobFacets', 'jobType', 'processingType')))) AS produced,
    arrayConcat(output_ids, input_ids) AS ids,
    arrayConcat(output_kinds, input_kinds) AS kinds,
    arrayConcat(output_namespaces, input_namespaces) AS namespaces,
    arrayConcat(output_names, input_names) AS names,
    arrayConcat(output_versions, input_versions) AS versions,
    arrayConcat(output_facets, input_facets) AS all_facets,
    arrayEnumerate(ids) AS positions
SELECT
    ids[i] AS node_id,
    any(kinds[i]) AS kind,
    any(namespaces[i]) AS namespace,
    any(names[i]) AS name,
    min(seen_at) AS first_seen,
    max(seen_at) AS last_seen,
    max(if(i <= length(output_ids) AND produced, seen_at, never)) AS last_written,
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
    argMaxState(if(i <= length(output_ids) AND produced, job_id, '') AS pj, if(pj = '', never, started_at)) AS producing_job,
    argMaxState(if(i <= length(output_ids) AND produced, run_id, '') AS pr, if(pr = '', never, started_at)) AS producing_run
FROM {db}.runs
ARRAY JOIN positions AS i
GROUP BY node_id;
-- Rebuild what the views derive from runs (nodes, aliases, retirements) by feeding the stored rows through
-- them again: a copy of each run row is inserted, which ReplacingMergeTree (and every reader's FINAL or
-- argMax) collapses; OPTIMIZE drops the copies now.
TRUNCATE TABLE IF EXISTS {db}.nodes;
TRUNCATE TABLE IF EXISTS {db}.retirements;
INSERT INTO {db}.runs SETTINGS insert_deduplicate = 0 SELECT * FROM {db}.runs;
OPTIMIZE TABLE {db}.runs FINAL;
