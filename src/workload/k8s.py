"""What the charm learns of its Kubernetes cluster from inside its own container."""

from __future__ import annotations

import socket

from core.identity import DEFAULT_DOMAIN


def cluster_domain(fqdn: str | None = None) -> str:
    """The cluster's DNS domain, read off the pod's own name: Kubernetes puts
    `<pod>.<service>.<namespace>.svc.<domain>` in every pod's /etc/hosts, which the charm
    container shares. Clusters are not always `cluster.local`; when the name says nothing
    (no `.svc.` in it), that default is the best guess."""
    name = socket.getfqdn() if fqdn is None else fqdn
    _, found, domain = name.partition(".svc.")
    domain = domain.strip(".")
    return domain if found and domain else DEFAULT_DOMAIN
