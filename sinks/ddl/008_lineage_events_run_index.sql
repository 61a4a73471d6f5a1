-- Issue 14: a run's raw events by run id. Marquez answers a run's facets merged over all its events
-- (upriver/readside/run_facets.py reads them for a page of runs at once: run_id IN (...)); lineage_events is
-- ordered by event time, so without this index that lookup reads the whole table. A bloom filter per granule
-- skips the granules holding none of the asked ids. MATERIALIZE builds it for the parts written before this
-- file (a mutation, in the background); ADD INDEX IF NOT EXISTS makes a re-run harmless.
ALTER TABLE {db}.lineage_events ADD INDEX IF NOT EXISTS by_run_id run_id TYPE bloom_filter(0.01) GRANULARITY 1;
ALTER TABLE {db}.lineage_events MATERIALIZE INDEX by_run_id
