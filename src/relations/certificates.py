"""Certificates in: the two `tls-certificates` requirers (charmlibs), and the checks on what a
provider offers. workload/tls_files.py keeps the files in use.

The library keeps each unit's private key in a unit-owned Juju secret and answers with what
the provider signed. The certificate in use is copied, with its key, to the unit's own storage
(`/var/lib/etcd/tls`, mode 0600 for keys), which outlives a recreated pod and a removed
relation: a member must keep serving with it until the rolling switch back to plaintext is
done. Nothing here logs a key or a certificate.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import ops

from core import model as m
from core.pem import fingerprint
from literals import CERTIFICATES_RELATIONS as RELATIONS
from workload.k8s import cluster_domain

if TYPE_CHECKING:  # the library and cryptography load only where a relation needs them
    from charmlibs.interfaces.tls_certificates import (
        CertificateRequestAttributes,
        TLSCertificatesRequiresV4,
    )

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offers:
    """What the certificates relations say now, per kind."""

    related: dict[str, bool]
    offered: dict[str, m.Material | None]

    @classmethod
    def none(cls) -> Offers:
        """For paths that must not act on the relations (actions, leaving)."""
        return cls(related={}, offered={})


def request_for(charm: ops.CharmBase) -> CertificateRequestAttributes:
    """The pod's DNS name, the Juju services' names and the pod IP. The common name is the
    member name: a DNS name can pass the 64 characters a common name allows."""
    from charmlibs.interfaces.tls_certificates import CertificateRequestAttributes

    app, model = charm.app.name, charm.model.name
    pod = charm.unit.name.replace("/", "-")
    domain = f"{model}.svc.{cluster_domain()}"
    names = {
        f"{pod}.{app}-endpoints.{domain}",
        f"{app}-endpoints",
        f"{app}-endpoints.{domain}",
        app,
        f"{app}.{domain}",
    }
    ips: set[str] = set()
    binding = charm.model.get_binding("etcd-peers")
    try:
        address = binding.network.bind_address if binding else None
    except ops.ModelError:
        address = None
    if address is not None:
        ips.add(str(address))
    return CertificateRequestAttributes(
        common_name=pod, sans_dns=frozenset(names), sans_ip=frozenset(ips)
    )


def refuse(leaf_pem: str, ca_pem: str, request: CertificateRequestAttributes) -> str | None:
    """Why a provider's certificate must not be used, or None: it must be a leaf signed by the
    CA it came with, valid now, and name this pod (etcd's peers and clients check that)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    try:
        leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError as error:
        return f"not a PEM certificate ({error})"
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the CA it came with"
    try:
        if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "a CA certificate, not a leaf"
    except x509.ExtensionNotFound:
        pass
    now = datetime.now(timezone.utc)
    if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
        return "not valid now"
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = set(names.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = set()
    pod_names = {n for n in request.sans_dns or () if n.startswith(f"{request.common_name}.")}
    if not pod_names <= dns:
        return f"it does not name {', '.join(sorted(pod_names - dns))}"
    return None


class Certificates:
    """The requirer side of both relations. The library is set up only for a relation that
    exists: a plaintext cluster never loads it (nor cryptography) on its hooks."""

    def __init__(self, charm: ops.CharmBase, refresh: list[ops.BoundEvent]):
        self.charm = charm
        self.requirers: dict[str, TLSCertificatesRequiresV4] = {}
        hook_relation = os.environ.get("JUJU_RELATION")  # relation-broken: gone from the model
        related = [
            k for k, r in RELATIONS.items() if r == hook_relation or charm.model.relations.get(r)
        ]
        if not related:
            return
        from charmlibs.interfaces.tls_certificates import Mode, TLSCertificatesRequiresV4

        for kind in related:
            self.requirers[kind] = TLSCertificatesRequiresV4(
                charm,
                RELATIONS[kind],
                certificate_requests=lambda _caps: [request_for(charm)],
                mode=Mode.UNIT,
                refresh_events=refresh,
            )

    def offers(self) -> Offers:
        related: dict[str, bool] = {}
        offered: dict[str, m.Material | None] = {}
        for kind, relation in RELATIONS.items():
            requirer = self.requirers.get(kind)
            related[kind] = self.charm.model.get_relation(relation) is not None
            offered[kind] = self._offered(requirer) if related[kind] and requirer else None
        return Offers(related=related, offered=offered)

    def _offered(self, requirer: TLSCertificatesRequiresV4) -> m.Material | None:
        request = request_for(self.charm)
        certificate, key = requirer.get_assigned_certificate(request)
        if certificate is None or key is None or certificate.revoked:
            return None
        leaf = str(certificate.certificate).strip() + "\n"
        ca = str(certificate.ca).strip() + "\n"
        problem = refuse(leaf, ca, request)
        if problem:
            logger.warning(
                "refusing the certificate from %s: %s", requirer.relationship_name, problem
            )
            return None
        skip = {fingerprint(leaf), fingerprint(ca)}
        intermediates = [
            str(c).strip() + "\n" for c in certificate.chain if fingerprint(str(c)) not in skip
        ]
        return m.Material(cert=leaf + "".join(intermediates), key=str(key).strip() + "\n", ca=ca)
