"""Stream processors: decode, validate, dedup and derive edges from lineage events.

Decision logic lives in plain modules (no faust import); `app.py` is the only module that wires them
to Kafka topics and tables.
"""
