"""TLS through the certificates relations, on real etcd: plaintext -> peer TLS -> client TLS
-> renewal -> new CA -> TLS removed, with an etcd3 writer running the whole way; and scaling
with TLS on. The bench plays the certificates provider (tests/bench/ca.py)."""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import stat
import subprocess
from pathlib import Path

import grpc
import pytest
from cryptography import x509

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
import etcd3  # noqa: E402

from tests.bench.binaries import etcdctl  # noqa: E402
from tests.bench.ca import Authority, Identity  # noqa: E402
from tests.bench.checks import (  # noqa: E402
    assert_formed,
    etcdctl_json,
    log_count,
    member_table,
    raft_term,
    restarts,
)
from tests.bench.juju import Juju  # noqa: E402
from tests.bench.writer import Writer  # noqa: E402

PEER = "peer-certificates"
CLIENT = "client-certificates"


def ctl(j: Juju, endpoint: str, *args: str, extra: list[str] | None = None) -> tuple[int, str]:
    out = subprocess.run(
        [etcdctl(j.version), f"--endpoints={endpoint}", "--dial-timeout=2s"]
        + ["--command-timeout=3s", *(extra or []), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.returncode, (out.stdout + out.stderr).strip()


def peer_urls(j: Juju) -> list[str]:
    return [url for member in member_table(j)[1] for url in member.peer_urls]


def served_certificate(j: Juju, unit: str, ident: Identity) -> x509.Certificate:
    """The certificate a member's client port presents, read with a full mutual handshake."""
    context = ssl.create_default_context(cafile=str(ident.ca))
    context.load_cert_chain(str(ident.cert), str(ident.key))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((j.address(unit), 2379), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=j.address(unit)) as tls_socket,
    ):
        der = tls_socket.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def plaintext_refused(j: Juju) -> None:
    for name in j.units:
        code, out = ctl(j, f"http://{j.address(name)}:2379", "put", "/probe", "x")
        assert code != 0, f"{name} took a plaintext write: {out}"
        client = etcd3.client(host=j.address(name), port=2379, timeout=3)
        with pytest.raises((etcd3.exceptions.Etcd3Exception, grpc.RpcError)):
            client.put("/probe", "x")
        client.close()


def moves(j: Juju, since: int) -> int:
    return log_count(j, since, "decision: move-leader")


def assert_no_secret_leaked(j: Juju) -> None:
    """Private keys only in Juju secrets and the unit's own key files (mode 0600)."""
    assert not [line for line in j.juju_logs if "PRIVATE KEY" in line]
    bags = [*j.databags.values(), j.app_data, *j.tls_relations.values()]
    bags += [bag for u in j.units.values() for bag in u.tls_bags.values()]
    assert not [bag for bag in bags if "PRIVATE KEY" in str(bag)]
    for unit in j.units.values():
        assert "PRIVATE KEY" not in unit.pod.log_path.read_text(errors="replace")
        for key in (unit.pod.storage_dir / "tls").glob("*.key"):
            assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_plaintext_to_tls_renewal_new_ca_and_back(bench: Juju) -> None:
    j = bench
    j.deploy(3, leader=0)
    j.settle()
    assert_formed(j, 3)
    identities = Path(j.workdir) / "identities"
    # CN root: with client TLS on, etcd auth is on and a certificate's CN is its etcd user.
    first = j.provider.authority.client_identity(identities, "writer", cn="root")
    start = len(j.log)
    term = raft_term(j)
    with Writer(j) as writer:
        writer.identities.append(first)

        # ---- peer TLS: trust step, then each member switches its peer URL, leader last
        j.relate_certificates(PEER)
        j.settle()
        assert_formed(j, 3)
        assert all(url.startswith("https://") for url in peer_urls(j)), peer_urls(j)
        assert "peer TLS on, client TLS off" in str(j.app_status)
        for unit in j.units.values():
            assert "peer TLS on, client TLS off" in str(unit.status), unit.status
        code, _ = ctl(j, j.client_endpoints("http")[0], "put", "/still-plain", "ok")
        assert code == 0, "plaintext clients still work while client TLS is off"

        # ---- client TLS
        j.relate_certificates(CLIENT)
        j.settle()
        j.client_identity = first
        assert_formed(j, 3)
        assert "peer TLS on, client TLS on" in str(j.app_status)
        plaintext_refused(j)
        https = j.client_endpoints("https")
        code, out = ctl(j, https[0], "put", "/no-cert", "x", extra=[f"--cacert={first.ca}"])
        assert code != 0, f"a client without a certificate was served: {out}"
        stranger = Authority("stranger-ca").client_identity(identities, "stranger")
        code, out = ctl(j, https[0], "put", "/stranger", "x", extra=stranger.etcdctl_args())
        assert code != 0, f"a certificate from another CA was accepted: {out}"
        code, out = ctl(j, ",".join(https), "put", "/with-cert", "ok", extra=first.etcdctl_args())
        assert code == 0, out
        # etcd auth came on with client TLS: a certificate whose CN is no etcd user gets nothing.
        nobody = j.provider.authority.client_identity(identities, "nobody")
        code, out = ctl(j, https[0], "put", "/nobody", "x", extra=nobody.etcdctl_args())
        assert code != 0 and "permission denied" in out, out
        # The charm's own etcdctl (actions included) goes through with the unit's certificate.
        status = j.run_action("etcd-k8s/1", "cluster-status")
        assert status.failure is None, status.failure
        assert status.results["quorum"] == "yes", status.results
        snapshot = j.run_action("etcd-k8s/0", "snapshot")
        assert snapshot.failure is None, snapshot.failure

        # ---- renewal, same CA: new certificates in use without a restart
        before = {n: served_certificate(j, n, first).serial_number for n in j.units}
        mark = len(j.log)
        j.renew_certificates()
        j.settle()
        assert restarts(j, mark) == 0, "a renewal with the same CA restarted etcd"
        after = {n: served_certificate(j, n, first).serial_number for n in j.units}
        assert all(before[n] != after[n] for n in j.units), (before, after)
        code, out = ctl(j, ",".join(https), "put", "/renewed", "ok", extra=first.etcdctl_args())
        assert code == 0, out

        # ---- new CA: bundle of both, certificates switch, old CA dropped
        new_ca = j.rotate_ca_authority("bench-ca-2")
        second = new_ca.client_identity(identities, "writer-2", cn="root")
        both = identities / "both-cas.pem"
        both.write_text(first.ca.read_text() + second.ca.read_text())
        writer.identities[:] = [first.with_ca(both), second.with_ca(both)]
        mark = len(j.log)
        j.settle()
        assert restarts(j, mark) >= 6, "the bundle grows, then shrinks: two rolling restarts"
        j.client_identity = second
        assert_formed(j, 3)
        for name in j.units:
            served = served_certificate(j, name, second)
            assert served.issuer == new_ca.cert.subject, f"{name} still serves the old CA"
        code, out = ctl(j, ",".join(https), "put", "/new-ca", "ok", extra=second.etcdctl_args())
        assert code == 0, out
        code, out = ctl(
            j, https[0], "put", "/old-ca", "x", extra=first.with_ca(both).etcdctl_args()
        )
        assert code != 0, f"a certificate of the dropped CA was still accepted: {out}"
        assert all(url.startswith("https://") for url in peer_urls(j))

        # ---- TLS removed: back to plaintext the same rolling way
        j.remove_certificates(CLIENT)
        j.remove_certificates(PEER)
        j.settle()
        j.client_identity = None
        assert_formed(j, 3)
        assert all(url.startswith("http://") for url in peer_urls(j)), peer_urls(j)
        code, out = ctl(j, ",".join(j.client_endpoints("http")), "put", "/plain-again", "ok")
        assert code == 0, out
        assert "TLS" not in str(j.app_status), j.app_status
        for unit in j.units.values():
            assert not list((unit.pod.storage_dir / "tls").glob("*.key")), "key files left"
    report = writer.report()
    assert report.acknowledged > 100, report
    assert report.lost == 0, report
    planned = moves(j, start)
    assert raft_term(j) == term + planned, f"elections besides the {planned} planned handovers"
    assert_no_secret_leaked(j)
    assert j.failures() == [], "\n".join(j.failures())


def test_scaling_with_tls_on(bench: Juju) -> None:
    """New units get their certificates before they join; without one a joiner waits and
    says so; scale down with TLS on."""
    j = bench
    j.deploy(3, leader=1)
    j.settle()
    j.relate_certificates(PEER)
    j.relate_certificates(CLIENT)
    j.settle()
    j.client_identity = j.provider.authority.client_identity(
        Path(j.workdir) / "ids", "test", cn="root"
    )
    assert_formed(j, 3)
    term = raft_term(j)
    start = len(j.log)
    with Writer(j) as writer:
        writer.identities.append(j.client_identity)
        j.provider.paused = True
        (joiner,) = j.add_unit()
        j.settle()
        assert "waiting for a peer certificate" in str(joiner.status), joiner.status
        assert "client certificate" in str(joiner.status), joiner.status
        listed = etcdctl_json(j, j.client_endpoints()[0], "member", "list")["members"]
        assert len(listed) == 3, "a unit without certificates was added"
        j.resume_provider()
        j.settle()
        assert_formed(j, 4)
        history = "\n".join(line for line in j.log if f"{joiner.name} decision:" in line)
        assert "install-peer-certificate" in history
        assert history.index("install-peer-certificate") < history.index("join-as-learner")
        # Auth is on, but this learner caught up from the log: nothing to restart it for.
        assert "restart-learner" not in history, history
        assert all(url.startswith("https://") for url in peer_urls(j)), peer_urls(j)
        j.add_unit()
        j.settle()
        assert_formed(j, 5)
        j.remove_unit(2)
        j.settle()
        assert_formed(j, 3)
        assert all(url.startswith("https://") for url in peer_urls(j)), peer_urls(j)
        plaintext_refused(j)
        assert raft_term(j) == term + moves(j, start), "an election besides the handovers"
        # A recreated pod has a new IP: it serves its old certificate from its storage until
        # the provider answers the new request, then the new one, without a restart.
        name = sorted(j.units)[0]
        j.churn([name])
        j.settle()
        assert_formed(j, 3)
        sans = served_certificate(j, name, j.client_identity).extensions
        ips = sans.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ipaddress.ip_address(j.address(name)) in ips.get_values_for_type(x509.IPAddress)
    report = writer.report()
    assert report.lost == 0, report
    assert report.acknowledged > 50, report
    assert_no_secret_leaked(j)
