"""The built-in jobs, each a thin wiring of operators into a pipeline.job.Job (one job per file), the rollups, and
the catalog the commands read (catalog.py)."""
