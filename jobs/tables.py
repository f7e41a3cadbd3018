"""Every job's Cassandra result table by name: what `tenantstream query` can read.

The built-in jobs' tables come from the catalog (jobs/catalog.py), the rollups' from jobs/rollup.py: a new
job's tables are queryable by their names once the catalog lists the job.
"""

from __future__ import annotations

from jobs.catalog import BUILT_IN_JOBS
from jobs.rollup import ROLLUP_TABLES
from pipeline.job import ResultTable

RESULT_TABLES: dict[str, ResultTable] = {table.name: table for table in
                                         (*(t for job in BUILT_IN_JOBS.values() for t in job.tables), *ROLLUP_TABLES)}
