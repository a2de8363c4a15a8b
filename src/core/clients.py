"""Client relations (`etcd-client`, interface etcd_client) as decisions over plain data: which
requests are served, which are refused and why, and what to change in etcd's users and roles.
No ops and no etcd here.

Each request asks for a key prefix and hands over a client certificate (a leaf). It gets an etcd
user named after the certificate's common name (etcd maps a verified client certificate's CN to
the user), holding one role with readwrite on exactly that prefix. The certificate itself joins
the client CA bundle, so etcd accepts that one certificate and no other: a leaf cannot sign
further certificates (RFC 5280; Go refuses such chains), which is why a CA certificate is
refused here.

A relation holds one request (protocol v0: the requirer's app databag is the request) or
several (v1: a `requests` list, each with its own id, prefix and certificate). Requests are
considered in order of relation id, then request id: of two overlapping prefixes the older one
keeps its prefix and the newer is refused, so one client's mistake never costs another its
access.

Why a request is not served is a status with a code, as data_interfaces reads it: 4xxx is
transitory (waiting: it resolves by itself), 5xxx is fatal (refused: the client must change
its request). `STATUSES` is the catalogue; docs/how-to/client-charms.md lists it.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from core.pem import fingerprint, split_pem

logger = logging.getLogger(__name__)

ROOT_USER = "root"
ROLE_PREFIX = "etcd-client-"


@dataclass(frozen=True)
class Status:
    """Why a request is not served, for the client: `code` 4xxx waits, 5xxx is refused."""

    code: int
    message: str
    resolution: str

    @property
    def refused(self) -> bool:
        return self.code >= 5000

    def text(self) -> str:
        """The one-line form: "refused: ..." / "waiting: ..." (logs, app status, v0 of old)."""
        return f"{'refused' if self.refused else 'waiting'}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "resolution": self.resolution}


# The catalogue: code -> (message, what the client's operator does about it).
STATUSES: dict[int, tuple[str, str]] = {
    4001: (
        "client TLS is off on this etcd",
        "relate etcd-k8s:client-certificates to a certificates provider; clients need TLS",
    ),
    4002: ("no client certificate yet (secret-mtls)", "hand over the client's leaf certificate"),
    4003: ("the etcd user is being made", "none: served on a coming hook"),
    4004: (
        "the members restart one by one to trust the client certificate",
        "none: served once every member trusts it",
    ),
    4005: ("no etcd member answers", "none: served once the cluster has quorum again"),
    5001: ("no prefix asked for", "set `prefix` (v0) or `resource` (v1) in the request"),
    5002: ("the prefix is the whole keyspace", "ask for a prefix of the client's own"),
    5003: (
        "the prefix overlaps another client's",
        "ask for a prefix no other client of this etcd holds",
    ),
    5004: ("the certificate is a CA's, or may sign certificates", "hand over a leaf certificate"),
    5005: ("the certificate is not one PEM certificate", "hand over exactly one PEM certificate"),
    5006: ("the certificate is not valid now", "renew it and hand over the new one"),
    5007: (
        "the certificate has no common name (it names the etcd user)",
        "give the certificate a common name",
    ),
    5008: (
        "the certificate's common name is reserved (root or a member's name)",
        "use another common name",
    ),
    5009: (
        "the certificate's common name is already the user of another client",
        "use a common name of the client's own",
    ),
    5010: (
        "the request cannot be read",
        "fix the relation data, and grant secret-mtls to the relation",
    ),
}


def status(code: int, detail: str = "") -> Status:
    """A catalogue status; `detail` says what exactly (the prefix, the CN, ...)."""
    message, resolution = STATUSES[code]
    return Status(code, f"{message}: {detail}" if detail else message, resolution)


@dataclass(frozen=True)
class Request:
    """What one client asks for: a v0 relation's databag, or one entry of a v1 `requests`."""

    relation_id: int
    app: str
    prefix: str | None
    cert_pem: str | None  # from the secret in `secret-mtls`; None: no secret (yet)
    problem: str | None = None  # the request could not be read (garbage, unreadable secret)
    request_id: str | None = None  # v1 only
    salt: str | None = None  # v1 only: echoed back

    @property
    def key(self) -> str:
        """Names the request among all relations: "30" (v0), "30/<request-id>" (v1)."""
        return request_key(self.relation_id, self.request_id)

    @property
    def sort_key(self) -> tuple[int, str]:
        return self.relation_id, self.request_id or ""


def request_key(relation_id: int, request_id: str | None) -> str:
    return f"{relation_id}/{request_id}" if request_id else str(relation_id)


def role_for(key: str) -> str:
    """The role of one request: etcd-client-30 (v0), etcd-client-30-<request-id> (v1)."""
    return f"{ROLE_PREFIX}{key.replace('/', '-')}"


@dataclass(frozen=True)
class Grant:
    """A request that is served: its user and role, and the certificate etcd is to trust."""

    key: str
    app: str
    user: str
    prefix: str
    cert_pem: str

    @property
    def role(self) -> str:
        return role_for(self.key)

    @property
    def cert_fp(self) -> str:
        return fingerprint(self.cert_pem)

    @property
    def relation_id(self) -> int:
        return int(self.key.split("/", 1)[0])


@dataclass(frozen=True)
class Decision:
    """Which requests are served, and why the others are not."""

    grants: dict[str, Grant]
    refusals: dict[str, Status]  # request key -> why it is not served (waiting or refused)


def check_certificate(
    pem: str, now: datetime.datetime | None = None
) -> tuple[str | None, Status | None]:
    """(common name, None) for a usable client certificate, else (None, why not)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    certs = split_pem(pem)
    if not certs:
        return None, status(5005, "the certificate in secret-mtls is not PEM")
    if len(certs) > 1:
        return None, status(5005, "secret-mtls holds more than one certificate")
    try:
        cert = x509.load_pem_x509_certificate(certs[0].encode())
    except ValueError as error:
        return None, status(5005, f"malformed PEM ({error})")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            return None, status(5004, "a CA certificate, not a client's leaf")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if usage.key_cert_sign:
            return None, status(5004, "it may sign certificates")
    except x509.ExtensionNotFound:
        pass
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        return None, status(5006, f"valid {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value).strip() if names else ""
    if not common_name:
        return None, status(5007)
    return common_name, None


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
    grants: dict[str, Grant] = {}
    refusals: dict[str, Status] = {}
    for request in sorted(requests, key=lambda r: r.sort_key):
        verdict = _judge(request, grants, client_tls, reserved_users, now)
        if isinstance(verdict, Status):
            refusals[request.key] = verdict
        else:
            grants[request.key] = verdict
    return Decision(grants, refusals)


def _judge(
    request: Request,
    grants: Mapping[str, Grant],
    client_tls: bool,
    reserved: frozenset[str],
    now: datetime.datetime | None,
) -> Grant | Status:
    if request.problem:
        return status(5010, request.problem)
    prefix = request.prefix or ""
    if not prefix.strip():
        return status(5001)
    if prefix.strip() in ("/", "\\0"):
        return status(5002, repr(prefix))
    if request.cert_pem is None:
        return status(4002)
    user, why = check_certificate(request.cert_pem, now)
    if user is None:
        assert why is not None
        return why
    if user in reserved:
        return status(5008, repr(user))
    clash = next((g for g in grants.values() if overlaps(prefix, g.prefix)), None)
    if clash is not None:
        return status(5003, f"{prefix!r} overlaps {clash.prefix!r} of {clash.app}")
    same = next((g for g in grants.values() if g.user == user), None)
    if same is not None:
        return status(5009, f"{user!r}, of {same.app}")
    if not client_tls:
        return status(4001)
    return Grant(request.key, request.app, user, prefix, request.cert_pem.strip() + "\n")


@dataclass(frozen=True)
class Applied:
    """What is in etcd for one request (peer app data `clients`, leader-written)."""

    user: str
    role: str
    prefix: str
    cert_fp: str

    @classmethod
    def of(cls, grant: Grant) -> Applied:
        return cls(grant.user, grant.role, grant.prefix, grant.cert_fp)


@dataclass(frozen=True)
class Revoke:
    """Take a request's user and role out of etcd."""

    key: str
    applied: Applied

    @property
    def relation_id(self) -> int:
        return int(self.key.split("/", 1)[0])


@dataclass(frozen=True)
class Ensure:
    """Make a granted request's user and role exist in etcd."""

    grant: Grant


Change = Revoke | Ensure


def plan(applied: Mapping[str, Applied], grants: Mapping[str, Grant]) -> list[Change]:
    """Revocations first (a changed user or prefix is revoked, then granted anew), then grants;
    a certificate change alone changes nothing in etcd (same CN, same role)."""
    changes: list[Change] = []
    for key, done in sorted(applied.items()):
        grant = grants.get(key)
        if grant is None or (grant.user, grant.prefix) != (done.user, done.prefix):
            changes.append(Revoke(key, done))
    for key, grant in sorted(grants.items()):
        done = applied.get(key)  # type: ignore[assignment]
        if done is None or (grant.user, grant.prefix) != (done.user, done.prefix):
            changes.append(Ensure(grant))
    return changes


def read_applied(raw: str | None) -> dict[str, Applied]:
    return parse_applied(raw) or {}


def parse_applied(raw: str | None) -> dict[str, Applied] | None:
    """What the leader recorded as done in etcd; None when nothing readable is recorded."""
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return {str(key): Applied(**entry) for key, entry in data.items()}
    except (ValueError, TypeError, AttributeError) as error:
        # Only the leader writes this; garbage means someone edited peer data by hand. Treat
        # it as never checked: the grants are applied again (idempotently), and what no
        # relation holds is swept (core/access.py).
        logger.warning("peer app data 'clients' is unreadable (%s); re-applying grants", error)
        return None


def write_applied(applied: Mapping[str, Applied]) -> str:
    return json.dumps({key: a.__dict__ for key, a in sorted(applied.items())}, sort_keys=True)


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
