"""What the tests observe from outside the charm: real etcdctl from the host against the pods'
addresses, and an independent etcd3 client for the data."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
import etcd3  # noqa: E402  (needs the variable above with today's protobuf)

from tests.bench.binaries import etcdctl  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402


@dataclass(frozen=True)
class Listed:
    id: str
    name: str
    is_learner: bool
    peer_urls: tuple[str, ...]


def log_count(j: Juju, since: int, text: str) -> int:
    """Bench log lines (hooks, decisions) since index `since` that contain `text`."""
    return sum(1 for line in j.log[since:] if text in line)


def restarts(j: Juju, since: int) -> int:
    return log_count(j, since, "decision: restart member")


def tls_args(j: Juju) -> list[str]:
    return j.client_identity.etcdctl_args() if j.client_identity else []


def etcdctl_json(j: Juju, endpoint: str, *args: str) -> dict:
    out = subprocess.run(
        [etcdctl(j.version), f"--endpoints={endpoint}", "--dial-timeout=2s", *tls_args(j)]
        + ["-w", "json", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if out.returncode != 0:
        raise RuntimeError(f"etcdctl {' '.join(args)} at {endpoint}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def member_table(j: Juju) -> tuple[set[str], list[Listed]]:
    """Cluster ids as every live member reports them, and the member list."""
    cluster_ids: set[str] = set()
    listed: list[Listed] = []
    for endpoint in j.client_endpoints():
        data = etcdctl_json(j, endpoint, "member", "list")
        cluster_ids.add(f"{data['header']['cluster_id']:x}")
        listed = [
            Listed(
                f"{m['ID']:x}", m.get("name", ""), bool(m.get("isLearner")), tuple(m["peerURLs"])
            )
            for m in data["members"]
        ]
    return cluster_ids, sorted(listed, key=lambda m: m.name)


def assert_formed(j: Juju, units: int) -> list[Listed]:
    """One cluster id, every unit a started voter, no learner, no extra member, no failed hook."""
    cluster_ids, listed = member_table(j)
    assert len(cluster_ids) == 1, f"members disagree on the cluster id: {cluster_ids}"
    names = sorted(u.pod_name for u in j.units.values())
    assert [m.name for m in listed] == names, f"member list {listed} != units {names}"
    assert not [m for m in listed if m.is_learner], f"learner left: {listed}"
    assert len(j.units) == units
    assert j.failures() == [], "\n".join(j.failures())
    return listed


def client(j: Juju, unit: str | None = None) -> etcd3.Etcd3Client:
    name = unit or next(iter(j.units))
    ident = j.client_identity
    if ident is None:
        return etcd3.client(host=j.address(name), port=2379, timeout=10)
    return etcd3.client(
        host=j.address(name),
        port=2379,
        timeout=10,
        ca_cert=str(ident.ca),
        cert_key=str(ident.key),
        cert_cert=str(ident.cert),
    )


def write_keys(j: Juju, prefix: str, count: int) -> dict[str, str]:
    written = {}
    c = client(j)
    for i in range(count):
        key, value = f"/{prefix}/{i:05d}", f"value-{prefix}-{i}"
        c.put(key, value)
        written[key] = value
    c.close()
    return written


def assert_keys(j: Juju, written: dict[str, str]) -> None:
    """Every key is readable, with its value, from every member (serializable read: local data)."""
    for name in j.units:
        within(10, functools.partial(_assert_keys_on, j, name, written))


def _assert_keys_on(j: Juju, name: str, written: dict[str, str]) -> None:
    if True:
        c = client(j, name)
        prefixes = {k.split("/")[1] for k in written}
        found: dict[str, str] = {}
        for prefix in prefixes:
            for value, meta in c.get_prefix(f"/{prefix}/", serializable=True):
                found[meta.key.decode()] = value.decode()
        c.close()
        missing = {k for k in written if found.get(k) != written[k]}
        assert not missing, f"{name} lacks {len(missing)} keys, e.g. {sorted(missing)[:3]}"


def within(seconds: float, check: Callable[[], None]) -> None:
    """Run `check` until it passes or `seconds` run out: a follower's local read may lag a beat."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def endpoint_statuses(j: Juju) -> list[dict]:
    out = subprocess.run(
        [etcdctl(j.version), f"--endpoints={','.join(j.client_endpoints())}", "--dial-timeout=2s"]
        + [*tls_args(j), "--command-timeout=3s", "-w", "json", "endpoint", "status"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return json.loads(out.stdout or "[]")


def raft_term(j: Juju) -> int:
    return max(s["Status"]["raftTerm"] for s in endpoint_statuses(j))


def etcd_leader(j: Juju) -> str:
    """The unit whose member is the raft leader."""
    statuses = endpoint_statuses(j)
    leader = statuses[0]["Status"]["leader"]
    for name in j.units:
        for status in statuses:
            if status["Status"]["header"]["member_id"] == leader and status["Endpoint"].endswith(
                f"://{j.address(name)}:2379"
            ):
                return name
    raise AssertionError(f"no unit holds the raft leader {leader:x}")


def make_etcd_leader(j: Juju, unit: str) -> None:
    """Hand raft leadership to `unit`'s member, as an operator would with move-leader."""
    target = next(
        s["Status"]["header"]["member_id"]
        for s in endpoint_statuses(j)
        if s["Endpoint"].endswith(f"://{j.address(unit)}:2379")
    )
    subprocess.run(
        [etcdctl(j.version), f"--endpoints={','.join(j.client_endpoints())}", *tls_args(j)]
        + ["move-leader", f"{target:x}"],
        check=True,
        capture_output=True,
        timeout=30,
    )


def wait_healthy(j: Juju, seconds: float = 30.0) -> None:
    """Until every member answers `endpoint health` (a linearizable read through it)."""
    deadline = time.monotonic() + seconds
    while True:
        out = subprocess.run(
            [etcdctl(j.version), f"--endpoints={','.join(j.client_endpoints())}", *tls_args(j)]
            + ["--dial-timeout=2s", "--command-timeout=3s", "-w", "json", "endpoint", "health"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        health = json.loads(out.stdout or "[]")
        if len(health) == len(j.units) and all(h.get("health") for h in health):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not every member is healthy: {health} {out.stderr[-300:]}")
        time.sleep(0.5)
