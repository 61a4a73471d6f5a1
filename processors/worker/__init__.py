"""The worker deployable: the only package that imports faust. It wires the lineage and health decisions to Kafka
topics, changelog tables and the publisher.
"""
