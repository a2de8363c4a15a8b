"""`juju refresh` on real etcd, the etcd3 writer running: 3.4.23 -> 3.5.1 rolls one pod at a
time with nothing lost; a downgrade once the cluster version moved is refused on the first
pod while the others serve, and refreshing back recovers it; a charm-only refresh loses
nothing. One model carries the whole story (CI's time)."""

from __future__ import annotations

import re
import urllib.request

import pytest

from tests.bench.checks import (
    assert_formed,
    assert_keys,
    etcd_leader,
    raft_term,
    wait_healthy,
    within,
    write_keys,
)
from tests.bench.juju import Juju
from tests.bench.refresh import Roll, passed_ready
from tests.bench.writer import Writer


def cluster_version(bench: Juju, unit: str) -> str:
    """What the member itself says (its metrics listener), not what the charm says."""
    url = f"http://{bench.address(unit)}:2381/metrics"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as answer:
        text = answer.read().decode()
    # The old version's gauge stays, at 0.
    match = re.search(r'^etcd_cluster_version\{cluster_version="([^"]+)"\} 1$', text, re.M)
    assert match, text[:500]
    return match[1]


def _equal(got: object, wanted: object) -> None:
    assert got == wanted, (got, wanted)


def server_versions(bench: Juju) -> dict[str, str]:
    versions = {}
    for name in bench.units:
        url = f"http://{bench.address(name)}:2381/metrics"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=5) as answer:
            text = answer.read().decode()
        match = re.search(r'^etcd_server_version\{server_version="([^"]+)"\}', text, re.M)
        assert match
        versions[name] = match[1]
    return versions


def assert_rolled_in_order(roll: Roll, units: list[str]) -> None:
    """Highest ordinal first, each recreated only once the one before was Ready."""
    assert [s.unit for s in roll.steps] == units, roll
    assert roll.completed, roll
    for before, after in zip(roll.steps, roll.steps[1:], strict=False):
        assert before.ready_after is not None
        assert after.started >= before.started + before.ready_after, (before, after)


def assert_clean(writer: Writer) -> None:
    report = writer.report()
    assert report.acknowledged > 0, "the writer never got a write through"
    assert report.lost == 0, f"{report.lost} acknowledged writes lost, e.g. {report.lost_keys}"
    assert report.failed == 0, report


ALL = ["etcd-k8s/2", "etcd-k8s/1", "etcd-k8s/0"]


@pytest.mark.parametrize("version", ["3.4"], indirect=True)
def test_refresh_up_refused_down_rollback_and_charm_only(bench: Juju) -> None:
    bench.deploy(3)
    bench.settle()
    assert_formed(bench, 3)
    assert cluster_version(bench, "etcd-k8s/0") == "3.4"
    before = write_keys(bench, "refresh", 50)

    # ---- pre-refresh-check: refused while a member is cut off, then passes ----
    leader = bench.leader
    assert leader is not None
    victim = next(n for n in bench.units if n != leader)
    bench.network.cut(bench.units[victim].pod_name)
    try:
        refusal = bench.run_action(leader, "pre-refresh-check")
    finally:
        bench.network.heal(bench.units[victim].pod_name)
    assert refusal.failure and "not healthy (2/3 voters healthy" in refusal.failure, refusal
    wait_healthy(bench)
    checked = bench.run_action(leader, "pre-refresh-check")
    assert checked.failure is None, checked
    assert checked.results["leader"] == "etcd-k8s-0", checked.results
    assert checked.results["order"] == "etcd-k8s/2, etcd-k8s/1, etcd-k8s/0"
    assert checked.results["backup-id"].startswith("pre-refresh-"), checked.results
    assert "etcd:v3.4.23" in checked.results["rollback"], checked.results
    assert etcd_leader(bench) == "etcd-k8s/0"
    listed = bench.run_action(leader, "list-snapshots")
    assert checked.results["backup-id"] in listed.results["snapshots"], listed.results

    # ---- 3.4 -> 3.5, the writer running ----
    term = raft_term(bench)
    with Writer(bench) as writer:
        roll = bench.refresh("3.5")
    assert_rolled_in_order(roll, ALL)
    assert_clean(writer)
    wait_healthy(bench)
    assert set(server_versions(bench).values()) == {"3.5.1"}
    # etcd's leader moves the cluster version up on its next look at the members' versions.
    within(30, lambda: _equal(cluster_version(bench, "etcd-k8s/0"), "3.5"))
    bench.update_status()
    bench.settle()
    assert "etcd 3.5.1" in bench.app_status.message, bench.app_status
    # Leadership sat on /0, which the roll reaches last: the followers' restarts force no
    # election (pre-vote), and /0's stop hands leadership over once: one term, no election
    # by timeout.
    assert raft_term(bench) <= term + 1, (term, raft_term(bench))
    assert_keys(bench, before)

    # ---- 3.5 -> 3.4 after the cluster version moved: refused on the first pod ----
    with Writer(bench) as writer:
        down = bench.refresh("3.4", timeout=90)
        assert down.halted_at == "etcd-k8s/2", down
        assert [s.unit for s in down.steps] == ["etcd-k8s/2"]
        status = bench.units["etcd-k8s/2"].status
        assert status.name == "blocked", status
        assert "below the cluster version 3.5" in status.message, status
        assert "juju refresh etcd-k8s --resource etcd-image=" in status.message
        assert "v3.5.1" in status.message, status.message
        assert not bench.units["etcd-k8s/2"].pod.is_active("etcd")
        # Its plan holds the ready check (failing), not etcd: the pod stays unready.
        assert "etcd-healthy-voter" in bench.units["etcd-k8s/2"].pod.checks
        assert not passed_ready(bench.units["etcd-k8s/2"])
        for other in ("etcd-k8s/1", "etcd-k8s/0"):
            assert bench.units[other].pod.ready
            assert bench.units[other].image == "3.5"
        # ---- the rollback the message says: back to 3.5 ----
        back = bench.refresh("3.5")
    assert back.completed, back
    assert [s.unit for s in back.steps if s.recreated] == ["etcd-k8s/2"], back
    assert_clean(writer)
    wait_healthy(bench)
    assert_formed(bench, 3)
    assert bench.units["etcd-k8s/2"].status.name == "active"

    # ---- a charm-only refresh: each pod restarts once, nothing lost ----
    with Writer(bench) as writer:
        charm = bench.refresh()
    assert_rolled_in_order(charm, ALL)
    assert_clean(writer)
    assert set(server_versions(bench).values()) == {"3.5.1"}
    assert_keys(bench, before)
    assert not bench.failures(), bench.failures()


@pytest.mark.parametrize("version", ["3.4"], indirect=True)
def test_refresh_with_tls_and_auth(bench: Juju) -> None:
    """Client TLS on means etcd auth on, and etcd does not support a 3.4 -> 3.5 rolling upgrade
    with auth on: the first pod refuses (the others serve, nothing lost) and refreshing back
    recovers it; a charm-only refresh with TLS on loses nothing."""
    bench.deploy(3)
    bench.settle()
    bench.relate_certificates("peer-certificates")
    bench.relate_certificates("client-certificates")
    bench.settle()
    bench.client_identity = bench.provider.authority.client_identity(
        bench.workdir / "ids", "writer", cn="root"
    )
    assert_formed(bench, 3)
    assert bench.app_data.get("auth") == "on", bench.app_data
    before = write_keys(bench, "tls-refresh", 20)
    with Writer(bench) as writer:
        writer.identities.append(bench.client_identity)
        up = bench.refresh("3.5", timeout=90)
        assert up.halted_at == "etcd-k8s/2", up
        status = bench.units["etcd-k8s/2"].status
        assert status.name == "blocked" and "with auth on" in status.message, status
        assert "etcd-image=gcr.io/etcd-development/etcd:v3.4.23" in status.message, status
        assert not bench.units["etcd-k8s/2"].pod.is_active("etcd")
        for other in ("etcd-k8s/1", "etcd-k8s/0"):
            assert passed_ready(bench.units[other]), other
        back = bench.refresh("3.4")
        assert back.completed, back
        assert [s.unit for s in back.steps if s.recreated] == ["etcd-k8s/2"], back
        wait_healthy(bench)
        charm = bench.refresh()
    assert_rolled_in_order(charm, ALL)
    assert_clean(writer)
    assert_formed(bench, 3)
    assert set(server_versions(bench).values()) == {"3.4.23"}
    assert bench.app_data.get("auth") == "on"
    assert_keys(bench, before)
    assert not bench.failures(), bench.failures()
