"""`tenantstream writer` (and alerts) end with one line and exit 1 when their follower fails, not with a thread's
traceback and exit 0."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from connectors.results import ResultFollower
from submit import cluster_commands
from submit.arguments import CommandError


class FailingFollower(ResultFollower):
    def run(self, batch: int = 5000, idle_s: float = 0.1) -> None:
        self._failure = RuntimeError("Commit failed: Broker: Specified group generation id is not valid\nmore")
        raise self._failure


def test_a_follower_that_fails_ends_the_command_with_its_error_in_one_line(monkeypatch, capsys):
    follower = FailingFollower("unused:9092", ["acme.results.alarm_rate"], "g", "alarm_rate_result.v1")
    monkeypatch.setattr(cluster_commands, "admin_client", lambda bootstrap: SimpleNamespace(
        list_topics=lambda timeout: SimpleNamespace(topics={"acme.results.alarm_rate": None})))
    with pytest.raises(CommandError, match=r"^results follower failed: Commit failed: .* not valid$") as raised:
        cluster_commands._follow([follower], until_caught_up=False, what="following")
    assert raised.value.exit_code == 1
    assert "Traceback" not in capsys.readouterr().err
