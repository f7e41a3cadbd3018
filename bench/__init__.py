"""Benchmarks of the jobs against their peers, measured in the same run on the same events."""
