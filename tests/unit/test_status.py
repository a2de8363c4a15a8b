"""unit_status and app_status: what `juju status` says for a reconcile outcome."""

from __future__ import annotations

import dataclasses

import ops
import pytest

from core import status
from core.model import ClusterView, Member, RestoreRecord, UnitInfo
from core.recovery import Verdict
from core.status import Outcome
from core.steps import AddLearner, Blocked, Idle, PlanBootstrap, Promote, Wait


def unit(n: int) -> UnitInfo:
    name = f"etcd-k8s-{n}"
    return UnitInfo(f"etcd-k8s/{n}", name, f"http://{name}:2380", f"http://{name}:2379")


def member(n: int, *, learner: bool = False, started: bool = True) -> Member:
    u = unit(n)
    return Member(
        id=f"a{n}",
        name=u.member_name if started else "",
        peer_urls=(u.peer_url,),
        client_urls=(u.client_url,),
        is_learner=learner,
    )


def view(*members: Member, healthy: set[str] | None = None, leader: str | None = "a0"):
    if healthy is None:
        healthy = {m.id for m in members}
    return ClusterView("c1", tuple(members), frozenset(healthy), leader)


def outcome(local=None, cluster=None, cluster_view=None, me: int = 0) -> Outcome:
    return Outcome(
        local=local if local is not None else Idle(),
        cluster=cluster if cluster is not None else Idle(),
        view=cluster_view,
        me=unit(me),
    )


def unit_status(outcome: Outcome, config_pending: bool = False) -> ops.StatusBase:
    said = status.unit_status(dataclasses.replace(outcome, config_pending=config_pending))
    return ops.StatusBase.from_name(said.name, said.message)


def app_status(outcome: Outcome, units: int) -> ops.StatusBase:
    said = status.app_status(outcome, units)
    return ops.StatusBase.from_name(said.name, said.message)


THREE = view(member(0), member(1), member(2))


class TestUnitStatus:
    def test_blocked_step_blocks_the_unit(self):
        status = unit_status(outcome(Blocked("data is gone"), cluster_view=THREE), False)
        assert status == ops.BlockedStatus("data is gone")

    def test_wait_step_waits_with_its_reason(self):
        status = unit_status(outcome(Wait("for the leader")), False)
        assert status == ops.WaitingStatus("for the leader")

    def test_leader_member(self):
        assert unit_status(outcome(cluster_view=THREE, me=0), False) == ops.ActiveStatus(
            "leader, member a0"
        )

    def test_follower_member(self):
        assert unit_status(outcome(cluster_view=THREE, me=2), False) == ops.ActiveStatus(
            "follower, member a2"
        )

    def test_learner_member(self):
        cluster = view(member(0), member(1, learner=True))
        status = unit_status(
            outcome(Promote(member(1, learner=True)), cluster_view=cluster, me=1), False
        )
        assert status == ops.ActiveStatus("learner (catching up), member a1")

    def test_unknown_leader_makes_every_voter_a_follower(self):
        cluster = view(member(0), member(1), leader=None)
        assert unit_status(outcome(cluster_view=cluster, me=0), False).message.startswith(
            "follower"
        )

    def test_pending_config_is_mentioned(self):
        status = unit_status(outcome(cluster_view=THREE, me=1), True)
        assert status == ops.ActiveStatus(
            "follower, member a1; config change waits for a rolling restart"
        )

    @pytest.mark.parametrize("cluster", [None, view(member(0))], ids=["no-view", "not-listed"])
    def test_unlisted_member_waits(self, cluster):
        status = unit_status(outcome(cluster_view=cluster, me=3), False)
        assert status == ops.WaitingStatus("etcd member not yet listed")

    def test_planned_bootstrap_says_what_comes_next(self):
        planned = outcome(PlanBootstrap(member="etcd-k8s-0", token="t"))
        status = unit_status(planned, False)
        assert status == ops.MaintenanceStatus(
            "bootstrap planned: this unit starts the cluster next hook"
        )


class TestAppStatus:
    def test_blocked_cluster_step_blocks_the_app(self):
        status = app_status(outcome(cluster=Blocked("cluster id differs"), cluster_view=THREE), 3)
        assert status == ops.BlockedStatus("cluster id differs")

    def test_all_units_healthy_voters_is_active(self):
        assert app_status(outcome(cluster_view=THREE), 3) == ops.ActiveStatus(
            "3/3 units are healthy voters"
        )

    def test_the_release_once_every_member_runs_it(self):
        from core.refresh import Versions

        done = dataclasses.replace(THREE, releases=(("a0", "3.5.1"), ("a1", "3.5.1")))
        said = outcome(cluster_view=done)
        said = dataclasses.replace(said, versions=Versions(image="3.5.1", cluster="3.5"))
        assert app_status(said, 3) == ops.ActiveStatus("3/3 units are healthy voters; etcd 3.5.1")
        mixed = dataclasses.replace(THREE, releases=(("a0", "3.4.23"), ("a1", "3.5.1")))
        said = dataclasses.replace(said, view=mixed, versions=Versions("3.5.1", cluster="3.4"))
        assert app_status(said, 3) == ops.ActiveStatus(
            "3/3 units are healthy voters; "
            "refresh under way: members run etcd 3.4.23, 3.5.1, cluster version 3.4"
        )

    def test_unhealthy_voter_waits(self):
        cluster = view(member(0), member(1), member(2), healthy={"a0", "a2"})
        assert app_status(outcome(cluster_view=cluster), 3) == ops.WaitingStatus(
            "2/3 units are healthy voters"
        )

    def test_units_not_yet_members_wait(self):
        step = Wait("not adding etcd-k8s/2: voters not healthy: etcd-k8s-1")
        status = app_status(outcome(cluster=step, cluster_view=view(member(0), member(1))), 3)
        assert status == ops.WaitingStatus(
            "2/3 units are healthy voters; not adding etcd-k8s/2: voters not healthy: etcd-k8s-1"
        )

    @pytest.mark.parametrize(
        "learner, shown",
        [(member(2, learner=True), "etcd-k8s-2"), (member(2, learner=True, started=False), "a2")],
    )
    def test_joining_learner_is_named(self, learner, shown):
        cluster = view(member(0), member(1), learner)
        status = app_status(outcome(cluster=Promote(learner), cluster_view=cluster), 3)
        assert status == ops.WaitingStatus(f"2/3 units are healthy voters; learner {shown} joining")

    def test_learner_keeps_the_app_waiting_even_when_counts_match(self):
        cluster = view(member(0), member(1), member(2, learner=True))
        assert isinstance(app_status(outcome(cluster_view=cluster), 2), ops.WaitingStatus)

    def test_adding_a_learner_is_not_a_reason_on_its_own(self):
        status = app_status(outcome(cluster=AddLearner(unit(2)), cluster_view=THREE), 3)
        assert status == ops.ActiveStatus("3/3 units are healthy voters")

    @pytest.mark.parametrize(
        "local, expected",
        [
            (
                Wait("waiting for etcd-k8s-0 to bootstrap the cluster"),
                "waiting for etcd-k8s-0 to bootstrap the cluster",
            ),
            (Blocked("no cluster token"), "no cluster token"),
            (Idle(), "no etcd member answers"),
        ],
    )
    def test_no_view_waits_with_the_local_reason(self, local, expected):
        status = app_status(outcome(local, cluster=Wait("no etcd member answers")), 3)
        assert status == ops.WaitingStatus(expected)


class TestAfterRestoreAndQuorumVerdicts:
    def test_restore_is_named_until_every_unit_is_back(self):
        record = RestoreRecord("0123abcd", "nightly", "dead01", "c1", "etcd-k8s-0")
        one = view(member(0))
        back = dataclasses.replace(outcome(cluster_view=one), restore=record)
        status = app_status(back, units=3)
        assert isinstance(status, ops.WaitingStatus)
        assert status.message.startswith("1/3 units are healthy voters")
        assert "restored from nightly, the other units rejoin as learners" in status.message
        done = dataclasses.replace(outcome(cluster_view=THREE), restore=record)
        assert app_status(done, units=3) == ops.ActiveStatus("3/3 units are healthy voters")

    @pytest.mark.parametrize(
        "kind, expected", [("lost", ops.BlockedStatus), ("unknown", ops.BlockedStatus)]
    )
    def test_a_verdict_without_quorum_blocks_the_app(self, kind, expected):
        said = dataclasses.replace(outcome(), verdict=Verdict(kind, "what to do"))
        assert app_status(said, units=3) == expected("what to do")

    def test_cut_off_waits_on_the_app_and_on_a_unit_answering_from_its_own_state(self):
        said = dataclasses.replace(
            outcome(cluster_view=view(member(0), member(1), member(2), leader=None)),
            verdict=Verdict("cut-off", "etcd-k8s/0 is cut off"),
        )
        assert app_status(said, units=3) == ops.WaitingStatus("etcd-k8s/0 is cut off")
        assert unit_status(said, False) == ops.WaitingStatus("etcd-k8s/0 is cut off")
        # A more precise local reason (a join that failed, say) is kept.
        waiting = dataclasses.replace(said, local=Wait("could not join"))
        assert unit_status(waiting, False) == ops.WaitingStatus("could not join")

    def test_quorum_in_sight_changes_nothing(self):
        said = dataclasses.replace(outcome(cluster_view=THREE), verdict=Verdict("quorum", "ok"))
        assert app_status(said, units=3) == ops.ActiveStatus("3/3 units are healthy voters")


class TestFailingChecks:
    def test_no_failing_check_changes_nothing(self):
        said = status.Status("active", "leader, member a0")
        assert status.with_failing_checks(said, ()) is said

    def test_failing_checks_are_named_after_the_status(self):
        said = status.Status("waiting", "waiting for quorum")
        shown = status.with_failing_checks(said, ("z-check", "etcd-healthy-voter"))
        assert shown == status.Status(
            "waiting", "waiting for quorum; Pebble check etcd-healthy-voter, z-check failing"
        )
