"""The lineage stage's decisions, free of faust and Kafka: validation, dedup, run merging and edges, and the per-
message handler (handling.EventHandler) that the worker wires to its topics.
"""
