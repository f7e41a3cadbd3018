"""What the dashboard reads from Cassandra, as the reader role, with prepared statements only.

One session for the server's life (a connect costs a second or more). Range reads are built by
operators.ranges, as `tenantstream query` builds them; the partitions of a tenant are found with
SELECT DISTINCT over the table's partition keys (a scan of keys, not rows, filtered to the tenant here),
since a result table's partition key holds more than the tenant.
"""

from __future__ import annotations

import threading
from datetime import datetime

from cassandra import InvalidRequest
from cassandra.cluster import Cluster, Session
from cassandra.query import PreparedStatement

from connectors.cassandra import connect
from operators.ranges import RangeQuery, epoch_ms
from pipeline.job import ResultTable

HISTORY_CAP = 20_000  # rows of one table and tenant a resume sends at most (the newest)


class Reader:
    def __init__(self, port: int, keyspace: str) -> None:
        self.port, self.keyspace = port, keyspace
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        self._lock = threading.Lock()

    def _statement(self, text: str) -> tuple[Session, PreparedStatement]:
        with self._lock:
            if self._session is None:
                self._cluster, self._session = connect(self.port, role="reader")
            if text not in self._prepared:
                self._prepared[text] = self._session.prepare(text)
            return self._session, self._prepared[text]

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()

    def execute(self, text: str, params: list[object]) -> list[dict[str, object]]:
        """Rows of a statement, timestamps as epoch milliseconds; none if its table does not exist yet."""
        try:
            session, statement = self._statement(text)
        except InvalidRequest:  # no such keyspace or table: no job has written there
            return []
        return [{name: epoch_ms(value) if isinstance(value, datetime) else value
                 for name, value in row._asdict().items()} for row in session.execute(statement, params)]

    def windows(self, query: RangeQuery) -> list[dict[str, object]]:
        return self.execute(*query.cql())

    def keys(self, table: ResultTable, tenant: str) -> list[dict[str, str]]:
        """The key columns (after the tenant) of each of the tenant's partitions, sorted."""
        tenant_column, *columns = table.partition_key
        if not columns:
            return []
        rows = self.execute(f"SELECT DISTINCT {', '.join(table.partition_key)} FROM {self.keyspace}.{table.name}",
                            [])
        return sorted(({c: row[c] for c in columns} for row in rows if row[tenant_column] == tenant),
                      key=lambda key: tuple(key.values()))

    def since(self, table: ResultTable, tenant: str, since_ms: int | None) -> list[dict[str, object]]:
        """Every row of the tenant in the table whose time is at or after `since_ms` (all for None), the
        newest HISTORY_CAP of them, oldest first."""
        time_column = table.clustering[0]
        rows: list[dict[str, object]] = []
        partitions = self.keys(table, tenant) if len(table.partition_key) > 1 else [{}]
        for key in partitions:
            query = RangeQuery(table, self.keyspace, ((table.partition_key[0], tenant), *key.items()),
                               since_ms, None)
            rows += self.windows(query)
        rows.sort(key=lambda row: row[time_column])
        return rows[-HISTORY_CAP:]

    def latest(self, table: ResultTable, tenant: str) -> list[dict[str, object]]:
        """The newest row of each of the tenant's partitions of the table."""
        columns = ", ".join(name for name, _ in table.columns())
        where = " AND ".join(f"{c} = ?" for c in table.partition_key)
        order = ", ".join(f"{c} DESC" for c in table.clustering)
        text = f"SELECT {columns} FROM {self.keyspace}.{table.name} WHERE {where} ORDER BY {order} LIMIT 1"
        out = []
        for key in self.keys(table, tenant):
            out += self.execute(text, [tenant, *key.values()])
        return out
