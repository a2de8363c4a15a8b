"""Config on real etcd: a bad value blocks with a message naming the option and touches nothing;
a good value is written at the member's next start, and the status says it waits for it."""

from __future__ import annotations

import pytest
import yaml

from tests.bench.checks import assert_formed, assert_keys, write_keys
from tests.bench.juju import Juju


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


def test_valid_config_applies_at_the_next_start(bench: Juju) -> None:
    bench.deploy(3)
    bench.settle()
    before_pids = pids(bench)

    bench.set_config(**{"heartbeat-interval": 200, "election-timeout": 2000})
    bench.settle()
    assert pids(bench) == before_pids  # no uncoordinated restart of every member at once
    for unit in bench.units.values():
        assert "config change applies at next restart" in unit.status.message

    bench.churn(["etcd-k8s/2"])  # the pod is recreated: its member starts with the new config
    bench.settle()
    assert_formed(bench, 3)
    config = running_config(bench, "etcd-k8s/2")
    assert (config["heartbeat-interval"], config["election-timeout"]) == (200, 2000)
    assert "config change" not in bench.units["etcd-k8s/2"].status.message
