"""The rolling-restart lock (core/rolling.py): one member at a time, the etcd leader last."""

import dataclasses

import pytest

from core import rolling
from core.messages import say
from core.model import ConfigState, JoinTicket
from core.steps import GrantTurn, Idle, MoveLeader, ReleaseTurn, Restart, Wait
from tests.unit.test_membership import formed, member, observe, unit, view

OLD, NEW = "digest-old", "digest-new"


def units(*digests: str | None):
    """Units 0.. with members a0.. running the given config digests."""
    return [
        dataclasses.replace(unit(n, member_id=f"a{n}"), config_digest=d)
        for n, d in enumerate(digests)
    ]


def cluster_of(us, *, leader="a0", healthy=None, learners=()):
    members = [member(u, u.member_id, learner=u.member_id in learners) for u in us]
    return view(*members, leader=leader, healthy=healthy)


def with_config(obs, running, wanted=NEW):
    return dataclasses.replace(
        obs, config=ConfigState(running_digest=running, wanted_digest=wanted)
    )


def turn_obs(us, **kw):
    cluster = kw.pop("cluster", "default")
    me, *peers = us
    obs = observe(
        me,
        peers=tuple(peers),
        leader=kw.pop("leader", True),
        app=formed(**kw),
        running=True,
        data=True,
        cluster=cluster_of(us) if cluster == "default" else cluster,
    )
    return with_config(obs, me.config_digest)


class TestPending:
    @pytest.mark.parametrize(
        "running, digest, expected",
        [(True, OLD, True), (True, NEW, False), (False, OLD, False), (True, None, False)],
        ids=["behind", "current", "not-running", "no-digest-yet"],
    )
    def test_pending_only_when_running_an_older_config(self, running, digest, expected):
        obs = dataclasses.replace(
            observe(unit(0), running=running), config=ConfigState(digest, NEW)
        )
        assert rolling.pending(obs) is expected


class TestTheLeadersLock:
    def test_not_the_leader_grants_nothing(self):
        assert rolling.next_turn_step(turn_obs(units(OLD, OLD), leader=False)) == Idle()

    def test_nobody_behind_nothing_to_grant(self):
        assert rolling.next_turn_step(turn_obs(units(NEW, NEW, NEW))) == Idle()

    def test_followers_first_in_unit_order(self):
        # a0 leads: a1 goes first, then a2, a0 last.
        assert rolling.next_turn_step(turn_obs(units(OLD, OLD, OLD))) == GrantTurn("etcd-k8s/1")

    def test_the_raft_leaders_unit_goes_last(self):
        obs = turn_obs(units(OLD, NEW, NEW))
        assert rolling.next_turn_step(obs) == GrantTurn("etcd-k8s/0")

    def test_a_holder_still_behind_keeps_the_turn(self):
        obs = turn_obs(units(NEW, OLD, OLD), restart_turn="etcd-k8s/1")
        assert rolling.next_turn_step(obs) == Idle()

    def test_a_holder_caught_up_releases_the_turn(self):
        obs = turn_obs(units(OLD, NEW, OLD), restart_turn="etcd-k8s/1")
        assert rolling.next_turn_step(obs) == ReleaseTurn("etcd-k8s/1")

    def test_a_unit_without_a_digest_is_not_behind(self):
        # A unit that never ran its member has nothing to restart.
        assert rolling.next_turn_step(turn_obs(units(NEW, None, NEW))) == Idle()

    def test_no_member_answers_waits(self):
        step = rolling.next_turn_step(turn_obs(units(OLD, OLD), cluster=None))
        assert step == Wait(say("restart.waits-no-answer"))

    def test_an_unhealthy_voter_holds_the_roll_and_is_named(self):
        us = units(OLD, OLD, OLD)
        step = rolling.next_turn_step(turn_obs(us, cluster=cluster_of(us, healthy={"a0", "a1"})))
        assert isinstance(step, Wait) and "etcd-k8s-2" in step.reason

    def test_a_learner_holds_the_roll(self):
        us = units(OLD, OLD, OLD)
        step = rolling.next_turn_step(turn_obs(us, cluster=cluster_of(us, learners={"a2"})))
        assert step == Wait(say("restart.waits", why=say("restart.joining-learner")))

    def test_a_join_under_way_holds_the_roll(self):
        joiner = unit(3)
        ticket = JoinTicket(joiner.member_name, "a3", joiner.peer_url, "etcd-k8s-0=x")
        step = rolling.next_turn_step(turn_obs(units(OLD, OLD, OLD), join=ticket))
        assert step == Wait(say("restart.waits", why=say("restart.joining-unit")))


def restart_obs(us, me_n, *, turn, leader="a0", healthy=None, learners=(), cluster="default"):
    me = us[me_n]
    peers = tuple(u for u in us if u is not me)
    obs = observe(
        me,
        peers=peers,
        app=formed(restart_turn=turn),
        running=True,
        data=True,
        cluster=(
            cluster_of(us, leader=leader, healthy=healthy, learners=learners)
            if cluster == "default"
            else cluster
        ),
    )
    return with_config(obs, me.config_digest)


class TestTheUnitsTurn:
    def test_nothing_pending_nothing_to_do(self):
        us = units(NEW, NEW)
        assert rolling.next_restart_step(restart_obs(us, 1, turn="etcd-k8s/1")) == Idle()

    def test_waits_for_its_turn(self):
        step = rolling.next_restart_step(restart_obs(units(OLD, OLD), 1, turn="etcd-k8s/0"))
        assert step == Wait(say("restart.turn"))

    def test_a_follower_restarts_in_its_turn(self):
        step = rolling.next_restart_step(restart_obs(units(OLD, OLD), 1, turn="etcd-k8s/1"))
        assert step == Restart(digest=NEW, peer_url=None)

    def test_the_leader_hands_leadership_over_first(self):
        step = rolling.next_restart_step(restart_obs(units(OLD, NEW, NEW), 0, turn="etcd-k8s/0"))
        assert step == MoveLeader(to=member(unit(1), "a1"))

    def test_the_leader_hands_over_only_to_a_healthy_voter(self):
        us = units(OLD, NEW, NEW)
        obs = restart_obs(us, 0, turn="etcd-k8s/0", healthy={"a0", "a2"})
        assert rolling.next_restart_step(obs) == MoveLeader(to=member(us[2], "a2"))

    def test_a_lone_leader_restarts_without_handing_over(self):
        step = rolling.next_restart_step(restart_obs(units(OLD), 0, turn="etcd-k8s/0"))
        assert step == Restart(digest=NEW, peer_url=None)

    def test_a_learner_waits_to_be_promoted(self):
        obs = restart_obs(units(NEW, OLD), 1, turn="etcd-k8s/1", learners={"a1"})
        assert rolling.next_restart_step(obs) == Wait(say("restart.learner"))

    def test_no_member_answers_waits(self):
        obs = restart_obs(units(NEW, OLD), 1, turn="etcd-k8s/1", cluster=None)
        assert rolling.next_restart_step(obs) == Wait(say("restart.no-answer"))

    def test_a_changed_peer_url_is_updated_with_the_restart(self):
        us = units(NEW, OLD)
        us[1] = dataclasses.replace(us[1], peer_url=us[1].peer_url.replace("http:", "https:"))
        obs = restart_obs(us, 1, turn="etcd-k8s/1")
        # The member list still has the http URL: the restart carries the update.
        obs = dataclasses.replace(obs, cluster=cluster_of(units(NEW, OLD)))
        assert rolling.next_restart_step(obs) == Restart(digest=NEW, peer_url=us[1].peer_url)
