"""Fixtures of the integration tests."""

from __future__ import annotations

import pytest

from connectors.cassandra import connect


@pytest.fixture
def keyspace(stack, unique):
    """A Cassandra keyspace of this test's own, dropped afterwards."""
    name = f"it_{unique}"
    yield name
    cluster, session = connect(stack.cassandra.port)
    session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)
    cluster.shutdown()
