"""Laptop-only parts: the local stack (broker from Maven jars, topics, worker child, sink, API), the demo and its
workload.
"""
