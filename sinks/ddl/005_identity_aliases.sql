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

-- nodes: namespace and name columns; only a COMPLETE run (or a live STREAMING one) writes a node: a run's
-- START revision no longer names it the producer, and a FAIL run never does. The view is re-made and the
-- table rebuilt from runs (re-running this file after a crash rebuilds it again, harmlessly).
ALTER TABLE {db}.nodes ADD COLUMN IF NOT EXISTS namespace SimpleAggregateFunction(any, String) AFTER kind;
ALTER TABLE {db}.nodes ADD COLUMN IF NOT EXISTS name SimpleAggregateFunction(any, String) AFTER namespace;
DROP VIEW IF EXISTS {db}.nodes_from_runs;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.nodes_from_runs TO {db}.nodes AS
WITH
    toDateTime64(0, 3, 'UTC') AS never,
    coalesce(ended_at, started_at) AS seen_at,
    status = 'COMPLETE' OR (status IN ('START', 'RUNNING')
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
TRUNCATE TABLE IF EXISTS {db}.nodes;
INSERT INTO {db}.nodes
WITH
    toDateTime64(0, 3, 'UTC') AS never,
    coalesce(ended_at, started_at) AS seen_at,
    status = 'COMPLETE' OR (status IN ('START', 'RUNNING')
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
