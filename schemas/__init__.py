"""The contract between stages: Avro schemas (`*.avsc`), their typed Python mirror and the codecs.

Every stage imports this package; it imports no stage.
"""
