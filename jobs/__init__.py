"""Runnable Flink jobs, each a thin wiring of connectors and operators (one job per file)."""
