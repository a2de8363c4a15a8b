"""The cluster domain, read off the pod's own name."""

from __future__ import annotations

import pytest

from workload.k8s import DEFAULT_DOMAIN, cluster_domain


@pytest.mark.parametrize(
    "fqdn, domain",
    [
        ("etcd-k8s-0.etcd-k8s-endpoints.prod.svc.cluster.local", "cluster.local"),
        ("etcd-k8s-0.etcd-k8s-endpoints.prod.svc.k8s.example.com", "k8s.example.com"),
        ("etcd-k8s-0.etcd-k8s-endpoints.prod.svc.corp.", "corp"),
        ("etcd-k8s-0", DEFAULT_DOMAIN),  # no search domain in /etc/hosts
        ("laptop.localdomain", DEFAULT_DOMAIN),
        ("a.b.svc.", DEFAULT_DOMAIN),
    ],
)
def test_domain_from_the_pod_name(fqdn: str, domain: str) -> None:
    assert cluster_domain(fqdn) == domain
