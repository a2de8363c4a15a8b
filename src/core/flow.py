"""The reconcile, as data: one ordered list of named passes, each a pure decision over the
same observation. The engine runs `next_step`, carries out the step it names, observes again,
and repeats until every pass rests; the unit tests' simulation of a whole deployment runs the
very same list, so the two cannot drift apart.

The order is the priority: this unit's own member first (it may be unable to serve at all),
then its pending restart, then the leader's membership work, then the leader's rolling-restart
lock, TLS, auth and client users. A pass marked `after` runs only once that earlier pass rests
in `Idle` (not merely waits): no restart while this unit's member is still joining, no TLS,
auth or client change while the membership is moving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core import access, membership, rolling, tls
from core.model import Observation
from core.steps import RESTING, Idle, Step


@dataclass(frozen=True)
class Pass:
    """One decision of the reconcile."""

    name: str
    decide: Callable[[Observation], Step]
    after: str | None = None  # run only when this earlier pass returned Idle


FLOW: tuple[Pass, ...] = (
    Pass("local", lambda obs: membership.next_local_step(obs, obs.new_token)),
    Pass("restart", rolling.next_restart_step, after="local"),
    Pass("cluster", membership.next_cluster_step),
    Pass("turn", rolling.next_turn_step, after="cluster"),
    Pass("tls", tls.next_tls_step, after="cluster"),
    Pass("auth", access.next_auth_step, after="cluster"),
    Pass("clients", access.next_clients_step, after="cluster"),
)


@dataclass(frozen=True)
class Decision:
    """What the passes said, in order, up to the first that acts."""

    said: dict[str, Step]  # pass name -> its step, for the passes that ran
    acting: str | None = None  # the pass whose step is to be carried out, if any

    @property
    def step(self) -> Step | None:
        return self.said[self.acting] if self.acting else None


def next_step(
    obs: Observation, skip: frozenset[str] = frozenset(), flow: tuple[Pass, ...] = FLOW
) -> Decision:
    """Run the passes in order until one returns a step that acts. `skip`: passes whose step
    was carried out without effect on this same observation (a promotion not yet accepted,
    a bootstrap plan to be committed first): they count as resting, and the next ones run."""
    said: dict[str, Step] = {}
    for entry in flow:
        if entry.after is not None and said.get(entry.after) != Idle():
            continue
        step = entry.decide(obs)
        said[entry.name] = step
        if acts(step) and entry.name not in skip:
            return Decision(said, entry.name)
    return Decision(said)


def acts(step: Step) -> bool:
    """A step to carry out, rather than one that rests (Wait, Idle, Blocked and its kinds)."""
    return not isinstance(step, RESTING)
