"""Certificates in and out: the two `tls-certificates` requirers (charmlibs), and the files in
the container that etcd and the charm's etcdctl read.

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

import k8s
import tls
from etcdctl import ClientCert
from workload import STORAGE_ROOT, Workload

if TYPE_CHECKING:  # the library and cryptography load only where a relation needs them
    from charmlibs.interfaces.tls_certificates import (
        CertificateRequestAttributes,
        TLSCertificatesRequiresV4,
    )

logger = logging.getLogger(__name__)

RELATIONS = {tls.PEER: "peer-certificates", tls.CLIENT: "client-certificates"}
TLS_DIR = f"{STORAGE_ROOT}/tls"


@dataclass(frozen=True)
class Paths:
    cert: str
    key: str
    issuer: str  # the CA that signed `cert`
    bundle: str  # every CA this member trusts (the application's bundle)


def paths(kind: str) -> Paths:
    return Paths(
        cert=f"{TLS_DIR}/{kind}.crt",
        key=f"{TLS_DIR}/{kind}.key",
        issuer=f"{TLS_DIR}/{kind}-issuer.crt",
        bundle=f"{TLS_DIR}/{kind}-ca.crt",
    )


def client_cert() -> ClientCert:
    files = paths(tls.CLIENT)
    return ClientCert(cacert=files.bundle, cert=files.cert, key=files.key)


@dataclass(frozen=True)
class Offers:
    """What the certificates relations say now, per kind."""

    related: dict[str, bool]
    offered: dict[str, tls.Material | None]

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
    domain = f"{model}.svc.{k8s.cluster_domain()}"
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
        offered: dict[str, tls.Material | None] = {}
        for kind, relation in RELATIONS.items():
            requirer = self.requirers.get(kind)
            related[kind] = self.charm.model.get_relation(relation) is not None
            offered[kind] = self._offered(requirer) if related[kind] and requirer else None
        return Offers(related=related, offered=offered)

    def _offered(self, requirer: TLSCertificatesRequiresV4) -> tls.Material | None:
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
        skip = {tls.fingerprint(leaf), tls.fingerprint(ca)}
        intermediates = [
            str(c).strip() + "\n" for c in certificate.chain if tls.fingerprint(str(c)) not in skip
        ]
        return tls.Material(cert=leaf + "".join(intermediates), key=str(key).strip() + "\n", ca=ca)


class TlsFiles:
    """The certificate files on the unit's storage."""

    def __init__(self, workload: Workload):
        self.workload = workload

    def in_use(self, kind: str) -> tls.Material | None:
        files = paths(kind)
        cert = self.workload.read_file(files.cert)
        key = self.workload.read_file(files.key)
        ca = self.workload.read_file(files.issuer)
        if not (cert and key and ca):
            return None
        return tls.Material(cert=cert, key=key, ca=ca)

    def install(self, kind: str, material: tls.Material) -> None:
        """Key first, then certificate: etcd reads both on each new connection, so a
        handshake in between may fail once and is retried; a key change is rare (renewals
        keep the key)."""
        files = paths(kind)
        self.workload.write_file(files.key, material.key, private=True)
        self.workload.write_file(files.cert, material.cert)
        self.workload.write_file(files.issuer, material.ca)

    def remove(self, kind: str) -> None:
        files = paths(kind)
        for path in (files.cert, files.key, files.issuer, files.bundle):
            self.workload.remove_file(path)

    def write_bundle(self, kind: str, bundle: tuple[str, ...]) -> None:
        if bundle:
            self.workload.write_file(paths(kind).bundle, "".join(bundle))
