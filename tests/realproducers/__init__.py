"""Real OpenLineage producers (dbt-ol, the Spark listener) run for the tests; each harness installs its
tool into its own venv under .cache/producers and returns the events the tool emitted, unchanged."""
