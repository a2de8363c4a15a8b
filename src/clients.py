"""Client relations (`etcd-client`, interface etcd_client v0) as decisions over plain data:
which requests are served, which are refused and why, and what to change in etcd's users and
roles. No ops and no etcd here.

Each client application asks for a key prefix and hands over its client certificate (a leaf).
It gets an etcd user named after the certificate's common name (etcd maps a verified client
certificate's CN to the user), holding one role with readwrite on exactly that prefix. The
certificate itself joins the client CA bundle, so etcd accepts that one certificate and no
other: a leaf cannot sign further certificates (RFC 5280; Go refuses such chains), which is why
a CA certificate is refused here.

Requests are considered in relation-id order: of two overlapping prefixes the older relation
keeps its prefix and the newer one is refused, so one client's mistake never costs another
client its access.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tls import fingerprint, split_pem

logger = logging.getLogger(__name__)

ROOT_USER = "root"


@dataclass(frozen=True)
class Request:
    """What one client relation asks for, as read from its app databag and secret."""

    relation_id: int
    app: str
    prefix: str | None
    cert_pem: str | None  # from the secret in `secret-mtls`; None: no secret (yet)
    problem: str | None = None  # the request could not be read (garbage, unreadable secret)


@dataclass(frozen=True)
class Grant:
    """A request that is served: its user and role, and the certificate etcd is to trust."""

    relation_id: int
    app: str
    user: str
    prefix: str
    cert_pem: str

    @property
    def role(self) -> str:
        return role_name(self.relation_id)

    @property
    def cert_fp(self) -> str:
        return fingerprint(self.cert_pem)


ROLE_PREFIX = "etcd-client-"


def role_name(relation_id: int) -> str:
    return f"{ROLE_PREFIX}{relation_id}"


@dataclass(frozen=True)
class Decision:
    grants: dict[int, Grant]
    refusals: dict[int, str]  # relation id -> "waiting: ..." or "refused: ..."


def check_certificate(pem: str, now: datetime.datetime | None = None) -> tuple[str | None, str]:
    """(common name, "") for a usable client certificate, else (None, why not)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    certs = split_pem(pem)
    if not certs:
        return None, "the certificate in secret-mtls is not PEM"
    if len(certs) > 1:
        return None, "secret-mtls holds more than one certificate: give only the client's own"
    try:
        cert = x509.load_pem_x509_certificate(certs[0].encode())
    except ValueError as error:
        return None, f"the certificate in secret-mtls is malformed PEM ({error})"
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            return None, "the certificate in secret-mtls is a CA certificate, not a client's leaf"
    except x509.ExtensionNotFound:
        pass
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if usage.key_cert_sign:
            return None, "the certificate in secret-mtls may sign certificates: give a leaf"
    except x509.ExtensionNotFound:
        pass
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        return None, (
            f"the certificate in secret-mtls is not valid now "
            f"(valid {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC)"
        )
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value).strip() if names else ""
    if not common_name:
        return None, "the certificate in secret-mtls has no common name (it names the etcd user)"
    return common_name, ""


def overlaps(a: str, b: str) -> bool:
    """Two prefixes share keys when one starts with the other."""
    return a.startswith(b) or b.startswith(a)


def decide(
    requests: Iterable[Request],
    client_tls: bool,
    reserved_users: frozenset[str],
    now: datetime.datetime | None = None,
) -> Decision:
    """Which requests are served. `client_tls`: client TLS and etcd auth are on (clients are
    served only then). `reserved_users`: names no client may take (root, the members')."""
    grants: dict[int, Grant] = {}
    refusals: dict[int, str] = {}
    for request in sorted(requests, key=lambda r: r.relation_id):
        rid = request.relation_id
        if request.problem:
            refusals[rid] = f"refused: {request.problem}"
            continue
        prefix = request.prefix or ""
        if not prefix.strip():
            refusals[rid] = "refused: no prefix asked for (set `prefix` in the relation data)"
            continue
        if prefix.strip() in ("/", "\\0"):
            refusals[rid] = f"refused: prefix {prefix!r} is the whole keyspace"
            continue
        if request.cert_pem is None:
            refusals[rid] = "waiting: no client certificate yet (secret-mtls)"
            continue
        user, why = check_certificate(request.cert_pem, now)
        if user is None:
            refusals[rid] = f"refused: {why}"
            continue
        if user in reserved_users:
            refusals[rid] = f"refused: the certificate's common name {user!r} is reserved"
            continue
        clash = next((g for g in grants.values() if overlaps(prefix, g.prefix)), None)
        if clash is not None:
            refusals[rid] = (
                f"refused: prefix {prefix!r} overlaps {clash.prefix!r} of {clash.app} "
                f"(relation {clash.relation_id})"
            )
            continue
        same = next((g for g in grants.values() if g.user == user), None)
        if same is not None:
            refusals[rid] = (
                f"refused: common name {user!r} is already the user of {same.app} "
                f"(relation {same.relation_id})"
            )
            continue
        if not client_tls:
            refusals[rid] = (
                "waiting: client TLS is off on this etcd (relate its client-certificates "
                "endpoint to a certificates provider)"
            )
            continue
        grants[rid] = Grant(rid, request.app, user, prefix, request.cert_pem.strip() + "\n")
    return Decision(grants, refusals)


@dataclass(frozen=True)
class Applied:
    """What is in etcd for one relation (peer app data `clients`, leader-written)."""

    user: str
    role: str
    prefix: str
    cert_fp: str

    @classmethod
    def of(cls, grant: Grant) -> Applied:
        return cls(grant.user, grant.role, grant.prefix, grant.cert_fp)


@dataclass(frozen=True)
class Revoke:
    relation_id: int
    applied: Applied


@dataclass(frozen=True)
class Ensure:
    grant: Grant


Change = Revoke | Ensure


def plan(applied: Mapping[int, Applied], grants: Mapping[int, Grant]) -> list[Change]:
    """Revocations first (a changed user or prefix is revoked, then granted anew), then grants;
    a certificate change alone changes nothing in etcd (same CN, same role)."""
    changes: list[Change] = []
    for rid, done in sorted(applied.items()):
        grant = grants.get(rid)
        if grant is None or (grant.user, grant.prefix) != (done.user, done.prefix):
            changes.append(Revoke(rid, done))
    for rid, grant in sorted(grants.items()):
        done = applied.get(rid)  # type: ignore[assignment]
        if done is None or (grant.user, grant.prefix) != (done.user, done.prefix):
            changes.append(Ensure(grant))
    return changes


def read_applied(raw: str | None) -> dict[int, Applied]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        return {int(rid): Applied(**entry) for rid, entry in data.items()}
    except (ValueError, TypeError, AttributeError) as error:
        # Only the leader writes this; garbage means someone edited peer data by hand. Treat
        # it as empty: the grants are applied again (idempotently) and stale ones stay until
        # their relation's users are listed by hand.
        logger.warning("peer app data 'clients' is unreadable (%s); re-applying grants", error)
        return {}


def write_applied(applied: Mapping[int, Applied]) -> str:
    return json.dumps({str(rid): a.__dict__ for rid, a in sorted(applied.items())}, sort_keys=True)


def server_cas(bundle: Iterable[str]) -> tuple[str, ...]:
    """The CA certificates of the client bundle (what clients verify the servers with): the
    bundle also holds the client leaves etcd is to accept, which a client has no use for."""
    from cryptography import x509

    found = []
    for pem in bundle:
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
            if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                found.append(pem)
        except (ValueError, x509.ExtensionNotFound):
            continue
    return tuple(found)
