"""Shards and replicas: routing, top-k merge, replication, consistency (issue 4)."""
