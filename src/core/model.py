"""What a unit observes, as plain data: the live member list, the peer databags, its own disk,
config and certificates, and what the client relations ask for. The core decides from these;
engine/observe.py fills them in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from core.clients import Decision
from core.pem import fingerprint, split_pem
from core.refresh import Versions

# ---- TLS, as the members' configs depend on it ------------------------------------------------

PEER = "peer"
CLIENT = "client"
KINDS = (PEER, CLIENT)
Kind = Literal["peer", "client"]
Stage = Literal["off", "trust", "on"]  # "trust" exists for peer only


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


# ---- membership ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One entry of `etcdctl member list`."""

    id: str  # hex, as etcdctl takes it back
    name: str  # empty until the member has started once
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False

    @property
    def started(self) -> bool:
        return bool(self.name)


@dataclass(frozen=True)
class ClusterView:
    """What a reachable cluster says about itself."""

    cluster_id: str
    members: tuple[Member, ...]
    healthy_ids: frozenset[str] = frozenset()  # members whose endpoint answered a status call
    leader_id: str | None = None
    # (member id, raft index) of the members that answered: how much of the log each holds.
    raft_indexes: tuple[tuple[str, int], ...] = ()
    releases: tuple[tuple[str, str], ...] = ()  # (member id, etcd release) of those that answered

    @property
    def raft_index(self) -> int | None:
        """The furthest any answering member has got: where this cluster's history stands."""
        return max((index for _, index in self.raft_indexes), default=None)

    def index_of(self, member_id: str) -> int | None:
        return next((index for mid, index in self.raft_indexes if mid == member_id), None)

    @property
    def voters(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if not m.is_learner)

    @property
    def learners(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.is_learner)

    @property
    def healthy_voters(self) -> tuple[Member, ...]:
        return tuple(m for m in self.voters if m.id in self.healthy_ids)

    def find(self, name: str, peer_url: str) -> Member | None:
        """The member for a unit: by name once started, by peer URL before."""
        for member in self.members:
            if member.name == name or peer_url in member.peer_urls:
                return member
        return None


@dataclass(frozen=True)
class UnitInfo:
    """A unit as its peer unit databag describes it (the local unit included)."""

    unit: str  # "etcd-k8s/3"
    member_name: str  # "etcd-k8s-3"
    peer_url: str
    client_url: str
    member_id: str | None = None  # set once the unit has run its member
    config_digest: str | None = None  # digest of the config its member runs
    waiting_for: str | None = None  # what the unit needs before its member can start
    # What the unit last said of its own member (MemberState), through Juju: readable while
    # etcd traffic is cut, so a unit that reaches no member can tell "cut off" from "alone".
    member_state: str | None = None
    rebuild: RebuildRecord | None = None  # the last rebuild-cluster this unit ran

    @property
    def number(self) -> int:
        return int(self.unit.rsplit("/", 1)[1])


@dataclass(frozen=True)
class JoinTicket:
    """What the leader publishes for the one unit it has added as a learner."""

    member_name: str
    member_id: str
    peer_url: str
    initial_cluster: str  # "name=peer-url,..." including the joiner itself


@dataclass(frozen=True)
class AppState:
    """The peer app databag: written by the Juju leader only."""

    cluster_token: str | None = None
    bootstrap_member: str | None = None
    cluster_id: str | None = None
    join: JoinTicket | None = None
    restart_turn: str | None = None  # the one unit allowed to restart now
    restore: RestoreRecord | None = None  # the last whole-cluster restore
    tls: Settings = field(default_factory=lambda: Settings())
    auth_on: bool = False  # the leader turned etcd auth on (peer app data `auth`)


@dataclass(frozen=True)
class RestoreRecord:
    """The leader restored the cluster from a snapshot: data of `superseded` is to be dropped."""

    id: str
    snapshot: str
    superseded: str  # the cluster id before the restore
    cluster_id: str  # the cluster id the restore made
    seed: str  # the member name that restored; the others rejoin it as learners


# What a unit says of its own member (UnitInfo.member_state).
SERVING = "serving"  # a voter that sees a leader
LEARNER = "learner"
NO_LEADER = "no-leader"  # running, but sees no leader: cut off, or the majority is down
STOPPED = "stopped"  # data on disk, etcd not running
EMPTY = "empty"  # no member data on the volume
OUT_OF_QUORUM = frozenset({NO_LEADER, STOPPED, EMPTY})  # part of no quorum when it said so


@dataclass(frozen=True)
class RebuildRecord:
    """rebuild-cluster ran on a unit: its member carried on alone from `raft_index`; members
    of `cluster_id` with more of the log than that were cut loose, never to be wiped lightly."""

    member_id: str
    cluster_id: str
    raft_index: int
    dropped: tuple[str, ...] = ()  # the member ids the rebuild cut loose


@dataclass(frozen=True)
class Marker:
    """What the charm wrote beside the data: which member and cluster it is of. `joining`: the
    member was started as a learner and has not published itself yet, so the data may be a
    failed start's leftovers rather than a member's log. `raft_index`: the furthest this member
    was seen to get, to tell its data apart from a cluster that no longer lists it."""

    member_id: str
    cluster_id: str
    joining: bool = False
    raft_index: int | None = None
    release: str | None = None  # the etcd release that last ran this data ("3.4.23")


@dataclass(frozen=True)
class Disk:
    """What the unit's data volume holds."""

    has_member_data: bool = False  # <data-dir>/member exists
    marker: Marker | None = None


@dataclass(frozen=True)
class ConfigState:
    """The options digest of the running member's config file, and of the options wanted now."""

    running_digest: str | None = None
    wanted_digest: str = ""


@dataclass(frozen=True)
class TlsState:
    """The certificates side of an observation: which relations exist, and what every unit
    says it has in use and on offer (for the leader's next TLS step)."""

    related: frozenset[str] = frozenset()  # TLS kinds whose certificates relation exists
    units: Mapping[str, Mapping[str, UnitTls | None]] = field(default_factory=dict)
    extra_trust: tuple[str, ...] = ()  # client kind: the client relations' leaves to trust


@dataclass(frozen=True)
class ClientsState:
    """The client relations, for the leader: what is decided, and what etcd holds already."""

    decision: Decision
    applied_raw: str | None = None  # peer app data `clients` as written; None: never checked


@dataclass(frozen=True)
class Observation:
    """Everything one reconcile pass decides from."""

    me: UnitInfo
    is_leader: bool
    app: AppState
    peers: tuple[UnitInfo, ...]  # the other units on the peer relation
    disk: Disk
    running: bool  # the etcd service is active in this unit's Pebble
    cluster: ClusterView | None  # None: no member could be reached
    # Member names of every unit Juju has on the peer relation (this one included), whether or
    # not it has written its databag yet: the truth about which units exist.
    present: frozenset[str] = frozenset()
    config: ConfigState = ConfigState()
    tls: TlsState = TlsState()
    clients: ClientsState | None = None  # the leader's view of the client relations
    new_token: str = ""  # a fresh cluster token, should a bootstrap be planned now
    # Leader: a root password rotation was cut short; which password etcd has is not known.
    root_in_doubt: bool = False
    # Refresh: the image's, the cluster's and the data's versions (core/refresh.py's guard);
    # gathered while this unit's etcd is stopped, and on the leader (for the app status).
    versions: Versions | None = None

    @property
    def units(self) -> tuple[UnitInfo, ...]:
        return (self.me, *self.peers)

    def has_unit(self, member: Member) -> bool:
        if member.name:
            return member.name in self.present
        return any(
            u.peer_url in member.peer_urls for u in self.units if u.member_name in self.present
        )
