"""Every step the core can return, one frozen dataclass each: what to do next, and why.

A resting step (Wait, Idle, Blocked and its kinds) ends a reconcile pass; any other step is
carried out by the engine's handler for its type, after which the unit observes again."""

from __future__ import annotations

from dataclasses import dataclass

from core.clients import Change
from core.model import JoinTicket, Material, Member, TlsRecord, UnitInfo


@dataclass(frozen=True)
class Wait:
    """Nothing to do now; `reason` says for what, in words for `juju status`."""

    reason: str


@dataclass(frozen=True)
class Idle:
    """All is as it should be for this part of the decision."""


@dataclass(frozen=True)
class PlanBootstrap:
    """Leader: record in app data that `member` bootstraps a new cluster with `token`."""

    member: str
    token: str


@dataclass(frozen=True)
class Bootstrap:
    """Start a one-member cluster, state `new`."""

    token: str


@dataclass(frozen=True)
class StartMember:
    """Start the member whose data is on disk."""


@dataclass(frozen=True)
class Join:
    """Start as the learner the leader added, state `existing`."""

    ticket: JoinTicket
    token: str


@dataclass(frozen=True)
class Promote:
    """Promote a started learner to voter (the learner itself or the leader may do it)."""

    member: Member


@dataclass(frozen=True)
class RecordCluster:
    """Leader: remember the cluster id, which marks the cluster as formed."""

    cluster_id: str


@dataclass(frozen=True)
class AddLearner:
    """Leader: `member add --learner` for this unit, then publish its join ticket."""

    unit: UnitInfo


@dataclass(frozen=True)
class PublishTicket:
    """Leader: (re)publish the join ticket of the learner already added."""

    ticket: JoinTicket


@dataclass(frozen=True)
class ClearTicket:
    """Leader: the joiner is a voter now (or gone); drop its ticket."""


@dataclass(frozen=True)
class WipeStaleData:
    """The data on disk belongs to a member the cluster no longer has: wipe it, then join anew."""

    reason: str


@dataclass(frozen=True)
class DropSuperseded:
    """The leader restored the cluster from a snapshot; this unit's data is of the cluster the
    restore replaced: stop etcd and wipe it, then join the restored cluster as a learner."""

    reason: str


@dataclass(frozen=True)
class RemoveMember:
    """`member remove`: a member whose data is gone, or whose unit is gone."""

    member: Member
    reason: str


@dataclass(frozen=True)
class MoveLeader:
    """`move-leader` to a healthy voter before this member leaves."""

    to: Member


@dataclass(frozen=True)
class Left:
    """This unit's member is no longer in the cluster: stop etcd."""


@dataclass(frozen=True)
class LastVoter:
    """This is the last voter and its unit goes: the application is being removed. Stop etcd;
    removing the member would leave nothing to remove it from."""


@dataclass(frozen=True)
class Blocked:
    """Something only an operator can settle."""

    reason: str


@dataclass(frozen=True)
class HoldData(Blocked):
    """This unit's data is of a member the cluster dropped, yet holds writes the cluster lacks:
    it is kept until an operator decides (discard-data), and the unit must not be re-added."""


LocalStep = (
    Wait
    | Idle
    | PlanBootstrap
    | Bootstrap
    | StartMember
    | Join
    | Promote
    | WipeStaleData
    | DropSuperseded
    | RemoveMember
    | Blocked
)
ClusterStep = (
    Wait
    | Idle
    | RecordCluster
    | AddLearner
    | PublishTicket
    | ClearTicket
    | Promote
    | RemoveMember
    | Blocked
)
DepartureStep = Wait | MoveLeader | RemoveMember | Left | LastVoter | Blocked


# ---- rolling restarts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Restart:
    """Restart this member with the wanted config (the turn is ours, leadership handed over).
    `peer_url`: first `member update` this member's peer URL to it (peer TLS switching)."""

    digest: str
    peer_url: str | None = None


@dataclass(frozen=True)
class GrantTurn:
    """Leader: `unit` may restart now (the rolling restart lock)."""

    unit: str


@dataclass(frozen=True)
class ReleaseTurn:
    """Leader: `unit` restarted and is a healthy voter again: the turn is free."""

    unit: str


# ---- TLS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keep:
    """Nothing to change in the unit's certificate files."""

    reason: str = ""


@dataclass(frozen=True)
class Install:
    """Put this certificate (and key) in use; etcd reads the files per connection."""

    material: Material


@dataclass(frozen=True)
class Remove:
    """TLS is off and the relation gone: the files go."""


@dataclass(frozen=True)
class NewRecord:
    """Leader: one TLS kind's application record takes its next step."""

    record: TlsRecord
    why: str


@dataclass(frozen=True)
class TlsStep:
    """Leader: the TLS records' next steps (kind, new record), written together. `waits`:
    what holds the other kind back, for the app status."""

    changes: tuple[tuple[str, NewRecord], ...]
    waits: str | None = None


@dataclass(frozen=True)
class EnableAuth:
    """Leader: client TLS is on everywhere: root (the application's password) and auth on."""


@dataclass(frozen=True)
class DisableAuth:
    """Leader: client TLS goes off: auth off first, or clients would be left with no way in."""


@dataclass(frozen=True)
class SettleRootPassword:
    """Leader: a rotation was cut short: keep whichever of the two passwords etcd accepts."""


@dataclass(frozen=True)
class ApplyClients:
    """Leader: bring etcd's client users and roles to what the relations ask for. `sweep`:
    etcd was never checked against the relations (a restore): drop the roles none holds."""

    changes: tuple[Change, ...]
    sweep: bool = False
    keep: frozenset[str] = frozenset()  # the roles the relations hold, when sweeping


@dataclass(frozen=True)
class CutDone:
    """Only the restoring member is left in the old cluster (or nothing answers)."""


# The steps that end a pass: nothing to carry out.
RESTING = (Wait, Idle, Blocked)

Step = (
    LocalStep
    | ClusterStep
    | DepartureStep
    | Restart
    | GrantTurn
    | ReleaseTurn
    | TlsStep
    | EnableAuth
    | DisableAuth
    | SettleRootPassword
    | ApplyClients
)
