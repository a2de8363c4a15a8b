"""Where a reconcile ended, and what `juju status` says about it: one unit status and (on the
leader) one app status per hook, decided here and set by the charm's collect-status."""

from __future__ import annotations

from dataclasses import dataclass, field

from core import tls
from core.messages import say
from core.model import ClusterView, RestoreRecord, Settings, UnitInfo
from core.recovery import Verdict
from core.refresh import Versions, version_note
from core.steps import Blocked, ClusterStep, Idle, LocalStep, PlanBootstrap, Wait


@dataclass(frozen=True)
class Status:
    """A Juju status: `name` is active, waiting, blocked or maintenance."""

    name: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """Where the reconcile ended, for the status."""

    local: LocalStep
    cluster: ClusterStep
    view: ClusterView | None
    me: UnitInfo
    verdict: Verdict | None = None  # where the quorum is, when this unit sees none
    restore: RestoreRecord | None = None  # the last whole-cluster restore
    config_pending: bool = False  # this member waits for its turn to restart
    tls: Settings = field(default_factory=Settings)
    tls_waits: str | None = None  # why the application's TLS does not move on
    access_waits: str | None = None  # why etcd auth or a client's user does not move on
    versions: Versions | None = None  # the leader's: which etcd releases run, cluster version


def unit_status(outcome: Outcome) -> Status:
    step = outcome.local
    if isinstance(step, Blocked):
        return Status("blocked", step.reason)
    if isinstance(step, Idle) and outcome.verdict and outcome.verdict.kind == "cut-off":
        return Status("waiting", outcome.verdict.message)  # 3.4 answers from its own state
    if isinstance(step, Wait):
        return Status("waiting", step.reason)
    if isinstance(step, PlanBootstrap):
        return Status("maintenance", say("unit.bootstrap-planned"))
    view = outcome.view
    member = view.find(outcome.me.member_name, outcome.me.peer_url) if view else None
    if member is None or view is None:
        return Status("waiting", say("member.unlisted"))
    if member.is_learner:
        role = "learner (catching up)"
    elif member.id == view.leader_id:
        role = "leader"
    else:
        role = "follower"
    message = say("member.role", role=role, member_id=member.id)
    if outcome.tls != Settings():
        message += f"; {tls.describe(outcome.tls.peer, outcome.tls.client)}"
    if outcome.config_pending:
        message += f"; {say('restart.pending')}"
    return Status("active", message)


def with_failing_checks(status: Status, failing: tuple[str, ...]) -> Status:
    """The unit's status, saying which of its Pebble health checks are down."""
    if not failing:
        return status
    message = f"{status.message}; {say('check.failing', names=', '.join(sorted(failing)))}"
    return Status(status.name, message)


def app_status(
    outcome: Outcome, units: int, backups_refused: str | None = None, backups: str | None = None
) -> Status:
    """The application's status; `backups_refused`: why the s3-credentials data is refused
    (a note: etcd serves on, backups cannot run); `backups`: the last backup's age and the
    last failure (core.schedule.note)."""
    said = _app_status(outcome, units)
    notes = [said.message]
    if backups_refused:
        notes.append(say("app.s3-refused", why=backups_refused))
    if backups:
        notes.append(backups)
    return Status(said.name, "; ".join(notes))


def _app_status(outcome: Outcome, units: int) -> Status:
    verdict = outcome.verdict
    if verdict is not None and verdict.kind == "cut-off":
        return Status("waiting", verdict.message)
    if verdict is not None and verdict.kind != "quorum":
        return Status("blocked", verdict.message)
    step = outcome.cluster
    if isinstance(step, Blocked):
        return Status("blocked", step.reason)
    view = outcome.view
    if view is None:
        if isinstance(outcome.local, Wait | Blocked):
            return Status("waiting", outcome.local.reason)
        return Status("waiting", say("cluster.no-answer"))
    healthy = len(view.healthy_voters)
    message = say("app.voters", healthy=healthy, units=units) + _app_notes(outcome, view, units)
    if healthy == units and not view.learners:
        if units == 2:
            message += f"; {say('app.two')}"
        elif units == 1:
            message += f"; {say('app.one')}"
        return Status("active", message)
    return Status("waiting", message)


def _app_notes(outcome: Outcome, view: ClusterView, units: int) -> str:
    notes = []
    if view.learners:
        notes.append(say("app.learner", member=view.learners[0].name or view.learners[0].id))
    if isinstance(outcome.cluster, Wait):
        notes.append(outcome.cluster.reason)
    if outcome.tls != Settings():
        notes.append(tls.describe(outcome.tls.peer, outcome.tls.client))
    notes += [n for n in (outcome.tls_waits, outcome.access_waits) if n]
    if outcome.versions is not None and view.releases:
        note = version_note((r for _, r in view.releases), outcome.versions.cluster)
        notes += [note] if note else []
    if outcome.restore is not None and len(view.healthy_voters) < units:
        notes.append(say("app.restored", snapshot=outcome.restore.snapshot))
    return "".join(f"; {n}" for n in notes)
