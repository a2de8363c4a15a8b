"""Rolling restarts: one member at a time, the etcd leader last, each after the previous one is
a healthy voter again. Pure decisions over the same observation as the membership core.

The lock lives in the peer relation, where the truth is: every unit publishes the digest of the
config its member runs (`config-digest`); the Juju leader, who knows the wanted digest, grants
one turn at a time in app data (`restart-turn`) to a unit that is behind, the etcd leader's unit
only when no other is; the unit holding the turn hands raft leadership over if it has it,
restarts, and publishes its new digest once it is a healthy voter again, which frees the turn.

Why not charmlibs-rollingops: its lock hands out turns but knows nothing of raft leadership or
voter health, which is exactly what orders an etcd restart; the lock itself is a few lines here.
"""

from __future__ import annotations

from core.messages import say
from core.model import ClusterView, Member, Observation, UnitInfo
from core.steps import GrantTurn, Idle, MoveLeader, ReleaseTurn, Restart, Wait

RestartStep = Idle | Wait | MoveLeader | Restart
TurnStep = Idle | Wait | GrantTurn | ReleaseTurn


def pending(obs: Observation) -> bool:
    """This unit runs a config other than the wanted one."""
    return (
        obs.running
        and obs.config.running_digest is not None
        and obs.config.running_digest != obs.config.wanted_digest
    )


def next_restart_step(obs: Observation) -> RestartStep:
    """What this unit does about its own pending restart."""
    if not pending(obs):
        return Idle()
    if obs.app.restart_turn != obs.me.unit:
        return Wait(say("restart.turn"))
    view = obs.cluster
    if view is None:
        return Wait(say("restart.no-answer"))
    me = view.find(obs.me.member_name, obs.me.peer_url)
    if me is None or me.is_learner:
        return Wait(say("restart.learner"))
    others = [m for m in view.healthy_voters if m.id != me.id]
    if me.id == view.leader_id and others:
        return MoveLeader(to=min(others, key=lambda m: m.name))
    update = obs.me.peer_url if obs.me.peer_url not in me.peer_urls else None
    return Restart(digest=obs.config.wanted_digest, peer_url=update)


def behind(obs: Observation, unit: UnitInfo) -> bool:
    """`unit` runs a member whose config is not the wanted one."""
    return bool(unit.config_digest) and unit.config_digest != obs.config.wanted_digest


def next_turn_step(obs: Observation) -> TurnStep:
    """The Juju leader's side of the lock: release a finished turn, grant the next one."""
    if not obs.is_leader:
        return Idle()
    holder = obs.app.restart_turn
    waiting = [u.unit for u in obs.units if behind(obs, u)]
    if holder is not None:
        if holder not in waiting:
            return ReleaseTurn(unit=holder)
        return Idle()  # the holder is restarting
    if not waiting:
        return Idle()
    view = obs.cluster
    if view is None:
        return Wait(say("restart.waits-no-answer"))
    reason = _unsafe(view, obs)
    if reason:
        return Wait(say("restart.waits", why=reason))
    return GrantTurn(unit=_next_in_line(view, waiting))


def _unsafe(view: ClusterView, obs: Observation) -> str | None:
    if view.learners:
        return say("restart.joining-learner")
    if obs.app.join is not None:
        return say("restart.joining-unit")
    down = [m.name or m.id for m in view.voters if m.id not in view.healthy_ids]
    if down:
        return say("restart.unhealthy", members=", ".join(sorted(down)))
    return None


def _next_in_line(view: ClusterView, units: list[str]) -> str:
    """Followers first, in unit order; the raft leader's unit last."""

    def leads(unit: str) -> bool:
        member: Member | None = next(
            (m for m in view.members if m.name == unit.replace("/", "-")), None
        )
        return member is not None and member.id == view.leader_id

    return min(units, key=lambda u: (leads(u), int(u.rsplit("/", 1)[1])))
