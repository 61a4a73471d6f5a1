"""HTTP: the API server and its routes, OpenLineage ingest and the web UI's files."""
