"""Sinks: ClickHouse DDL, row building and the batched Kafka -> ClickHouse loader.

Imports only `schemas/` and third-party libraries, never `producers/`, `processors/` or `upriver/`.
"""
