"""A Kubernetes cluster whose DNS domain is not `cluster.local`: the members advertise their
pods' names in that domain, and the certificates name them so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.bench.checks import assert_formed, member_table
from tests.bench.juju import Juju
from tests.cluster.test_tls import served_certificate

DOMAIN = "k8s.example.com"


@pytest.fixture
def elsewhere(version: str) -> Iterator[Juju]:
    model = Juju.start(version, domain=DOMAIN)
    try:
        yield model
    finally:
        model.close()


def test_urls_and_certificates_follow_the_cluster_domain(elsewhere: Juju) -> None:
    j = elsewhere
    j.deploy(3)
    j.settle()
    j.relate_certificates("peer-certificates")
    j.relate_certificates("client-certificates")
    j.settle()
    j.client_identity = j.provider.authority.client_identity(Path(j.workdir) / "ids", "root")
    listed = assert_formed(j, 3)
    for m in listed:
        host = f"{m.name}.etcd-k8s-endpoints.bench.svc.{DOMAIN}"
        assert m.peer_urls == (f"https://{host}:2380",), m
    _, members = member_table(j)
    assert {m.name for m in members} == {u.pod_name for u in j.units.values()}
    cert = served_certificate(j, "etcd-k8s/0", j.client_identity)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(names.get_values_for_type(x509.DNSName))
    assert f"etcd-k8s-0.etcd-k8s-endpoints.bench.svc.{DOMAIN}" in dns, dns
    assert f"etcd-k8s.bench.svc.{DOMAIN}" in dns, dns
    assert not [n for n in dns if n.endswith("cluster.local")], dns
