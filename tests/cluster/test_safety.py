"""Data safety under adversity, on real etcd: a cut-off unit never forks the cluster, a wipe
stops etcd first, a failed learner start is no member's data, restores survive partitions and
never lock the charm out or bring old access back; the operator's actions work with auth on.

Each test is one adversarial case found on the bench (see docs and the issue it closed); the
etcd3 writer runs where writes are involved, and no acknowledged write may be lost."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")

from tests.bench.binaries import etcdctl
from tests.bench.ca import Identity, self_signed_client
from tests.bench.checks import (
    assert_formed,
    client,
    etcdctl_json,
    log_count,
    make_etcd_leader,
    member_table,
    wait_healthy,
    write_keys,
)
from tests.bench.juju import Juju
from tests.bench.writer import Writer
from tests.cluster.test_availability import assert_no_loss, settle_and_refresh
from tests.cluster.test_restore import all_keys

CLIENT_TLS = "client-certificates"
QUOTA = 16 * 1024 * 1024


def cut_for(bench: Juju, unit: str, seconds: float = 3.0) -> None:
    """Cut `unit` off and wait past the election timeout: every member knows where it stands."""
    bench.network.cut(bench.units[unit].pod_name)
    time.sleep(seconds)


def heal(bench: Juju, unit: str) -> None:
    bench.network.heal(bench.units[unit].pod_name)


def ids_by_name(bench: Juju) -> dict[str, str]:
    return {m.name: m.id for m in member_table(bench)[1]}


def with_client_tls(bench: Juju, units: int = 3) -> Identity:
    """Deploy with client TLS on (so etcd auth is on); the tests speak TLS as `root` (CN)."""
    bench.deploy(units, leader=0)
    bench.settle()
    bench.relate_certificates(CLIENT_TLS)
    bench.settle()
    root = bench.provider.authority.client_identity(Path(bench.workdir) / "ids", "root")
    bench.client_identity = root
    assert_formed(bench, units)
    assert bench.app_data.get("auth") == "on", bench.app_data
    return root


def ctl(bench: Juju, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """etcdctl from the host through every member, with the test's TLS identity."""
    ident = bench.client_identity
    assert ident is not None
    out = subprocess.run(
        [etcdctl(bench.version), f"--endpoints={','.join(bench.client_endpoints())}"]
        + ["--dial-timeout=2s", "--command-timeout=5s", *ident.etcdctl_args(), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    return out.returncode, (out.stdout + out.stderr).strip()


# ---- 1. a partitioned Juju leader -----------------------------------------------------------


def test_cut_off_juju_leader_says_so_and_refuses_to_rebuild(bench: Juju) -> None:
    """Only the Juju leader's pod is cut off; the other two keep quorum and acknowledge writes.
    The leader must not claim quorum lost nor advise a rebuild, and rebuild-cluster without
    force must refuse: the other units say through Juju that they serve."""
    bench.deploy(3, leader=0)
    bench.settle()
    make_etcd_leader(bench, "etcd-k8s/0")  # the cut also costs the cluster its raft leader
    ids = ids_by_name(bench)
    with Writer(bench) as writer:
        cut_for(bench, "etcd-k8s/0")
        try:
            bench.update_status()
            bench.settle()
            message = bench.app_status.message
            assert "quorum lost" not in message and "rebuild-cluster" not in message, message
            assert "cut off" in message and "etcd-k8s/1, etcd-k8s/2" in message, message
            assert "cut off" in bench.units["etcd-k8s/0"].status.message
            refused = bench.run_action("etcd-k8s/0", "rebuild-cluster")
            assert refused.failure and "fork the cluster" in refused.failure, refused
            assert bench.units["etcd-k8s/0"].pod.is_active("etcd")  # nothing was touched
        finally:
            heal(bench, "etcd-k8s/0")
        wait_healthy(bench)
        settle_and_refresh(bench)
    assert ids_by_name(bench) == ids
    assert log_count(bench, 0, "wipe-stale-data") == 0
    assert_formed(bench, 3)
    assert_no_loss(writer)


def test_forced_rebuild_on_a_cut_off_unit_never_wipes_the_majoritys_writes(bench: Juju) -> None:
    """The operator forces a rebuild on the cut-off unit anyway. After the heal the cluster
    that no longer lists the two others is behind them: their data holds the writes the
    majority acknowledged during the cut, so it is not wiped; the units say why and how out."""
    bench.deploy(3, leader=0)
    bench.settle()
    cut_for(bench, "etcd-k8s/0")
    try:
        during = write_keys_to(bench, ("etcd-k8s/1", "etcd-k8s/2"), "during-cut", 50)
        bench.update_status()  # the others' markers record how far their log got
        bench.settle()
        forced = bench.run_action("etcd-k8s/0", "rebuild-cluster", force=True)
        assert forced.failure is None, forced
    finally:
        heal(bench, "etcd-k8s/0")
    for unit in ("etcd-k8s/1", "etcd-k8s/2"):  # etcd stops them: the cluster removed them
        await_exit(bench, unit)
    bench.update_status()
    bench.settle()
    assert log_count(bench, 0, "wipe-stale-data") == 0
    for unit in ("etcd-k8s/1", "etcd-k8s/2"):
        status = bench.units[unit].status
        assert status.name == "blocked" and "not wiping this unit's data" in status.message
        assert "discard-data" in status.message
        assert (bench.units[unit].pod.storage_dir / "data" / "member").is_dir()
    # The operator decides the rebuild stands: each unit sets its data aside and rejoins.
    for unit in ("etcd-k8s/1", "etcd-k8s/2"):
        done = bench.run_action(unit, "discard-data")
        assert done.failure is None, done
        kept = bench.units[unit].pod.storage_dir / Path(done.results["kept-at"]).name
        assert (kept / "member").is_dir()
        settle_and_refresh(bench)
    assert_formed(bench, 3)
    # The writes are in the copies kept aside, never in the rebuilt cluster.
    assert not set(during) & set(all_keys(bench))


def write_keys_to(bench: Juju, units: tuple[str, ...], prefix: str, count: int) -> list[str]:
    """Write through the given units' members only (the others are cut off)."""
    written = []
    c = client(bench, units[0])
    try:
        for i in range(count):
            key = f"/{prefix}/{i:05d}"
            c.put(key, "x")
            written.append(key)
    finally:
        c.close()
    return written


def await_exit(bench: Juju, unit: str, seconds: float = 30.0) -> None:
    """Until etcd on `unit` has exited at least once (Pebble restarts it)."""
    service = bench.units[unit].pod.services["etcd"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if service.restarts > 0 or not service.alive:
            return
        time.sleep(0.2)
    raise AssertionError(f"etcd on {unit} did not stop")


# ---- 2. a wipe stops etcd first ----------------------------------------------------------------


def test_member_removed_by_hand_is_wiped_with_etcd_stopped_and_rejoins(bench: Juju) -> None:
    """An operator removes etcd-k8s/2's member with etcdctl; its etcd crash-loops under Pebble.
    The unit's own hook runs before the leader's: it stops etcd, wipes, and joins anew."""
    bench.deploy(3, leader=0)
    bench.settle()
    gone = ids_by_name(bench)["etcd-k8s-2"]
    with Writer(bench) as writer:
        # Not through etcd-k8s-2 itself: a member that applies its own removal stops, and may
        # answer "server stopped" to the change that took effect.
        own = bench.address("etcd-k8s/2")
        others = [e for e in bench.client_endpoints() if urlparse(e).hostname != own]
        etcdctl_ok(bench, "member", "remove", gone, endpoints=others)
        await_exit(bench, "etcd-k8s/2")
        bench.run_hooks("etcd-k8s/2", ("update-status",))
        assert log_count(bench, 0, "wipe-stale-data member=etcd-k8s-2") == 1
        assert not bench.units["etcd-k8s/2"].pod.is_active("etcd")
        time.sleep(2)  # Pebble had its chance to start etcd on the wiped directory
        assert not (bench.units["etcd-k8s/2"].pod.storage_dir / "data" / "member").exists()
        settle_and_refresh(bench)
    listed = assert_formed(bench, 3)
    assert gone not in {m.id for m in listed}
    assert_no_loss(writer)


def etcdctl_ok(bench: Juju, *args: str, endpoints: list[str] | None = None) -> str:
    """etcdctl from the host, waiting out etcd's 5 s rule after a membership change."""
    deadline = time.monotonic() + 20
    urls = ",".join(endpoints or bench.client_endpoints())
    while True:
        out = subprocess.run(
            [etcdctl(bench.version), f"--endpoints={urls}", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if out.returncode == 0:
            return out.stdout
        assert "unhealthy cluster" in out.stderr and time.monotonic() < deadline, out.stderr
        time.sleep(0.5)


# ---- 3, 4. restores while a follower is cut off -------------------------------------------------


def test_restore_while_a_follower_is_cut_off_but_its_hooks_run(bench: Juju) -> None:
    """The cut-off follower drops its old data and tries to join the restored cluster: etcd
    cannot reach a peer and exits. It waits (no failed hook) and rejoins after the heal."""
    bench.deploy(3, leader=0)
    bench.settle()
    write_keys(bench, "before", 30)
    taken = bench.run_action("etcd-k8s/0", "snapshot", name="nightly")
    assert taken.failure is None, taken
    at_snapshot = all_keys(bench)
    write_keys(bench, "after", 30)
    cut_for(bench, "etcd-k8s/2")
    try:
        restored = bench.run_action("etcd-k8s/0", "restore", name="nightly")
        assert restored.failure is None, restored
        settle_and_refresh(bench)
        status = bench.units["etcd-k8s/2"].status
        assert status.name == "waiting" and "waiting to join as learner" in status.message
        assert "no etcd member answers from this pod" in status.message, status
        assert not bench.failures(), bench.failures()
    finally:
        heal(bench, "etcd-k8s/2")
    settle_and_refresh(bench)
    assert_formed(bench, 3)
    wait_healthy(bench)
    for unit in bench.units:
        assert all_keys(bench, unit) == at_snapshot


def test_two_restores_while_a_follower_is_partitioned(bench: Juju) -> None:
    """etcd-k8s/2 is cut off and its agent too (no hook runs) through two restores: after the
    heal it still runs the cluster from before the first one, and drops it all the same."""
    bench.deploy(3, leader=0)
    bench.settle()
    write_keys(bench, "first", 20)
    assert bench.run_action("etcd-k8s/0", "snapshot", name="first").failure is None
    write_keys(bench, "second", 20)
    assert bench.run_action("etcd-k8s/0", "snapshot", name="second").failure is None
    at_second = all_keys(bench)
    bench.pause("etcd-k8s/2")
    cut_for(bench, "etcd-k8s/2")
    try:
        for name in ("first", "second"):
            restored = bench.run_action("etcd-k8s/0", "restore", name=name)
            assert restored.failure is None, restored
            settle_and_refresh(bench)
    finally:
        heal(bench, "etcd-k8s/2")
        bench.resume("etcd-k8s/2")
    settle_and_refresh(bench)
    assert_formed(bench, 3)
    wait_healthy(bench)
    for unit in bench.units:
        assert all_keys(bench, unit) == at_second
    assert log_count(bench, 0, "drop-superseded-data member=etcd-k8s-2") >= 1


# ---- 5, 6. restores with auth on -----------------------------------------------------------------


def test_restore_with_auth_keeps_the_current_password_and_only_current_clients(
    bench: Juju,
) -> None:
    """A snapshot taken with client A related and the old root password; then the password
    rotates and A's relation goes. After the restore the charm administers etcd with the
    current password (add-unit works), A's user and role are gone, B is served."""
    root = with_client_tls(bench)
    work = Path(bench.workdir) / "clients"
    ids = {name: self_signed_client(work, name) for name in ("client-a", "client-b")}
    a = bench.relate_client("client-a", "/a/", ids["client-a"].cert.read_text(), work / "a.json")
    b = bench.relate_client("client-b", "/b/", ids["client-b"].cert.read_text(), work / "b.json")
    bench.settle()
    assert a.report["connection"] and b.report["connection"], (a.report, b.report)
    old = bench.run_action("etcd-k8s/0", "get-root-password").results["password"]
    taken = bench.run_action("etcd-k8s/0", "snapshot", name="with-a")
    assert taken.failure is None, taken
    with Writer(bench) as writer:
        writer.identities.append(root)
        assert bench.run_action("etcd-k8s/0", "rotate-root-password").failure is None
        bench.remove_client("client-a")
        bench.settle()
        restored = bench.run_action("etcd-k8s/0", "restore", name="with-a")
        assert restored.failure is None, restored
        assert "client roles removed" in restored.results["access"], restored.results
        settle_and_refresh(bench)
    writer.report()  # the restore takes the cluster back: writes after the snapshot go
    assert_formed(bench, 3)
    new = bench.run_action("etcd-k8s/1", "get-root-password").results["password"]
    assert new != old
    as_root = {"ETCDCTL_USER": "root", "ETCDCTL_PASSWORD": new}
    code, users = ctl(bench, "user", "list", env=as_root)
    assert code == 0 and "client-a" not in users and "client-b" in users, users
    code, roles = ctl(bench, "role", "list")
    assert code == 0 and "etcd-client-30" not in roles and "etcd-client-31" in roles, roles
    code, out = ctl(bench, "user", "list", env={**as_root, "ETCDCTL_PASSWORD": old})
    assert code != 0, out
    # The charm still administers etcd: a unit joins, the password rotates again.
    bench.add_unit(1)
    settle_and_refresh(bench)
    assert_formed(bench, 4)
    assert bench.run_action("etcd-k8s/0", "rotate-root-password").failure is None
    assert "active" in str(b.status).lower(), b.status
    assert not bench.failures(), bench.failures()


def test_a_root_password_change_whose_answer_is_lost_keeps_the_password_etcd_has(
    bench: Juju,
) -> None:
    """`user passwd` applied by etcd, but its answer lost (a timeout on a loaded node): the
    secret must end up with the password etcd has, or the charm is locked out of etcd."""
    with_client_tls(bench, units=1)
    pod = bench.units["etcd-k8s/0"].pod

    def shown() -> dict[str, str]:
        result = bench.run_action("etcd-k8s/0", "get-root-password")
        assert result.failure is None, result.failure
        return result.results

    def accepted(password: str) -> bool:
        as_root = {"ETCDCTL_USER": "root", "ETCDCTL_PASSWORD": password}
        return ctl(bench, "user", "list", env=as_root)[0] == 0

    old = shown()["password"]
    # The action asks etcd which password it has, and keeps that one.
    pod.lose_answers("user", "passwd")
    since = len(bench.log)
    rotated = bench.run_action("etcd-k8s/0", "rotate-root-password")
    assert rotated.failure is None, rotated.failure
    first = shown()
    assert first["password"] != old and "unsettled" not in first, first
    assert accepted(first["password"]) and not accepted(old)
    assert log_count(bench, since, "root password settled (rotated)") == 1

    # The answer to that question is lost too: the action says it cannot tell, both passwords
    # stay in the secret, and the leader's next hook settles on the one etcd has.
    pod.lose_answers("user", "passwd")
    pod.lose_answers("user", "get")
    cut = bench.run_action("etcd-k8s/0", "rotate-root-password")
    assert cut.failure and "cannot tell whether etcd took the new root password" in cut.failure
    unsettled = shown()
    assert unsettled["password"] == first["password"] and "unsettled" in unsettled, unsettled
    newest = unsettled["unsettled"].split(" or ", 1)[1].split(";", 1)[0]
    assert accepted(newest) and not accepted(first["password"])
    settle_and_refresh(bench)
    assert shown() == {"username": "root", "password": newest}
    # The charm administers etcd with it: another rotation goes through.
    assert bench.run_action("etcd-k8s/0", "rotate-root-password").failure is None
    assert accepted(shown()["password"])
    assert not bench.failures(), bench.failures()


# ---- the operator's actions with auth on ------------------------------------------------------


def test_maintenance_actions_and_rebuild_with_auth_on(bench: Juju) -> None:
    """compact, defrag, NOSPACE recovery and rebuild-cluster, all through the root password."""
    bench.config["quota-backend-bytes"] = QUOTA
    with_client_tls(bench)
    etcd = client(bench)
    blob = b"n" * (512 * 1024)
    for _ in range(2 * QUOTA // len(blob)):
        try:
            etcd.put("/nospace/blob", blob)
        except Exception as error:
            assert "database space exceeded" in str(error), error
            break
    else:
        raise AssertionError("etcd took twice its quota")
    etcd.close()
    listed = bench.run_action("etcd-k8s/0", "alarm-list")
    assert listed.failure is None and "NOSPACE" in listed.results["alarms"], listed
    disarmed = bench.run_action("etcd-k8s/0", "alarm-disarm")
    assert disarmed.failure is None and disarmed.results["result"] == "disarmed", disarmed
    write_keys(bench, "kept", 50)
    assert bench.run_action("etcd-k8s/0", "compact").failure is None
    defrag = bench.run_action("etcd-k8s/0", "defrag")
    assert defrag.failure is None, defrag
    assert all(defrag.results[f"etcd-k8s-{n}"]["result"] == "defragmented" for n in range(3)), (
        defrag.results
    )

    # Two volumes lost: their units say so, so the rebuild needs no force.
    bench.churn(["etcd-k8s/1", "etcd-k8s/2"], lose_storage=True)
    settle_and_refresh(bench)
    assert "juju run etcd-k8s/0 rebuild-cluster" in bench.app_status.message, bench.app_status
    rebuilt = bench.run_action("etcd-k8s/0", "rebuild-cluster")
    assert rebuilt.failure is None, rebuilt
    settle_and_refresh(bench)
    assert_formed(bench, 3)
    keys = all_keys(bench)
    assert all(f"/kept/{i:05d}" in keys for i in range(50))
    assert json.loads(etcdctl_json_tls(bench))  # every member answers with TLS


def etcdctl_json_tls(bench: Juju) -> str:
    return json.dumps(etcdctl_json(bench, bench.client_endpoints()[0], "endpoint", "status"))
