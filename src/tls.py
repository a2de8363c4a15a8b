"""TLS as decisions over plain data: which certificate a unit puts in use, and how the
application steps a running cluster between plaintext and TLS. No ops, no files, no etcd here.

Two kinds, each from its own `tls-certificates` relation: `peer` (member to member, port 2380)
and `client` (port 2379; the charm's own etcdctl presents the unit's client certificate).

The application's TLS state per kind lives in peer app data (`TlsRecord`), written by the Juju
leader one step at a time, and only once every running member runs the config of the previous
step (the rolling restart of rolling.py carries each step out, one member at a time, the etcd
leader last):

    peer:   off -> trust -> on       trust: peers still talk http, but every member already has
                                     its certificate and the CA, so it can dial https; on: each
                                     member, in its restart turn, `member update`s its peer URL
                                     to https and restarts with an https listener.
            on -> trust -> off       the same way back when the relation is removed.
    client: off <-> on               one restart per member. Serving http and https on one port
                                     is not used: etcd < 3.4.25 / 3.5.8 races on it (etcd #15495).

The trust bundle (`TlsRecord.bundle`) holds every CA a certificate in use or on offer was
signed by. A unit puts a certificate in use only if its CA is `trusted`: in the bundle every
running member was started with. A new CA therefore rolls in as: bundle grows (restarts),
units switch certificates (no restart: etcd reads certificate files per handshake), bundle
shrinks once no unit uses or is offered the old CA (restarts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

PEER = "peer"
CLIENT = "client"
KINDS = (PEER, CLIENT)
Kind = Literal["peer", "client"]
Stage = Literal["off", "trust", "on"]  # "trust" exists for peer only


def fingerprint(pem: str) -> str:
    """A short, stable name for a certificate: the hash of its base64 body, so that line
    wrapping or surrounding blanks do not count."""
    body = "".join(
        line.strip() for line in pem.strip().splitlines() if line.strip() and "-----" not in line
    )
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def split_pem(text: str) -> tuple[str, ...]:
    """The certificates of a PEM bundle, each normalised to end with a newline."""
    found: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN"):
            current = [line]
        elif line.startswith("-----END") and current:
            current.append(line)
            found.append("\n".join(current) + "\n")
            current = []
        elif current:
            current.append(line)
    return tuple(found)


def bundle_of(pems: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """CA certificates without repeats, in a stable order (by fingerprint)."""
    unique = {fingerprint(p): p.strip() + "\n" for p in pems if p.strip()}
    return tuple(unique[fp] for fp in sorted(unique))


@dataclass(frozen=True)
class Material:
    """A certificate, its private key and the CA that signed it."""

    cert: str  # the leaf, then any intermediates
    key: str
    ca: str

    @property
    def ca_fp(self) -> str:
        return fingerprint(self.ca)

    @property
    def cert_fp(self) -> str:
        return fingerprint(split_pem(self.cert)[0]) if split_pem(self.cert) else ""

    def same_as(self, other: Material | None) -> bool:
        return (
            other is not None
            and self.cert_fp == other.cert_fp
            and self.ca_fp == other.ca_fp
            and self.key.strip() == other.key.strip()
        )


@dataclass(frozen=True)
class TlsRecord:
    """The application's TLS state for one kind (peer app data, leader-written)."""

    stage: Stage = "off"
    bundle: tuple[str, ...] = ()  # CA PEMs the members are to trust
    trusted: frozenset[str] = frozenset()  # CA fingerprints every running member trusts now

    @property
    def bundle_fps(self) -> tuple[str, ...]:
        return tuple(fingerprint(p) for p in self.bundle)

    def digest_part(self) -> str:
        """What of this record a member's config depends on (a change means a restart)."""
        if self.stage == "off":
            return "off"  # a bundle kept while switching off is for the charm's etcdctl only
        return f"{self.stage}:{','.join(self.bundle_fps)}"


@dataclass(frozen=True)
class UnitTls:
    """What a unit says of its TLS material for one kind (its peer unit databag)."""

    in_use_ca: str | None = None  # fingerprint of the CA of the certificate in use
    cas: tuple[str, ...] = ()  # CA PEMs this unit needs trusted: in use and on offer


@dataclass(frozen=True)
class Keep:
    """Nothing to change in the unit's certificate files."""

    reason: str = ""


@dataclass(frozen=True)
class Install:
    material: Material


@dataclass(frozen=True)
class Remove:
    """TLS is off and the relation gone: the files go."""


InstallStep = Keep | Install | Remove


def next_install(
    record: TlsRecord, related: bool, in_use: Material | None, offered: Material | None
) -> InstallStep:
    """What a unit does with the certificate the provider offers for one kind."""
    if not related and record == TlsRecord():
        return Remove() if in_use is not None else Keep()
    if offered is None or offered.same_as(in_use):
        return Keep()
    if record.stage == "off" or offered.ca_fp in record.trusted:
        return Install(offered)
    return Keep(f"certificate from CA {offered.ca_fp} waits until every member trusts that CA")


def unit_tls(in_use: Material | None, offered: Material | None) -> UnitTls:
    cas = [m.ca for m in (in_use, offered) if m is not None]
    return UnitTls(in_use_ca=in_use.ca_fp if in_use else None, cas=bundle_of(cas))


@dataclass(frozen=True)
class Wait:
    reason: str


@dataclass(frozen=True)
class NewRecord:
    record: TlsRecord
    why: str


RecordStep = NewRecord | Wait | None


def next_record(
    kind: Kind,
    record: TlsRecord,
    related: bool,
    units: Mapping[str, UnitTls | None],
    members: frozenset[str],
    extra_trust: tuple[str, ...] = (),
) -> RecordStep:
    """The Juju leader's next change of one kind's record. Call only when every running member
    runs the config of the current record (no restart pending, no turn held, nobody joining).
    `units`: every unit's published TLS data; `members`: the units that run a member;
    `extra_trust`: more certificates to trust (client kind: the client relations' leaves)."""
    if record.stage != "off" and record.trusted != frozenset(record.bundle_fps):
        return NewRecord(
            replace(record, trusted=frozenset(record.bundle_fps)),
            "every member runs with the CA bundle",
        )
    if related:
        return _towards_on(kind, record, units, members, extra_trust)
    return _towards_off(kind, record)


def _towards_on(
    kind: Kind,
    record: TlsRecord,
    units: Mapping[str, UnitTls | None],
    members: frozenset[str],
    extra_trust: tuple[str, ...] = (),
) -> RecordStep:
    wanted = bundle_of([ca for info in units.values() if info for ca in info.cas])
    if wanted:
        wanted = bundle_of([*wanted, *extra_trust])
    if record.stage == "off":
        missing = sorted(u for u in members if not (units.get(u) and units[u].in_use_ca))  # type: ignore[union-attr]
        if missing:
            return Wait(f"{kind} TLS waits for a certificate on {', '.join(missing)}")
        nxt: Stage = "trust" if kind == PEER else "on"
        return NewRecord(TlsRecord(nxt, wanted), f"{kind} TLS: every member has a certificate")
    if tuple(fingerprint(p) for p in wanted) != record.bundle_fps and wanted:
        return NewRecord(replace(record, bundle=wanted), f"{kind} CA bundle changes")
    if record.stage == "trust":
        return NewRecord(replace(record, stage="on"), "peer TLS: every member trusts the CA")
    return None


def _towards_off(kind: Kind, record: TlsRecord) -> RecordStep:
    """Back to plaintext. The "off" record keeps the bundle until every member runs without
    TLS: until then the units keep their certificate files, and the charm's etcdctl still
    reaches the members not restarted yet."""
    if record.stage == "on" and kind == PEER:
        return NewRecord(replace(record, stage="trust"), "peer TLS relation removed")
    if record.stage != "off":
        return NewRecord(replace(record, stage="off"), f"{kind} TLS relation removed")
    if record != TlsRecord():
        return NewRecord(TlsRecord(), f"every member runs without {kind} TLS")
    return None


def peer_scheme(record: TlsRecord) -> str:
    return "https" if record.stage == "on" else "http"


def client_scheme(record: TlsRecord) -> str:
    return "https" if record.stage == "on" else "http"


def needs_material(record: TlsRecord) -> bool:
    """A member started now needs this kind's certificate."""
    return record.stage != "off"


def describe(peer: TlsRecord, client: TlsRecord) -> str:
    """For statuses: which of the two is on."""
    names = {"off": "off", "trust": "switching", "on": "on"}
    return f"peer TLS {names[peer.stage]}, client TLS {names[client.stage]}"


@dataclass(frozen=True)
class Settings:
    """Both kinds' records together: what the member configs depend on."""

    peer: TlsRecord = field(default_factory=TlsRecord)
    client: TlsRecord = field(default_factory=TlsRecord)

    def record(self, kind: str) -> TlsRecord:
        return self.peer if kind == PEER else self.client

    def digest_part(self) -> str:
        if self.peer.stage == "off" and self.client.stage == "off":
            return ""  # plaintext: the digest stays what it was before TLS existed
        return f"peer={self.peer.digest_part()};client={self.client.digest_part()}"
