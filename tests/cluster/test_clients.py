"""Client relations on real etcd: two client charms (tests/bench/client_charm.py, written with
the published library) related at once with client TLS on. Each reaches its own prefix and
nothing else, with the identities they handed over; refusals leave the others alone; a removed
relation's certificate is refused; endpoints follow scaling; the root password stays in its
secret and rotates."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
import etcd3  # noqa: E402

from charms.etcd_k8s.v0.etcd_client import EtcdConnection  # noqa: E402
from tests.bench.binaries import etcdctl  # noqa: E402
from tests.bench.ca import Authority, Identity, self_signed_client  # noqa: E402
from tests.bench.checks import assert_formed, etcdctl_json, restarts  # noqa: E402
from tests.bench.juju import ClientApp, Juju  # noqa: E402

CLIENT_TLS = "client-certificates"
DENIED = (grpc.RpcError, etcd3.exceptions.Etcd3Exception)


def connection(app: ClientApp, ident: Identity) -> EtcdConnection:
    """What the client charm got, as its library hands it over; the CA goes to its file."""
    report = app.report
    assert report.get("connection"), f"{app.name} is not served: {report}"
    data: dict[str, Any] = dict(report["connection"])
    data["endpoints"] = tuple(data["endpoints"])
    conn = EtcdConnection(**data)
    ident.ca.write_text(conn.tls_ca)
    return conn


def etcd3_for(j: Juju, conn: EtcdConnection, ident: Identity, unit: str) -> Any:
    # The endpoints name the pods; the host reaches a pod by its address (in the cert's SANs).
    endpoint = f"https://{j.address(unit)}:2379"
    return conn.etcd3_client(str(ident.cert), str(ident.key), str(ident.ca), endpoint, timeout=5)


def member_client_urls(j: Juju) -> list[str]:
    members = etcdctl_json(j, j.client_endpoints()[0], "member", "list")["members"]
    return sorted(url for m in members if not m.get("isLearner") for url in m["clientURLs"][:1])


def ctl(j: Juju, *args: str, ident: Identity, env: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        out = subprocess.run(
            [etcdctl(j.version), f"--endpoints={','.join(j.client_endpoints('https'))}"]
            + ["--dial-timeout=2s", "--command-timeout=5s", *ident.etcdctl_args(), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as hung:
        return 124, f"timed out: {hung.stdout!r} {hung.stderr!r}"
    return out.returncode, (out.stdout + out.stderr).strip()


def assert_isolated(j: Juju, mine: tuple[EtcdConnection, Identity], theirs: str) -> None:
    conn, ident = mine
    for unit in j.units:
        client = etcd3_for(j, conn, ident, unit)
        key = f"{conn.prefix}from-{unit}"
        client.put(key, "mine")
        assert client.get(key)[0] == b"mine"
        with pytest.raises(DENIED):
            client.get(f"{theirs}x")
        with pytest.raises(DENIED):
            client.put(f"{theirs}x", "intruder")
        with pytest.raises(DENIED):
            client.put("/outside-any-prefix", "x")
        client.close()


def test_clients_get_their_own_prefix_and_nothing_else(bench: Juju) -> None:
    j = bench
    j.deploy(3, leader=0)
    j.settle()
    assert_formed(j, 3)
    work = Path(j.workdir) / "clients"
    ids = {name: self_signed_client(work, name) for name in ("client-a", "client-b")}

    # Without client TLS a client waits, and says why.
    a = j.relate_client("client-a", "/a/", ids["client-a"].cert.read_text(), work / "a.json")
    j.settle()
    assert a.report["connection"] is None
    assert "client TLS is off" in a.report["status"], a.report
    assert "client TLS is off" in str(a.status)

    # Client TLS on (etcd auth follows), and the second client related at the same time.
    j.relate_certificates(CLIENT_TLS)
    b = j.relate_client("client-b", "/b/", ids["client-b"].cert.read_text(), work / "b.json")
    j.settle()
    root = j.provider.authority.client_identity(work, "root")  # CN root: etcd's root user
    j.client_identity = root
    assert_formed(j, 3)
    conns = {app.name: connection(app, ids[app.name]) for app in (a, b)}
    for name, conn in conns.items():
        assert conn.username == name
        assert list(conn.endpoints) == member_client_urls(j)
        assert conn.version.startswith(j.version), conn.version
        assert "active" in str(j.client_apps[name].status).lower()
    assert_isolated(j, (conns["client-a"], ids["client-a"]), "/b/")
    assert_isolated(j, (conns["client-b"], ids["client-b"]), "/a/")
    # Auth is on: a certificate from the provider's CA with a CN that is no user gets nothing.
    nobody = j.provider.authority.client_identity(work, "nobody")
    code, out = ctl(j, "put", "/a/x", "y", ident=nobody)
    assert code != 0 and "permission denied" in out, out

    # ---- refusals: each with its reason, no restart, nobody else touched
    stranger_ca = Authority("client-made-ca")
    others = work / "refused"  # own directory: "root" here must not overwrite the test's root
    bad: dict[str, tuple[str, str, str]] = {
        "no-prefix": ("", ids["client-a"].cert.read_text(), "no prefix"),
        "whole": ("/", self_signed_client(others, "whole").cert.read_text(), "whole keyspace"),
        "overlap": ("/a/deeper/", self_signed_client(others, "ov").cert.read_text(), "overlaps"),
        "is-ca": ("/ca/", stranger_ca.pem, "CA certificate"),
        "garbage": (
            "/g/",
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
            "malformed",
        ),
        "as-root": ("/r/", self_signed_client(others, "root").cert.read_text(), "reserved"),
        "same-user": ("/s/", ids["client-b"].cert.read_text(), "already the user"),
    }
    mark = len(j.log)
    refused = {
        name: j.relate_client(name, prefix, pem, work / f"{name}.json")
        for name, (prefix, pem, _) in bad.items()
    }
    j.settle()
    for name, (_, _, why) in bad.items():
        status = refused[name].report["status"] or ""
        assert status.startswith("refused:") and why in status, (name, status)
        assert "blocked" in str(refused[name].status).lower(), refused[name].status
        assert refused[name].report["connection"] is None
    assert restarts(j, mark) == 0, "a refused client made the members restart"
    assert str(j.app_status).count("client relations refused: ") == 1, j.app_status
    assert "overlap (relation" in str(j.app_status), j.app_status
    assert_isolated(j, (conns["client-a"], ids["client-a"]), "/b/")
    assert_isolated(j, (conns["client-b"], ids["client-b"]), "/a/")
    for name in bad:
        j.remove_client(name)
    j.settle()

    # ---- the root password: only in its secret; rotates; the charm keeps working
    shown = j.run_action("etcd-k8s/1", "get-root-password")
    assert shown.failure is None, shown.failure
    password = shown.results["password"]
    assert len(password) >= 24
    as_root = {"ETCDCTL_USER": "root", "ETCDCTL_PASSWORD": password}
    code, out = ctl(j, "user", "list", ident=ids["client-b"], env=as_root)
    assert code == 0 and "client-a" in out and "client-b" in out, out
    rotated = j.run_action("etcd-k8s/0", "rotate-root-password")
    assert rotated.failure is None, rotated.failure
    code, out = ctl(j, "user", "list", ident=ids["client-b"], env=as_root)
    assert code != 0 and "authentication failed" in out, out
    new = j.run_action("etcd-k8s/2", "get-root-password").results["password"]
    assert new != password
    code, out = ctl(
        j, "user", "list", ident=ids["client-b"], env={**as_root, "ETCDCTL_PASSWORD": new}
    )
    assert code == 0, out
    for secret in (password, new):
        assert not [line for line in j.juju_logs if secret in line]
        bags = [*j.databags.values(), j.app_data, *j.client_answers.values()]
        assert not [bag for bag in bags if secret in str(bag)]
        for unit in j.units.values():
            assert secret not in unit.pod.log_path.read_text(errors="replace")
            assert secret not in str(unit.layers)

    # ---- a new certificate for B (new CN): the user follows, the old one is gone
    b2 = self_signed_client(work, "client-b2")
    j.set_client_certificate("client-b", b2.cert.read_text())
    j.settle()
    conn_b2 = connection(b, b2)
    assert conn_b2.username == "client-b2"
    assert_isolated(j, (conn_b2, b2), "/a/")
    code, out = ctl(j, "user", "list", ident=root)
    assert "client-b2" in out and "client-b\n" not in out + "\n", out

    # ---- A's relation removed: its user, role and certificate go; B is untouched
    j.remove_client("client-a")
    j.settle()
    code, out = ctl(j, "user", "list", ident=root)
    assert code == 0 and "client-a" not in out, out
    code, out = ctl(j, "role", "list", ident=root)
    assert code == 0 and "etcd-client-30" not in out, out
    for unit in j.units:
        with pytest.raises(DENIED):
            client = etcd3_for(j, conns["client-a"], ids["client-a"], unit)
            client.get("/a/from-etcd-k8s/0")
    assert_isolated(j, (conn_b2, b2), "/a/")

    # ---- endpoints follow the cluster: 3 -> 5 -> 3
    j.add_unit(2)
    j.settle()
    assert_formed(j, 5)
    assert list(connection(b, b2).endpoints) == member_client_urls(j)
    assert len(connection(b, b2).endpoints) == 5
    j.remove_unit(2)
    j.settle()
    assert_formed(j, 3)
    assert list(connection(b, b2).endpoints) == member_client_urls(j)
    assert_isolated(j, (connection(b, b2), b2), "/a/")
    assert not j.failures(), j.failures()
