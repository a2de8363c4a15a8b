"""Config on real etcd: a bad value blocks with a message naming the option and touches nothing;
a good value is written at the member's next start, and the status says it waits for it."""

from __future__ import annotations

import pytest
import yaml

from tests.bench.checks import assert_formed, assert_keys, etcd_leader, raft_term, write_keys
from tests.bench.juju import Juju
from tests.bench.writer import Writer


def running_config(bench: Juju, unit: str) -> dict:
    path = bench.units[unit].pod.container_dir("/etc/etcd") / "etcd.conf.yml"
    return yaml.safe_load(path.read_text())


def pids(bench: Juju) -> dict[str, int | None]:
    return {name: u.pod.pid("etcd") for name, u in bench.units.items()}


@pytest.mark.parametrize(
    "bad, option",
    [
        ({"election-timeout": 400, "heartbeat-interval": 100}, "election-timeout"),
        ({"quota-backend-bytes": -1}, "quota-backend-bytes"),
        ({"auto-compaction-mode": "hourly"}, "auto-compaction-mode"),
    ],
)
def test_invalid_config_blocks_and_keeps_the_cluster(bench: Juju, bad: dict, option: str) -> None:
    bench.deploy(3)
    bench.settle()
    assert_formed(bench, 3)
    before_pids = pids(bench)
    before_config = {name: running_config(bench, name) for name in bench.units}

    bench.set_config(**bad)
    bench.settle()

    for unit in bench.units.values():
        assert unit.status.name == "blocked", unit.status
        assert option in unit.status.message, unit.status.message
    assert pids(bench) == before_pids, "a member was restarted on invalid config"
    assert {n: running_config(bench, n) for n in bench.units} == before_config
    written = write_keys(bench, "blocked", 20)  # the cluster still serves
    assert_keys(bench, written)

    for key in bad:
        bench.config.pop(key)
    bench.set_config()
    bench.settle()
    assert all(u.status.name == "active" for u in bench.units.values())
    assert_formed(bench, 3)


def test_valid_config_rolls_through_one_member_at_a_time(bench: Juju) -> None:
    """A change that needs etcd restarted restarts one member at a time, the etcd leader last
    and after handing leadership over, each after the previous is a healthy voter again. The
    writer sees no lost write and no election by timeout."""
    bench.deploy(3)
    bench.settle()
    before_pids = pids(bench)
    term = raft_term(bench)
    leader_before = etcd_leader(bench)
    with Writer(bench) as writer:
        mark = len(bench.log)
        bench.set_config(**{"heartbeat-interval": 200, "election-timeout": 2000})
        bench.settle()
    report = writer.report()
    assert report.lost == 0, report
    decisions = [line for line in bench.log[mark:] if "decision:" in line]
    restarts = [line for line in decisions if "decision: restart" in line]
    assert len(restarts) == 3, decisions
    assert leader_before.replace("/", "-") in restarts[-1], "the etcd leader did not go last"
    # One turn at a time: grant, restart, release, for each unit in turn.
    turns = [line.split("decision: ")[1].split()[0] for line in decisions if "turn" in line]
    assert turns == ["grant-restart-turn", "release-restart-turn"] * 3, decisions
    moves = [line for line in decisions if "decision: move-leader" in line]
    assert len(moves) == 1, moves
    assert raft_term(bench) == term + 1, "an election happened besides the handover"
    after = pids(bench)
    assert all(after[n] != before_pids[n] for n in after), "a member was not restarted"
    for name in bench.units:
        config = running_config(bench, name)
        assert (config["heartbeat-interval"], config["election-timeout"]) == (200, 2000)
        assert "config change" not in bench.units[name].status.message
    assert_formed(bench, 3)
