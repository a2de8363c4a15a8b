"""The operator's actions on real etcd (restore has its own suite): what each reports is checked
against what etcd itself says afterwards (etcdctl from the host, an etcd3 client, the files on
the unit's storage), and each refusal is checked to say why and to leave everything as it was.

Each test deploys three units once and walks through a family of actions on that cluster."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.bench.binaries import bin_dir, etcdctl, source_dir
from tests.bench.checks import (
    assert_formed,
    client,
    endpoint_statuses,
    etcd_leader,
    etcdctl_json,
    member_table,
    raft_term,
    write_keys,
)
from tests.bench.juju import ActionResult, Juju
from tests.bench.pod import Pod

QUOTA = 16 * 1024 * 1024  # the smallest quota-backend-bytes the charm accepts


# ---- helpers ------------------------------------------------------------------------------------


def ok(result: ActionResult) -> dict:
    assert result.failure is None, f"the action failed: {result.failure}"
    return result.results


def refused(result: ActionResult, *fragments: str) -> str:
    assert result.failure is not None, f"the action should have failed; it gave {result.results}"
    for fragment in fragments:
        assert fragment in result.failure, f"{fragment!r} not in {result.failure!r}"
    return result.failure


def member_name(unit: str) -> str:
    return unit.replace("/", "-")


def followers(bench: Juju) -> list[str]:
    """The units that are not the Juju leader."""
    return sorted(n for n in bench.units if n != bench.leader)


def member_ids(bench: Juju) -> dict[str, str]:
    """member name -> hex id, as etcd lists them."""
    return {m.name: m.id for m in member_table(bench)[1]}


def statuses(bench: Juju) -> dict[str, dict]:
    """unit -> its member's `endpoint status`, asked from the host."""
    by_address = {bench.address(n): n for n in bench.units}
    found = {}
    for entry in endpoint_statuses(bench):
        address = entry["Endpoint"].split("//", 1)[1].rsplit(":", 1)[0]
        found[by_address[address]] = entry["Status"]
    assert len(found) == len(bench.units), f"not every member answered: {found}"
    return found


def db_sizes(bench: Juju) -> dict[str, int]:
    return {unit: status["dbSize"] for unit, status in statuses(bench).items()}


def steady_db_sizes(bench: Juju, seconds: float = 10) -> dict[str, int]:
    """The db sizes once every member has applied and committed what it was sent: a follower
    applies a beat after the leader, and the backend commits in batches."""
    deadline = time.monotonic() + seconds
    last = db_sizes(bench)
    while True:
        time.sleep(0.3)
        now = db_sizes(bench)
        if now == last:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"the db sizes keep changing: {last} then {now}")
        last = now


def steady_alarms(bench: Juju, seconds: float = 10) -> list[dict]:
    """The active alarms once no more are being raised: each member that applies a write past
    the quota raises its own NOSPACE, a beat after the one that refused the write."""
    deadline = time.monotonic() + seconds

    def alarms() -> list[dict]:
        data = etcdctl_json(bench, bench.client_endpoints()[0], "alarm", "list")
        return sorted(data.get("alarms") or [], key=lambda a: a["memberID"])

    last = alarms()
    while True:
        time.sleep(0.5)
        now = alarms()
        if now == last:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"the alarms keep changing: {last} then {now}")
        last = now


def defrags_logged(bench: Juju) -> dict[str, int]:
    """How many defragmentations each unit's etcd has finished, per its own log."""
    return {
        name: unit.pod.log_path.read_text(errors="replace").count('"msg":"finished defragment"')
        for name, unit in bench.units.items()
    }


def host_etcdctl(bench: Juju, *args: str) -> str:
    """etcdctl from the host against every member; a membership change right after another
    meets etcd's 5 s "unhealthy cluster" rule, which is waited out."""
    deadline = time.monotonic() + 20
    while True:
        out = subprocess.run(
            [etcdctl(bench.version), f"--endpoints={','.join(bench.client_endpoints())}"]
            + ["--dial-timeout=2s", "--command-timeout=5s", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if out.returncode == 0:
            return out.stdout
        if "unhealthy cluster" not in out.stderr or time.monotonic() > deadline:
            raise AssertionError(f"etcdctl {' '.join(args)}: {out.stderr.strip()[-400:]}")
        time.sleep(0.5)


def get_at(bench: Juju, key: str, revision: int) -> str:
    """A read of `key` as of `revision`: its value, or etcd's error."""
    try:
        data = etcdctl_json(bench, bench.client_endpoints()[0], "get", key, f"--rev={revision}")
    except RuntimeError as error:
        return str(error)
    return "found" if data.get("kvs") else "absent"


def host_snapshot_status(bench: Juju, path: Path) -> dict:
    """etcd's own reading of a snapshot file, with the host's tool of the version under test."""
    tool = source_dir(bench.version) / ("etcdutl" if bench.version != "3.4" else "etcdctl")
    out = subprocess.run(
        [str(tool), "snapshot", "status", "-w", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)


def backups(bench: Juju, unit: str) -> Path:
    return bench.units[unit].pod.storage_dir / "backups"


def files(bench: Juju, unit: str) -> dict[str, str]:
    """The snapshot folder's files (the hidden staging folder aside) -> their sha256."""
    folder = backups(bench, unit)
    if not folder.is_dir():
        return {}
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def next_second() -> None:
    """Sleep into the next wall-clock second: snapshots record their creation to the second."""
    time.sleep(1.05 - time.time() % 1)


def take(bench: Juju, unit: str, name: str, **params: object) -> dict:
    next_second()
    return ok(bench.run_action(unit, "snapshot", name=name, **params))


@contextmanager
def fake_learner(bench: Juju) -> Iterator[str]:
    """A learner that never starts (nothing listens at its peer URL): never in sync."""
    out = host_etcdctl(
        bench,
        "-w",
        "json",
        "member",
        "add",
        "fake",
        "--peer-urls=http://10.9.9.9:2380",
        "--learner",
    )
    member_id = f"{json.loads(out)['member']['ID']:x}"
    try:
        yield member_id
    finally:
        host_etcdctl(bench, "member", "remove", member_id)


@contextmanager
def outside_learner(bench: Juju) -> Iterator[tuple[str, str]]:
    """A real etcd learner with no unit behind it, in a pod of its own on the bench network:
    one the charm has not promoted (no hook runs while it lives). Yields (member id, its client
    endpoint); it is removed from the cluster and its pod deleted afterwards."""
    host = "outside.bench.test"
    peer_url = f"http://{host}:2380"
    net = bench.network.add_pod("outside", (host,))
    pod = Pod(
        name="outside",
        root=bench.workdir / "outside",
        bin_dir=bin_dir(bench.version, bench.workdir),
    )
    pod.boot(net)
    member_id = None
    try:
        initial = [f"{m.name}={m.peer_urls[0]}" for m in member_table(bench)[1]]
        out = host_etcdctl(
            bench, "-w", "json", "member", "add", "outside", f"--peer-urls={peer_url}", "--learner"
        )
        member_id = f"{json.loads(out)['member']['ID']:x}"
        command = (
            "etcd --name outside --data-dir /var/lib/etcd/data"
            " --listen-peer-urls http://0.0.0.0:2380 --listen-client-urls http://0.0.0.0:2379"
            f" --advertise-client-urls http://{host}:2379 --initial-advertise-peer-urls {peer_url}"
            f" --initial-cluster {','.join([*initial, f'outside={peer_url}'])}"
            " --initial-cluster-state existing"
        )
        pod.start("etcd", command, kill_delay=5)
        yield member_id, f"http://{net.address}:2379"
    finally:
        if member_id and member_id in {m.id for m in member_table(bench)[1]}:
            host_etcdctl(bench, "member", "remove", member_id)
        pod.delete(grace=False)
        bench.network.remove_pod("outside")


def await_in_sync(bench: Juju, endpoint: str, seconds: float = 20) -> None:
    """Until the member at `endpoint` has the leader's raft index (and so its data)."""
    leader = statuses(bench)[etcd_leader(bench)]["raftIndex"]
    deadline = time.monotonic() + seconds
    while True:
        try:
            (entry,) = etcdctl_json(bench, endpoint, "endpoint", "status")
            if entry["Status"]["raftIndex"] >= leader:
                return
        except RuntimeError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{endpoint} did not catch up with raft index {leader}")
        time.sleep(0.2)


# ---- snapshots ----------------------------------------------------------------------------------


def test_snapshot_list_remove_and_retention(bench: Juju) -> None:
    bench.deploy(3)
    bench.settle()
    leader, other = bench.leader, followers(bench)[0]
    assert leader is not None
    write_keys(bench, "snap", 30)
    revision = statuses(bench)[leader]["header"]["revision"]

    # A named snapshot on the leader: from its own member, verified, where it says it is.
    saved = ok(bench.run_action(leader, "snapshot", name="first"))
    path = backups(bench, leader) / "first.db"
    assert path.is_file()
    assert saved["path"] == "/var/lib/etcd/backups/first.db"
    assert saved["member"] == member_name(leader)
    assert saved["size"] == str(path.stat().st_size)
    assert saved["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    etcd_says = host_snapshot_status(bench, path)
    assert int(saved["revision"]) == etcd_says["revision"] == revision
    assert int(saved["keys"]) == etcd_says["totalKey"] >= 30
    assert saved["cluster-id"] == next(iter(member_table(bench)[0]))
    sidecar = json.loads((backups(bench, leader) / "first.json").read_text())
    assert sidecar["sha256"] == saved["sha256"] and sidecar["revision"] == revision
    assert not list((backups(bench, leader) / ".incoming").glob("*")), "staging left behind"

    # A default-named snapshot on another unit: from that unit's own member, on its storage.
    theirs = ok(bench.run_action(other, "snapshot"))
    assert re.fullmatch(r"snapshot-\d{8}-\d{6}", theirs["name"]), theirs["name"]
    assert theirs["member"] == member_name(other)
    assert (backups(bench, other) / f"{theirs['name']}.db").is_file()
    assert set(files(bench, leader)) == {"first.db", "first.json"}, "it landed on the leader"

    listed = ok(bench.run_action(leader, "list-snapshots"))
    assert listed["count"] == "1" and listed["folder"] == "/var/lib/etcd/backups"
    header, row = listed["snapshots"].splitlines()
    assert header.split() == ["NAME", "SIZE", "REVISION", "KEYS", "CREATED"], header
    name, _, _, shown_revision, shown_keys, created = row.split()  # size: "20.0 KiB"
    assert (name, shown_revision, shown_keys) == ("first", str(revision), saved["keys"]), row
    assert created == saved["created"]
    assert ok(bench.run_action(other, "list-snapshots"))["count"] == "1"

    # Refusals: a name that is a path or hidden, a name taken, a snapshot that is not there.
    before = files(bench, leader)
    for bad in ("a/b", "../first", "..", ".hidden", "a..b", "-x"):
        refused(bench.run_action(leader, "snapshot", name=bad), "invalid snapshot name")
        refused(bench.run_action(leader, "remove-snapshot", name=bad), "invalid snapshot name")
    refused(bench.run_action(leader, "snapshot", name="first"), "'first' exists already")
    refused(bench.run_action(leader, "remove-snapshot", name="nope"), "no snapshot named 'nope'")
    refused(bench.run_action(other, "remove-snapshot", name="first"), "no snapshot named 'first'")
    assert files(bench, leader) == before, "a refused action touched the snapshots"
    assert not (backups(bench, leader).parent / "first.db").exists(), "written outside backups/"

    # Retention goes by when they were taken, not by name: the oldest go.
    take(bench, leader, "s-c")
    take(bench, leader, "s-b")
    newest = take(bench, leader, "s-a", keep=2)
    assert newest["removed"] == "first, s-c", newest["removed"]
    assert set(files(bench, leader)) == {"s-b.db", "s-b.json", "s-a.db", "s-a.json"}
    table = ok(bench.run_action(leader, "list-snapshots"))["snapshots"]
    names = [line.split()[0] for line in table.splitlines()[1:]]
    assert names == ["s-b", "s-a"], table

    gone = ok(bench.run_action(leader, "remove-snapshot", name="s-b"))
    assert gone == {"removed": "s-b", "left": "1"}
    assert set(files(bench, leader)) == {"s-a.db", "s-a.json"}
    ok(bench.run_action(other, "remove-snapshot", name=theirs["name"]))
    assert files(bench, other) == {}
    assert ok(bench.run_action(other, "list-snapshots"))["snapshots"] == "none"
    assert_formed(bench, 3)


# ---- leadership and learners --------------------------------------------------------------------


def test_cluster_status_move_leader_and_promote(bench: Juju) -> None:
    bench.deploy(3)
    bench.settle()
    leader = bench.leader
    assert leader is not None
    ids = member_ids(bench)
    cluster_id = next(iter(member_table(bench)[0]))

    # cluster-status, on a unit that is not the leader, agrees with etcd.
    status = ok(bench.run_action(followers(bench)[0], "cluster-status"))
    actual = statuses(bench)
    raft_leader = etcd_leader(bench)
    assert status["cluster-id"] == cluster_id
    assert (status["quorum"], status["voters"], status["learners"]) == ("yes", "3", "0")
    assert status["leader"] == member_name(raft_leader)
    assert status["alarms"] == "none"
    for unit, said in actual.items():
        entry = status[member_name(unit)]
        assert entry["id"] == ids[member_name(unit)]
        assert entry["role"] == ("leader" if unit == raft_leader else "follower")
        assert entry["revision"] == str(said["header"]["revision"])
        assert entry["db-size"] == str(said["dbSize"])
        assert entry["version"] == said["version"]
        assert entry["health"] == "healthy"

    # move-leader by unit name, then by member id: etcd's leader really changes, one term each.
    first, second = [n for n in sorted(bench.units) if n != raft_leader]
    term = raft_term(bench)
    moved = ok(bench.run_action(leader, "move-leader", to=first))
    assert moved["changed"] == "true" and moved["from"] == member_name(raft_leader)
    assert moved["leader"] == member_name(first)
    assert etcd_leader(bench) == first
    moved = ok(bench.run_action(leader, "move-leader", to=ids[member_name(second)]))
    assert (moved["from"], moved["leader"]) == (member_name(first), member_name(second))
    assert etcd_leader(bench) == second
    assert raft_term(bench) == term + 2, "an election happened besides the two handovers"
    same = ok(bench.run_action(leader, "move-leader", to=member_name(second)))
    assert same == {"leader": member_name(second), "changed": "false"}

    # Refusals leave the members and the leader as they are.
    members = member_table(bench)
    term = raft_term(bench)
    refused(bench.run_action(leader, "move-leader", to="etcd-k8s/9"), "no member 'etcd-k8s/9'")
    refused(bench.run_action(leader, "promote", member="etcd-k8s/9"), "no member 'etcd-k8s/9'")
    refused(bench.run_action(leader, "promote", member=first), "already a voter")
    refused(bench.run_action(leader, "promote"), "there is no learner to promote")
    for unit in followers(bench):
        refused(bench.run_action(unit, "move-leader", to=first), "run move-leader on the leader")
        refused(bench.run_action(unit, "promote"), "run promote on the leader")
    assert member_table(bench) == members
    assert etcd_leader(bench) == second and raft_term(bench) == term

    # A learner that never catches up: listed as such, neither promoted nor made leader.
    with fake_learner(bench) as fake:
        status = ok(bench.run_action(leader, "cluster-status"))
        assert (status["voters"], status["learners"]) == ("3", "1")
        entry = status[f"unstarted-{fake}"]
        assert (entry["role"], entry["client-url"]) == ("learner", "not started")
        for params in ({"member": fake}, {}):
            refused(bench.run_action(leader, "promote", **params), f"learner {fake}", "not in sync")
        refused(bench.run_action(leader, "move-leader", to=fake), "is a learner")
        assert [m.id for m in member_table(bench)[1] if m.is_learner] == [fake]
        assert etcd_leader(bench) == second and raft_term(bench) == term
    assert fake not in member_ids(bench).values()

    # A learner that has caught up, which the charm has not promoted: promote makes it a voter.
    with outside_learner(bench) as (learner, endpoint):
        await_in_sync(bench, endpoint)
        promoted = ok(bench.run_action(leader, "promote", member=learner))
        assert promoted["member-id"] == learner
        listed = {m.id: m for m in member_table(bench)[1]}
        assert not listed[learner].is_learner, listed[learner]
    assert_formed(bench, 3)


# ---- history: compact and defrag ----------------------------------------------------------------


def test_compact_and_defrag(bench: Juju) -> None:
    bench.deploy(3)
    bench.settle()
    leader = bench.leader
    assert leader is not None
    # ~6 MiB of history under one key: fragmentation once compacted.
    etcd = client(bench)
    blob = b"f" * (64 * 1024)
    for _ in range(100):
        etcd.put("/frag/blob", blob)
    etcd.close()
    revision = statuses(bench)[leader]["header"]["revision"]
    sizes = steady_db_sizes(bench)
    assert min(sizes.values()) > 4_000_000, sizes
    logged = defrags_logged(bench)

    # Leader-only actions on another unit: refused, nothing compacted or defragmented.
    for unit in followers(bench):
        refused(bench.run_action(unit, "defrag"), "run defrag on the leader unit")
        refused(bench.run_action(unit, "compact"), "run compact on the leader unit")
    refused(bench.run_action(leader, "compact", revision=revision + 1000), "in the future")
    refused(bench.run_action(leader, "defrag", member="etcd-k8s/9"), "no member 'etcd-k8s/9'")
    assert get_at(bench, "/frag/blob", revision - 50) == "found"
    assert defrags_logged(bench) == logged and db_sizes(bench) == sizes

    compacted = ok(bench.run_action(leader, "compact"))
    assert compacted["compacted-revision"] == compacted["current-revision"] == str(revision)
    assert "compacted" in get_at(bench, "/frag/blob", revision - 50)
    assert get_at(bench, "/frag/blob", revision) == "found"
    refused(bench.run_action(leader, "compact", revision=revision - 10), "compacted already")
    # Compaction frees pages inside the db file; the file itself stays as large.
    sizes = steady_db_sizes(bench)
    assert min(sizes.values()) > 4_000_000, sizes

    # A threshold above what can be reclaimed skips every member.
    skipped = ok(bench.run_action(leader, "defrag", threshold=1 << 30))
    for unit in bench.units:
        assert "below threshold" in skipped[member_name(unit)]["result"], skipped
    assert skipped["reclaimed"] == "0"
    assert defrags_logged(bench) == logged and db_sizes(bench) == sizes

    # One member by name: only it shrinks.
    raft_leader = etcd_leader(bench)
    one = next(n for n in followers(bench) if n != raft_leader)
    only = ok(bench.run_action(leader, "defrag", member=member_name(one)))
    assert set(only) == {member_name(one), "reclaimed"}, only
    after = db_sizes(bench)
    assert after[one] < sizes[one] // 4, (sizes, after)
    assert {u: s for u, s in after.items() if u != one} == {
        u: s for u, s in sizes.items() if u != one
    }
    assert only[member_name(one)]["db-size-after"] == str(after[one])

    # Every member, the etcd leader last; all small now.
    mark = len(bench.log)
    every = ok(bench.run_action(leader, "defrag"))
    final = db_sizes(bench)
    for unit in bench.units:
        said = every[member_name(unit)]
        assert said["result"] == "defragmented", every
        assert (said["db-size-before"], said["db-size-after"]) == (
            str(after[unit]),
            str(final[unit]),
        )
        assert final[unit] < sizes[unit] // 4, (sizes, final)
    assert int(every["reclaimed"]) == sum(after[u] - final[u] for u in bench.units)
    order = [line for line in bench.log[mark:] if "decision: defrag" in line]
    assert len(order) == 3 and f"member={member_name(raft_leader)} " in order[-1], order
    assert {u: n - logged[u] for u, n in defrags_logged(bench).items()} == {
        u: (2 if u == one else 1) for u in bench.units
    }

    # Without quorum: refused before anything is touched; cluster-status still says what the
    # member left says of itself (3.5 lists no members without quorum, 3.4 does).
    for unit in followers(bench):
        bench.units[unit].pod.stop("etcd")
    logged = defrags_logged(bench)
    refused(bench.run_action(leader, "defrag"), "defrag needs a cluster with quorum")
    refused(bench.run_action(leader, "compact"), "compact needs a cluster with quorum")
    assert defrags_logged(bench) == logged
    alone = ok(bench.run_action(leader, "cluster-status"))
    assert alone["quorum"] == "no", alone
    assert alone[member_name(leader)]["revision"] == str(revision), alone
    assert alone[member_name(leader)]["db-size"] == str(final[leader]), alone


# ---- alarms -------------------------------------------------------------------------------------


def test_nospace_alarm_list_and_disarm(bench: Juju) -> None:
    bench.config["quota-backend-bytes"] = QUOTA
    bench.deploy(3)
    bench.settle()
    leader = bench.leader
    assert leader is not None
    for unit in bench.units.values():
        config = unit.pod.container_dir("/etc/etcd") / "etcd.conf.yml"
        assert yaml.safe_load(config.read_text())["quota-backend-bytes"] == QUOTA
    assert ok(bench.run_action(leader, "alarm-list")) == {"count": "0", "alarms": "none"}
    assert ok(bench.run_action(leader, "alarm-disarm"))["result"] == "nothing to disarm"

    # Overwrite one key with 512 KiB values until etcd refuses: the history fills the quota.
    etcd = client(bench)
    blob = b"n" * (512 * 1024)
    refusal = None
    for _ in range(2 * QUOTA // len(blob)):
        try:
            etcd.put("/nospace/blob", blob)
        except Exception as error:  # etcd3 passes grpc's RESOURCE_EXHAUSTED through
            refusal = error
            break
    assert refusal is not None, "etcd took twice its quota"
    assert "database space exceeded" in str(refusal), refusal
    raised = steady_alarms(bench)
    assert raised and all(a["alarm"] == 1 for a in raised), raised  # 1: NOSPACE
    names = {v: k for k, v in member_ids(bench).items()}
    raisers = [f"{a['memberID']:x}" for a in raised]
    expected = {f"NOSPACE on {names[i]} ({i})" for i in raisers}

    # Seen from any unit, and in cluster-status.
    listed = ok(bench.run_action(followers(bench)[0], "alarm-list"))
    assert listed["count"] == str(len(raised))
    assert set(listed["alarms"].split("; ")) == expected, listed
    assert set(ok(bench.run_action(leader, "cluster-status"))["alarms"].split("; ")) == expected

    # Disarming is the leader's; elsewhere it is refused and the alarm stays.
    for unit in followers(bench):
        refused(bench.run_action(unit, "alarm-disarm"), "run alarm-disarm on the leader unit")
    assert steady_alarms(bench) == raised

    revision = statuses(bench)[leader]["header"]["revision"]
    disarmed = ok(bench.run_action(leader, "alarm-disarm"))
    assert disarmed["result"] == "disarmed", disarmed
    assert disarmed["compacted-revision"] == str(revision)
    assert "warning" not in disarmed, disarmed
    sizes = db_sizes(bench)
    for unit in bench.units:
        assert disarmed["defrag"][member_name(unit)]["result"] == "defragmented", disarmed
        assert sizes[unit] < QUOTA // 4, sizes
    assert int(disarmed["db-size"]) == max(sizes.values())
    assert steady_alarms(bench) == []
    assert ok(bench.run_action(leader, "alarm-list")) == {"count": "0", "alarms": "none"}
    assert "compacted" in get_at(bench, "/nospace/blob", revision - 1)

    # Writes go through again.
    etcd.put("/nospace/after", "ok")
    etcd.put("/nospace/blob", blob)
    assert etcd.get("/nospace/after")[0] == b"ok"
    etcd.close()
    assert_formed(bench, 3)


def test_snapshot_refuses_when_the_disk_is_too_full(bench: Juju) -> None:
    """A small filesystem on the unit's backups folder: the space check refuses before any byte
    is written, and no file (not even a partial one) is left behind."""
    bench.deploy(1)
    bench.settle()
    unit = next(iter(bench.units))
    folder = bench.units[unit].pod.storage_dir / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], check=True)
    try:
        result = bench.run_action(unit, "snapshot", name="full")
        assert result.failure and "not enough space" in result.failure, result.failure
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", str(folder)], check=True)
    assert bench.run_action(unit, "snapshot", name="roomy").failure is None
    assert (folder / "roomy.db").exists()
