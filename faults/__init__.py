"""Faults on the multi-node stack (stack/cluster.toml): primitives that kill, pause and cut off its nodes, and
scenarios that run the alarm-rate job through them and check its output against the oracle."""
