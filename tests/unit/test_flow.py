"""The reconcile as data (core/flow.py): passes in order, the first that acts wins, `after`
gates a pass on an earlier one resting in Idle, and a pass tried without effect is skipped.
And the one deadline all in-hook waits share (engine/context.py)."""

from __future__ import annotations

import logging
import time

from core import flow
from core.flow import Pass
from core.steps import Bootstrap, Idle, Promote, StartMember, Wait
from engine.context import Deadline
from tests.unit.test_membership import member, observe, unit

OBS = observe(unit(0))


def passes(**said: object) -> tuple[Pass, ...]:
    order = ("local", "restart", "cluster", "turn")
    after = {"restart": "local", "turn": "cluster"}
    return tuple(Pass(n, lambda _o, v=said[n]: v, after.get(n)) for n in order)  # type: ignore[misc]


def test_the_first_acting_pass_wins() -> None:
    chosen = flow.next_step(
        OBS, flow=passes(local=Idle(), restart=StartMember(), cluster=Bootstrap("t"), turn=Idle())
    )
    assert chosen.acting == "restart" and chosen.step == StartMember()
    assert set(chosen.said) == {"local", "restart"}  # later passes are not asked


def test_a_gated_pass_runs_only_after_idle() -> None:
    """A local Wait holds the restart pass, not the leader's cluster pass."""
    chosen = flow.next_step(
        OBS,
        flow=passes(local=Wait("x"), restart=StartMember(), cluster=Bootstrap("t"), turn=Idle()),
    )
    assert chosen.acting == "cluster" and "restart" not in chosen.said


def test_a_pass_tried_without_effect_lets_the_next_run() -> None:
    learner = Promote(member(unit(1), "a1", learner=True))
    flows = passes(local=learner, restart=StartMember(), cluster=learner, turn=Bootstrap("t"))
    first = flow.next_step(OBS, flow=flows)
    assert first.acting == "local"
    second = flow.next_step(OBS, skip=frozenset({"local"}), flow=flows)
    assert second.acting == "cluster"  # restart stays gated: local did not rest in Idle
    third = flow.next_step(OBS, skip=frozenset({"local", "cluster"}), flow=flows)
    assert third.acting is None and third.step is None


def test_all_resting_acts_nothing() -> None:
    chosen = flow.next_step(
        OBS, flow=passes(local=Idle(), restart=Idle(), cluster=Wait("w"), turn=Idle())
    )
    assert chosen.acting is None
    assert "turn" not in chosen.said  # gated on cluster, which waited


def test_the_real_flow_rests_on_a_fresh_unit() -> None:
    chosen = flow.next_step(observe(unit(0)))
    assert chosen.said["local"] == Wait("waiting for the leader to plan the cluster bootstrap")


def test_the_deadline_cuts_waits_short_and_says_so(caplog) -> None:
    deadline = Deadline(0.5)
    assert deadline.budget(0.1, "a short wait") == 0.1
    with caplog.at_level(logging.WARNING):
        allowed = deadline.budget(30, "a promotion")
    assert 0 < allowed <= 0.5
    assert "a promotion waits" in caplog.text
    time.sleep(0.6)
    assert deadline.budget(5, "a start") == 0.0
