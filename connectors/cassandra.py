"""Cassandra sessions, the result keyspace and tables, and idempotent upserts."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from cassandra import DriverException
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import RoundRobinPolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement, SimpleStatement

from connectors import credentials
from connectors.credentials import Credentials
from pipeline.errors import ConnectorError
from pipeline.job import ResultTable
from pipeline.sql import Login

for noisy in ("cassandra.cluster", "cassandra.connection", "cassandra.pool"):
    logging.getLogger(noisy).setLevel(logging.CRITICAL)  # failures surface as our own errors


class CassandraUnavailableError(ConnectorError):
    hint = "; start the local servers with `tenantstream stack up`"
    """Cassandra did not answer a CQL request."""


Role = Literal["admin", "writer", "reader"]


def connect(port: int, keyspace: str | None = None, timeout: float = 10.0, role: Role = "admin",
            login: Login | None = None, host: str | None = None) -> tuple[Cluster, Session]:
    """A session on the local node (`host`, default the stack config's) as `role` (its login from the
    credentials, or `login`); close the cluster when done. The admin creates and drops keyspaces and tables,
    the writer only writes rows of the results keyspaces, the reader only selects them."""
    from stack.config import load_config

    host = host or load_config().cassandra.host
    login = login or credentials.current().cassandra_login(role)
    auth = PlainTextAuthProvider(login.username, login.password) if login else None
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=max(timeout, 10.0))
    cluster = Cluster([host], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                      protocol_version=5, connect_timeout=timeout, control_connection_timeout=timeout,
                      auth_provider=auth)
    try:
        return cluster, cluster.connect(keyspace)
    except (NoHostAvailable, DriverException, OSError) as err:
        cluster.shutdown()
        who = f" as {login.username}" if login else ""
        raise CassandraUnavailableError(f"Cassandra at {host}:{port}{who}: {err}") from err


def release_version(port: int, login: Login | None = None, host: str | None = None) -> str:
    """Ask the node its version: one real CQL query."""
    cluster, session = connect(port, timeout=2.0, login=login, host=host)
    try:
        return session.execute("SELECT release_version FROM system.local").one().release_version
    finally:
        cluster.shutdown()


def ensure_keyspace(session: Session, keyspace: str, replication: int = 1) -> None:
    """Create `keyspace` (SimpleStrategy, `replication` copies) unless it exists, and let the writer role
    modify its rows and the reader role select them (an admin session; nothing else is granted)."""
    session.execute(SimpleStatement(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {replication}}}"))
    secrets = credentials.current()
    for role, permission in (("writer", "MODIFY"), ("reader", "SELECT")):
        login = secrets.cassandra_login(role)
        if login:
            session.execute(f"GRANT {permission} ON KEYSPACE {keyspace} TO {login.username}")


def secure_new_node(port: int, secrets: Credentials, host: str | None = None) -> bool:
    """Replace the default superuser of a node's first start by the credentials' roles: an admin superuser,
    and the writer and reader, which may log in and hold no permission until a keyspace grants one.
    False when the node does not take the default login (already done, or not ready yet)."""
    try:
        cluster, session = connect(port, timeout=2.0, login=Login("cassandra", "cassandra"), host=host)
    except CassandraUnavailableError:
        return False
    try:
        admin = secrets.cassandra_login("admin")
        # The driver quotes the password into the text (%s); the role names are ours (tenantstream_<role>).
        session.execute(f"CREATE ROLE IF NOT EXISTS {admin.username} WITH SUPERUSER = true AND LOGIN = true "
                        "AND PASSWORD = %s", (admin.password,))
    finally:
        cluster.shutdown()
    cluster, session = connect(port, timeout=10.0, login=secrets.cassandra_login("admin"), host=host)
    try:
        for role in ("writer", "reader"):
            login = secrets.cassandra_login(role)
            session.execute(f"CREATE ROLE IF NOT EXISTS {login.username} WITH LOGIN = true AND PASSWORD = %s",
                            (login.password,))
        session.execute("DROP ROLE IF EXISTS cassandra")
    finally:
        cluster.shutdown()
    return True


def drop_keyspaces(session: Session, doomed: Callable[[str], bool]) -> list[str]:
    """Drop every keyspace whose name `doomed` accepts, with its tables and rows; their names."""
    names = sorted(row.keyspace_name for row in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")
                   if doomed(row.keyspace_name))
    for name in names:
        session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)
    return names


def ensure_table(session: Session, keyspace: str, table: str, columns: Sequence[tuple[str, str]],
                 key: Sequence[str], clustering: Sequence[str] = ()) -> None:
    """Create a table whose primary key makes every upsert of the same row idempotent."""
    cols = ", ".join(f"{name} {cql_type}" for name, cql_type in columns)
    partition = ", ".join(key)
    primary = f"(({partition}){''.join(', ' + c for c in clustering)})"
    session.execute(f"CREATE TABLE IF NOT EXISTS {keyspace}.{table} ({cols}, PRIMARY KEY {primary})")


def ensure_result_table(session: Session, table: ResultTable, keyspace: str, replication: int = 1) -> None:
    """Make the keyspace and the declared result table where they do not exist yet."""
    ensure_keyspace(session, keyspace, replication)
    ensure_table(session, keyspace, table.name, table.columns(), table.partition_key, table.clustering)


def insert_statement(session: Session, keyspace: str, table: str, columns: Sequence[str]) -> PreparedStatement:
    """The prepared INSERT (an upsert in Cassandra) of `columns`; prepare once, use for every batch."""
    return session.prepare(f"INSERT INTO {keyspace}.{table} ({', '.join(columns)}) "
                           f"VALUES ({', '.join('?' * len(columns))})")


def upsert(session: Session, statement: PreparedStatement, rows: Iterable[Sequence[object]]) -> int:
    """Write `rows` with the prepared `statement` (see insert_statement) and wait; return the count."""
    return upsert_async(session, statement, rows).wait()


class Upserts:
    """Rows on their way to Cassandra: `wait()` returns their count once every batch is acknowledged, or
    raises the first failure."""

    def __init__(self, count: int, batches: int) -> None:
        self.count = count
        self._remaining = batches
        self._failure: BaseException | None = None
        self._done = threading.Condition()

    def _settled(self, failure: BaseException | None = None) -> None:
        with self._done:
            self._remaining -= 1
            self._failure = self._failure or failure
            self._done.notify_all()

    def wait(self) -> int:
        with self._done:
            self._done.wait_for(lambda: self._remaining == 0)
        if self._failure is not None:
            raise self._failure
        return self.count


def upsert_async(session: Session, statement: PreparedStatement, rows: Iterable[Sequence[object]],
                 batch_size: int = 50, concurrency: int = 32) -> Upserts:
    """Send `rows` with the prepared `statement`; returns once the last batch is sent (not acknowledged).

    Rows go in unlogged batches, `concurrency` in flight: about 5x the rate of single statements
    here (17,600 against 3,100 rows/s, batches of 50, 32 in flight). Unlogged is enough:
    every row is an idempotent upsert, so a batch cut short is simply written again. Returning before
    the acknowledgements lets the caller prepare its next rows while Cassandra writes these.
    """
    rows = list(rows)
    starts = range(0, len(rows), batch_size)
    upserts = Upserts(len(rows), len(starts))
    in_flight = threading.BoundedSemaphore(concurrency)

    def settled(result: object) -> None:
        in_flight.release()
        upserts._settled(result if isinstance(result, BaseException) else None)

    for start in starts:
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for row in rows[start:start + batch_size]:
            batch.add(statement, row)
        in_flight.acquire()
        try:
            sent = session.execute_async(batch)
        except BaseException as err:
            settled(err)
            raise
        sent.add_callbacks(settled, settled)
    return upserts
