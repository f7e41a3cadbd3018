"""Shared fixtures: the real local stack for integration tests, unique names per run."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from stack import control
from stack.config import StackConfig, load_config

if TYPE_CHECKING:
    from connectors.metadata import MetadataStore


@pytest.fixture(scope="session")
def stack() -> StackConfig:
    """The local stack, started if it is not running; stopped again at the end if this run started it.

    Set TENANTSTREAM_KEEP_STACK=1 to leave it running for the next run.
    """
    cfg = load_config()
    started = control.up(cfg)
    yield cfg
    if started and not os.environ.get("TENANTSTREAM_KEEP_STACK"):
        control.down(cfg)


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Iterator[str]:
    """A short name part unique to this test, so reruns never see earlier data. An integration test's topics
    named with it are deleted afterwards, and the Kafka principals whose ACLs name them: kept, every test run
    added its topics and principals to the broker for good."""
    value = uuid.uuid4().hex[:10]
    yield value
    if "stack" in request.fixturenames:
        from connectors.kafka import delete_topics
        from connectors.kafka_access import acl_principals, delete_principal

        bootstrap = request.getfixturevalue("stack").kafka.bootstrap
        try:
            delete_topics(bootstrap, lambda topic: value in topic)
            for principal in acl_principals(bootstrap, value):  # the test's tenants' and jobs' principals
                delete_principal(bootstrap, principal)
        except Exception as err:  # housekeeping: the test's outcome stands
            warnings.warn(f"could not delete the topics and principals named with {value}: {err}", stacklevel=1)


@pytest.fixture
def keyspace(stack, unique):
    """A Cassandra keyspace name for this test, dropped afterwards."""
    from connectors.cassandra import connect

    name = f"it_{unique}"
    yield name
    cluster, session = connect(stack.cassandra.port)
    session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)
    cluster.shutdown()


@pytest.fixture
def store(stack, unique) -> Iterator[MetadataStore]:
    """A metadata database of this test's own, dropped afterwards."""
    from connectors.metadata import MetadataStore

    store = MetadataStore(stack.ferretdb.uri, f"meta_{unique}")
    yield store
    store.client.drop_database(store.db.name)
    store.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the integration tests, and run the stack life-cycle tests (which stop the stack) last."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.get_closest_marker("stack_lifecycle") is not None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many tests were skipped even when none was: pytest's own summary leaves a zero out."""
    counts = {kind: len(terminalreporter.stats.get(kind, [])) for kind in ("passed", "skipped", "failed", "error")}
    terminalreporter.write_line("tenantstream tests: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
