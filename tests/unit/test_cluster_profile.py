"""The multi-node profile (stack/cluster.toml) without starting it: its settings against the compose file's, its
nodes and namespaces, the root check, and the fault check's arithmetic (faults/check.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from faults import check
from operators.oracle import Reading
from stack import control, netns
from stack.config import CONFIG_ENV, PROFILES, load_config
from stack.servers import servers
from submit import cli

COMPOSE = Path(__file__).parents[2] / "docker" / "compose.yaml"


@pytest.fixture
def cluster():
    return load_config(PROFILES["cluster"])


def test_compose_file_matches_the_cluster_profile(cluster):
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    brokers = sorted(name for name in services if name.startswith("kafka-"))
    assert len(brokers) == len(cluster.kafka.hosts) == 3
    k = cluster.kafka
    for name in brokers:
        env = services[name]["environment"]
        assert len(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == len(k.hosts), name
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == k.replication, name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == k.min_insync_replicas, name
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == k.replication, name
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == k.replication, name
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == k.min_insync_replicas, name
    assert k.replication == 3 and k.min_insync_replicas == 2
    taskmanager = services["taskmanager"]
    assert taskmanager["deploy"]["replicas"] == len(cluster.flink.taskmanager_hosts) == 2
    flink = yaml.safe_load(taskmanager["environment"]["FLINK_PROPERTIES"])
    assert flink["taskmanager.numberOfTaskSlots"] == cluster.flink.taskmanager_slots


def test_cluster_nodes_have_namespaces_of_their_own_and_nothing_on_loopback(cluster):
    nodes = {s.name: s for s in servers(cluster)}
    assert list(nodes) == ["kafka-1", "kafka-2", "kafka-3", "cassandra", "ferretdb", "flink-jobmanager",
                           "flink-taskmanager-1", "flink-taskmanager-2"]
    isolated = {name for name, s in nodes.items() if control.isolated(cluster, s)}
    assert isolated == set(nodes) - {"cassandra", "ferretdb"}
    hosts = [s.host(cluster) for s in nodes.values() if s.name in isolated]
    assert len(set(hosts)) == len(hosts) and not any(h.startswith("127.") for h in hosts)
    links = {netns.host_link(name) for name in isolated}
    assert len(links) == len(isolated) and all(len(link) <= 15 for link in links)
    assert cluster.kafka.bootstrap == "10.77.0.11:9092,10.77.0.12:9092,10.77.0.13:9092"


def test_the_single_node_profile_keeps_its_servers_on_loopback():
    single = load_config(PROFILES["single"])
    assert [(s.name, s.address(single)) for s in servers(single)] == [
        ("kafka", "127.0.0.1:9092"), ("cassandra", "127.0.0.1:9042"), ("ferretdb", "127.0.0.1:27017"),
        ("flink-jobmanager", "http://127.0.0.1:8081"), ("flink-taskmanager", "127.0.0.1 (JobManager)")]
    assert single.network is None and not any(control.isolated(single, s) for s in servers(single))


def test_cluster_up_without_root_is_one_line_and_exit_1(monkeypatch, capsys):
    # --profile sets it for the whole process: restored after the test (setenv remembers whether it was set)
    monkeypatch.setenv(CONFIG_ENV, os.environ.get(CONFIG_ENV, str(PROFILES["single"])))
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli.main(["stack", "up", "--profile", "cluster"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "run it as root" in err


def _reading(offset: int, t: int, station: str = "s1", value: float = 10.0) -> Reading:
    return Reading(offset, t, None, "acme", station, "d1", t, value, 5.0, f"a{offset}")


def _expected() -> check.Expected:
    window = ("s1", "d1", 0, 60_000)
    return check.Expected({window: (2, 2, 1.0)}, {7: _reading(7, 1_000)}, {3})


def test_the_check_passes_exactly_the_oracles_output():
    exp = _expected()
    window = next(iter(exp.windows))
    verdict = check.judge(exp, [(window, (2, 2, 1.0))], {window: (2, 2, 1.0)}, [3], [7], 60_000)
    assert verdict.equal and (verdict.lost, verdict.doubled) == (0, 0)


def test_the_check_counts_a_window_committed_twice_and_a_missing_dead_letter():
    exp = _expected()
    window = next(iter(exp.windows))
    verdict = check.judge(exp, [(window, (2, 2, 1.0)), (window, (2, 2, 1.0))], {window: (2, 2, 1.0)}, [], [7],
                          60_000)
    assert not verdict.equal and (verdict.lost, verdict.doubled) == (1, 2)


def test_a_late_record_counted_in_its_window_instead_of_the_late_topic_is_counted_once():
    exp = _expected()
    window = next(iter(exp.windows))
    verdict = check.judge(exp, [(window, (3, 3, 1.0))], {window: (3, 3, 1.0)}, [3], [], 60_000)
    assert verdict.equal, verdict.notes
    assert any("late records were not on the late topic" in note for note in verdict.notes)
    lost = check.judge(exp, [(window, (2, 2, 1.0))], {window: (2, 2, 1.0)}, [3], [], 60_000)
    assert not lost.equal and lost.lost == 1


def test_every_fault_scenario_is_explained_in_the_help(capsys):
    from faults.run import SCENARIOS
    from submit.faults import SCENARIO_HELP

    assert list(SCENARIO_HELP) == list(SCENARIOS)
    with pytest.raises(SystemExit):
        cli.main(["faults", "--help"])
    shown = capsys.readouterr().out
    assert all(f"{name}:" in shown for name in SCENARIOS)


def test_an_unknown_fault_scenario_is_one_line_and_exit_2(capsys):
    assert cli.main(["faults", "no-such-fault"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no fault scenario no-such-fault" in err
