"""The certificate files on the unit's own storage (`/var/lib/etcd/tls`, keys 0600): they
outlive a recreated pod and a removed relation, which the rolling switch back to plaintext
needs. Nothing here logs a key or a certificate."""

from __future__ import annotations

from dataclasses import dataclass

from core import model as m
from literals import TLS_DIR
from workload.etcdctl import ClientCert
from workload.pebble import Workload


@dataclass(frozen=True)
class Paths:
    """Where one TLS kind's files live on the unit's storage."""

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
    files = paths(m.CLIENT)
    return ClientCert(cacert=files.bundle, cert=files.cert, key=files.key)


class TlsFiles:
    """The certificate files on the unit's storage."""

    def __init__(self, workload: Workload):
        self.workload = workload

    def in_use(self, kind: str) -> m.Material | None:
        files = paths(kind)
        cert = self.workload.read_file(files.cert)
        key = self.workload.read_file(files.key)
        ca = self.workload.read_file(files.issuer)
        if not (cert and key and ca):
            return None
        return m.Material(cert=cert, key=key, ca=ca)

    def install(self, kind: str, material: m.Material) -> None:
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
