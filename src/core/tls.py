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

from collections.abc import Mapping
from dataclasses import replace

from core import rolling
from core.messages import say
from core.model import (
    CLIENT,
    KINDS,
    PEER,
    Kind,
    Material,
    Observation,
    Stage,
    TlsRecord,
    UnitTls,
)
from core.pem import bundle_of, fingerprint
from core.steps import Idle, Install, Keep, NewRecord, Remove, TlsStep, Wait

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
        if not members or not wanted:
            # No member runs yet (the bootstrap's own hook) or no CA came: "every member has
            # a certificate" would hold of nobody, and etcd would start on files not there.
            missing = missing or sorted(members or units) or ["the first member"]
        if missing:
            return Wait(say("tls.await-certificate", kind=kind, units=", ".join(missing)))
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
    return say("app.tls", peer=names[peer.stage], client=names[client.stage])


# ---- the leader's pass ---------------------------------------------------------------------


def next_tls_step(obs: Observation) -> TlsStep | Wait | Idle:
    """Leader: the next step of each kind's record, once every running member runs the
    config of the current ones and nothing else is under way (rolls, joins, unhealthy
    voters). The Wait says why TLS does not move on, for the app status."""
    if not obs.is_leader or obs.app.cluster_id is None or obs.cluster is None:
        return Idle()
    steps = _record_steps(obs)
    waits = [step.reason for step in steps.values() if isinstance(step, Wait)]
    changes = tuple((k, s) for k, s in steps.items() if isinstance(s, NewRecord))
    busy = busy_reason(obs)
    if busy:
        # Say so only when a TLS step is due: a plain config roll is not TLS waiting.
        reason = busy if changes else "; ".join(waits)
        return Wait(reason) if reason else Idle()
    if changes:
        return TlsStep(changes, "; ".join(waits) or None)
    return Wait("; ".join(waits)) if waits else Idle()


def _record_steps(obs: Observation) -> dict[str, RecordStep]:
    members = frozenset(u.unit for u in obs.units if u.member_id and u.config_digest)
    steps: dict[str, RecordStep] = {}
    for kind in KINDS:
        steps[kind] = next_record(
            kind,  # type: ignore[arg-type]
            obs.app.tls.record(kind),
            kind in obs.tls.related,
            {name: info.get(kind) for name, info in obs.tls.units.items()},
            members,
            obs.tls.extra_trust if kind == CLIENT else (),
        )
    if _blocks_client_off(obs, steps[CLIENT]):
        steps[CLIENT] = Wait(say("tls.client-off-after-auth"))
    return steps


def _blocks_client_off(obs: Observation, step: RecordStep) -> bool:
    """Client TLS must not go off while auth is on: clients would be left with no way in."""
    return (
        isinstance(step, NewRecord)
        and step.record.stage == "off"
        and obs.app.tls.client.stage == "on"
        and obs.app.auth_on
    )


def busy_reason(obs: Observation) -> str | None:
    """Why the application's TLS must not take its next step now."""
    # A unit behind the wanted config always makes the lock act (grant, wait or hold).
    if rolling.next_turn_step(obs) != Idle() or obs.app.restart_turn:
        return say("tls.busy-roll")
    if obs.app.join is not None or (obs.cluster and obs.cluster.learners):
        return say("tls.busy-join")
    if obs.cluster and len(obs.cluster.healthy_voters) < len(obs.cluster.voters):
        return say("tls.busy-unhealthy")
    return None
