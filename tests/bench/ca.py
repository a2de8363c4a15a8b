"""The bench's certificates provider: a CA made with `cryptography` that answers the CSRs
etcd-k8s units put in their `tls-certificates` unit databags, in the provider's application
databag, as the self-signed-certificates charm does (interface tls-certificates v1: a JSON list
of {ca, certificate_signing_request, certificate, chain} under `certificates`).

Written from the interface's wire format, not with the charm library's own provider code, so
that a mismatch between the two would show."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class Authority:
    """One CA: its key and self-signed certificate."""

    name: str
    key: rsa.RSAPrivateKey = field(default_factory=_key)
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return _pem(self.cert)

    def sign(self, csr: x509.CertificateSigningRequest, days: int = 30) -> x509.Certificate:
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        try:
            sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            builder = builder.add_extension(sans.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        return builder.sign(self.key, hashes.SHA256())

    def client_identity(self, directory: Path, name: str, cn: str | None = None) -> Identity:
        """A client certificate for the tests' own etcd clients, written to files. `cn` (default
        `name`) is the etcd user it authenticates as once etcd auth is on (with client TLS)."""
        key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or name)])
        csr = (
            x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        paths = Identity(
            ca=directory / f"{name}-ca.pem",
            cert=directory / f"{name}.pem",
            key=directory / f"{name}-key.pem",
        )
        paths.ca.write_text(self.pem)
        paths.cert.write_text(_pem(self.sign(csr)))
        paths.key.write_text(_key_pem(key))
        paths.key.chmod(0o600)
        return paths


@dataclass(frozen=True)
class Identity:
    """Files for a TLS client: CA bundle to verify servers with, certificate, key."""

    ca: Path
    cert: Path
    key: Path

    def etcdctl_args(self) -> list[str]:
        return [f"--cacert={self.ca}", f"--cert={self.cert}", f"--key={self.key}"]

    def with_ca(self, ca: Path) -> Identity:
        return Identity(ca=ca, cert=self.cert, key=self.key)


@dataclass
class Provider:
    """The provider application: one CA at a time, one certificate per CSR it was sent."""

    authority: Authority = field(default_factory=lambda: Authority("bench-ca"))
    issued: dict[str, tuple[str, str]] = field(default_factory=dict)  # csr pem -> (cert, ca)
    signed: int = 0
    paused: bool = False  # a slow provider: new CSRs wait

    def answer(self, requests: list[str]) -> dict[str, str]:
        """The provider's app databag for the CSRs all requirer units have out now."""
        for csr_pem in requests:
            if csr_pem not in self.issued and not self.paused:
                self._issue(csr_pem)
        entries = [
            {
                "ca": ca,
                "certificate_signing_request": csr_pem,
                "certificate": cert,
                "chain": [cert, ca],
            }
            for csr_pem, (cert, ca) in sorted(self.issued.items())
            if csr_pem in requests
        ]
        return {"certificates": json.dumps(entries)} if entries else {}

    def _issue(self, csr_pem: str) -> None:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        self.issued[csr_pem] = (_pem(self.authority.sign(csr)), self.authority.pem)
        self.signed += 1

    def renew_all(self) -> None:
        """Re-issue every certificate with the same CA (new serial, new validity)."""
        for csr_pem in list(self.issued):
            self._issue(csr_pem)

    def rotate_ca(self, name: str) -> Authority:
        """A new CA; every certificate is re-issued by it, as self-signed-certificates does
        when its CA changes."""
        self.authority = Authority(name)
        self.renew_all()
        return self.authority


def requests_in(unit_bag: dict[str, str]) -> list[str]:
    """The CSRs a requirer unit has out (its `certificate_signing_requests`)."""
    raw = unit_bag.get("certificate_signing_requests")
    if not raw:
        return []
    return [entry["certificate_signing_request"].strip() for entry in json.loads(raw)]


def self_signed_client(directory: Path, name: str, days: int = 30) -> Identity:
    """A client charm's own certificate: a self-signed leaf (CA false, client auth), as a
    client hands it over on the etcd-client relation. `ca` is left for the server CA file the
    test writes from what etcd-k8s answers."""
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = Identity(
        ca=directory / f"{name}-server-ca.pem",
        cert=directory / f"{name}.pem",
        key=directory / f"{name}-key.pem",
    )
    paths.cert.write_text(_pem(cert))
    paths.key.write_text(_key_pem(key))
    paths.key.chmod(0o600)
    return paths
