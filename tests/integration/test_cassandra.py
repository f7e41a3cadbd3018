"""The stack's Cassandra: keyspace and table created, upserts idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.cassandra import (
    connect,
    drop_keyspaces,
    ensure_keyspace,
    ensure_table,
    insert_statement,
    release_version,
    upsert,
)


def test_node_answers_cql_with_its_release_version(stack):
    assert release_version(stack.cassandra.port) == stack.cassandra.version


def test_same_upsert_twice_leaves_one_row(stack, unique):
    keyspace = f"test_{unique}"
    cluster, session = connect(stack.cassandra.port)
    try:
        ensure_keyspace(session, keyspace)
        ensure_table(session, keyspace, "alarm_rate",
                     [("tenant", "text"), ("station_id", "text"), ("window_start", "timestamp"),
                      ("fires", "bigint")],
                     key=["tenant", "station_id"], clustering=["window_start"])
        row = ("acme", "bts-1", datetime(2026, 1, 1, 4, 0, tzinfo=UTC), 3)
        columns = ["tenant", "station_id", "window_start", "fires"]
        insert = insert_statement(session, keyspace, "alarm_rate", columns)
        assert upsert(session, insert, [row]) == 1
        assert upsert(session, insert, [row]) == 1

        rows = list(session.execute(f"SELECT tenant, station_id, window_start, fires FROM {keyspace}.alarm_rate"))
        assert [(r.tenant, r.station_id, r.window_start.replace(tzinfo=UTC), r.fires) for r in rows] == [row]
        assert {ks.keyspace_name for ks in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")
                } >= {keyspace}
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
        cluster.shutdown()


def test_drop_keyspaces_drops_exactly_the_accepted_ones(stack, unique):
    cluster, session = connect(stack.cassandra.port)
    try:
        for name in (f"drop_{unique}_a", f"drop_{unique}_b", f"keep_{unique}"):
            ensure_keyspace(session, name)
        assert drop_keyspaces(session, lambda k: k.startswith(f"drop_{unique}_")) == [f"drop_{unique}_a",
                                                                                       f"drop_{unique}_b"]
        left = {r.keyspace_name for r in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")}
        assert f"keep_{unique}" in left and not {f"drop_{unique}_a", f"drop_{unique}_b"} & left
        assert drop_keyspaces(session, lambda k: k == f"keep_{unique}") == [f"keep_{unique}"]
    finally:
        cluster.shutdown()
