"""Estimation: pure functions from (catalog entry, workload, host) to requirement and verdict.

Nothing in this package reads files, probes hardware or prints.
"""
