"""The health processor: freshness, completeness, orphans and drift-to-model links derived from the run stream,
as pure state and decisions (no faust, no Kafka); docs/health.md, "Modules", maps its modules.
"""
