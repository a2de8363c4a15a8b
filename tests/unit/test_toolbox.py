"""The actions' pure decisions: naming a member, defrag order, compact target, restore cut."""

from __future__ import annotations

import dataclasses

import pytest

from core import actions as toolbox
from core.actions import (
    ActionRefused,
    DefragItem,
    compact_revision,
    defrag_plan,
    find_member,
    label,
    move_leader_target,
    next_cut_step,
    promote_target,
    require_quorum,
)
from core.model import ClusterView, Member
from core.recovery import has_quorum
from core.steps import CutDone, MoveLeader, RemoveMember

APP = "etcd-k8s"


def m(n: int, *, learner: bool = False, started: bool = True, member_id: str | None = None):
    """Member of unit `n`, id `a<n>` (valid hex); unstarted members have no name."""
    name = f"{APP}-{n}"
    return Member(
        id=member_id or f"a{n}",
        name=name if started else "",
        peer_urls=(f"http://{name}.{APP}-endpoints:2380",),
        client_urls=(f"http://{name}.{APP}-endpoints:2379",) if started else (),
        is_learner=learner,
    )


def cluster(
    *members: Member, healthy: set[str] | None = None, leader: str | None = "a0"
) -> ClusterView:
    """By default every started member answers and a0 leads."""
    if healthy is None:
        healthy = {x.id for x in members if x.started}
    return ClusterView(
        cluster_id="c0ffee",
        members=tuple(members),
        healthy_ids=frozenset(healthy),
        leader_id=leader,
    )


def by_id(view: ClusterView, member_id: str) -> Member:
    return next(x for x in view.members if x.id == member_id)


# ---- find_member --------------------------------------------------------------------------------


class TestFindMember:
    VIEW = cluster(m(0), m(1), m(2), m(3, learner=True, started=False))

    @pytest.mark.parametrize(
        "ref",
        ["etcd-k8s/1", "etcd-k8s-1", "a1", "0xa1", "A1", "0XA1", "  etcd-k8s/1 ", "ETCD-K8S/1"],
    )
    def test_by_unit_name_member_name_or_hex_id(self, ref):
        assert find_member(self.VIEW, ref) == m(1)

    def test_unstarted_member_by_id(self):
        assert find_member(self.VIEW, "a3") == m(3, learner=True, started=False)

    def test_unstarted_member_is_not_found_by_its_future_name(self):
        with pytest.raises(ActionRefused):
            find_member(self.VIEW, "etcd-k8s/3")

    @pytest.mark.parametrize("ref", ["", "   "])
    def test_empty_ref_does_not_match_an_unnamed_member(self, ref):
        with pytest.raises(ActionRefused):
            find_member(self.VIEW, ref)

    def test_unknown_lists_the_members(self):
        with pytest.raises(ActionRefused) as caught:
            find_member(self.VIEW, "etcd-k8s/9")
        message = str(caught.value)
        assert "'etcd-k8s/9'" in message
        assert "etcd-k8s-0 (a0), etcd-k8s-1 (a1), etcd-k8s-2 (a2), (unstarted) (a3)" in message

    def test_hex_prefix_only_strips_for_ids(self):
        # "0x" is not stripped from names: a member named like that is found by its full name.
        view = cluster(dataclasses.replace(m(0), name="0xname"))
        assert find_member(view, "0xname").id == "a0"

    def test_label_is_the_name_or_the_id(self):
        assert label(m(1)) == "etcd-k8s-1"
        assert label(m(1, started=False)) == "a1"


# ---- promote / move-leader ---------------------------------------------------------------------


class TestPromoteTarget:
    @pytest.mark.parametrize("ref", [None, ""])
    def test_default_is_the_only_learner(self, ref):
        learner = m(3, learner=True)
        assert promote_target(cluster(m(0), m(1), learner), ref) == learner

    @pytest.mark.parametrize("ref", [None, ""])
    def test_no_learner_is_refused(self, ref):
        with pytest.raises(ActionRefused, match="no learner to promote"):
            promote_target(cluster(m(0), m(1)), ref)

    def test_several_learners_must_be_named(self):
        view = cluster(m(0), m(1, learner=True), m(2, learner=True, started=False))
        with pytest.raises(ActionRefused) as caught:
            promote_target(view, None)
        message = str(caught.value)
        assert "several learners" in message
        assert "etcd-k8s-1" in message and "a2" in message
        assert "member=" in message

    def test_named_learner_among_several(self):
        view = cluster(m(0), m(1, learner=True), m(2, learner=True))
        assert promote_target(view, "etcd-k8s/2") == m(2, learner=True)
        assert promote_target(view, "a1") == m(1, learner=True)

    def test_named_voter_is_refused(self):
        view = cluster(m(0), m(1), m(2, learner=True))
        with pytest.raises(ActionRefused, match="etcd-k8s-1 is already a voter"):
            promote_target(view, "etcd-k8s/1")

    def test_named_unknown_is_refused(self):
        with pytest.raises(ActionRefused, match="no member"):
            promote_target(cluster(m(0), m(1, learner=True)), "etcd-k8s/7")


class TestMoveLeaderTarget:
    def test_healthy_voter(self):
        view = cluster(m(0), m(1), m(2))
        assert move_leader_target(view, "etcd-k8s/2") == m(2)

    def test_the_current_leader_is_accepted(self):
        view = cluster(m(0), m(1), m(2))
        assert move_leader_target(view, "a0") == m(0)

    def test_learner_is_refused(self):
        view = cluster(m(0), m(1), m(2, learner=True))
        with pytest.raises(ActionRefused, match="etcd-k8s-2 is a learner"):
            move_leader_target(view, "etcd-k8s/2")

    def test_unhealthy_voter_is_refused(self):
        view = cluster(m(0), m(1), m(2), healthy={"a0", "a1"})
        with pytest.raises(ActionRefused, match="etcd-k8s-2 is not healthy"):
            move_leader_target(view, "etcd-k8s-2")

    def test_unknown_is_refused(self):
        with pytest.raises(ActionRefused, match="no member"):
            move_leader_target(cluster(m(0)), "etcd-k8s/5")


class TestRequireQuorum:
    def test_view_with_quorum_is_returned(self):
        view = cluster(m(0), m(1), m(2), healthy={"a0", "a1"})
        assert require_quorum(view, "defrag") is view

    @pytest.mark.parametrize(
        "view",
        [
            None,
            cluster(m(0), m(1), m(2), leader=None),
            cluster(m(0), m(1), m(2), healthy={"a0"}),
            cluster(m(0), m(1), healthy={"a0"}),
            cluster(m(0), m(1, learner=True), m(2, learner=True), healthy={"a1", "a2"}),
        ],
        ids=["unreachable", "no-leader", "one-of-three", "one-of-two", "only-learners-healthy"],
    )
    def test_without_quorum_is_refused_naming_the_action(self, view):
        with pytest.raises(ActionRefused) as caught:
            require_quorum(view, "compact")
        assert str(caught.value).startswith("compact needs a cluster with quorum")


# ---- defrag -------------------------------------------------------------------------------------


def plan_of(items: list[DefragItem]) -> list[tuple[str, str | None]]:
    return [(item.member.id, item.skip) for item in items]


def free_for(view: ClusterView, amount: int = 1 << 20) -> dict[str, int]:
    return {x.id: amount for x in view.members if x.id in view.healthy_ids}


class TestDefragPlan:
    def test_learners_then_followers_by_name_then_the_leader(self):
        view = cluster(
            m(2), m(0), m(4, learner=True), m(1), m(3), m(5, learner=True), m(6), leader="a2"
        )
        plan = defrag_plan(view, free_for(view))
        assert plan_of(plan) == [
            ("a4", None),
            ("a5", None),
            ("a0", None),
            ("a1", None),
            ("a3", None),
            ("a6", None),
            ("a2", None),
        ]

    def test_followers_are_ordered_by_name_not_id(self):
        view = cluster(m(0, member_id="ff"), m(1, member_id="01"), m(2), leader="a2")
        ids = [item.member.id for item in defrag_plan(view, free_for(view))]
        assert ids == ["ff", "01", "a2"]

    def test_every_member_gets_one_item(self):
        view = cluster(m(0), m(1), m(2, learner=True), m(3, started=False, learner=True))
        plan = defrag_plan(view, free_for(view))
        assert sorted(item.member.id for item in plan) == ["a0", "a1", "a2", "a3"]

    def test_unhealthy_member_is_skipped(self):
        view = cluster(m(0), m(1), m(2), m(3), m(4), healthy={"a0", "a1", "a2", "a3"})
        plan = dict(plan_of(defrag_plan(view, free_for(view))))
        assert plan["a4"] == "not healthy: skipped"
        assert [k for k, v in plan.items() if v is None] == ["a1", "a2", "a3", "a0"]

    def test_unstarted_learner_is_skipped(self):
        view = cluster(m(0), m(1, learner=True, started=False))
        plan = plan_of(defrag_plan(view, free_for(view)))
        assert plan == [("a1", "not healthy: skipped"), ("a0", None)]

    def test_member_without_status_is_skipped_not_guessed(self):
        view = cluster(m(0), m(1), m(2))
        free = free_for(view)
        del free["a1"]
        plan = dict(plan_of(defrag_plan(view, free)))
        assert plan == {"a1": "not healthy: skipped", "a2": None, "a0": None}

    def test_threshold_skips_members_with_little_to_reclaim(self):
        view = cluster(m(0), m(1), m(2))
        free = {"a0": 100, "a1": 99, "a2": 5000}
        plan = dict(plan_of(defrag_plan(view, free, threshold=100)))
        assert plan["a0"] is None  # exactly at the threshold: defragmented
        assert plan["a2"] is None
        assert plan["a1"] == "only 99 bytes to reclaim, below threshold 100"

    def test_zero_threshold_defragments_even_with_nothing_to_reclaim(self):
        view = cluster(m(0), m(1))
        plan = defrag_plan(view, {"a0": 0, "a1": 0})
        assert all(item.skip is None for item in plan)

    def test_degraded_three_voters_skip_the_voters_left(self):
        # a2 is down: blocking a0 or a1 would leave one healthy voter of three.
        view = cluster(m(0), m(1), m(2), m(3, learner=True), healthy={"a0", "a1", "a3"})
        plan = plan_of(defrag_plan(view, free_for(view)))
        assert plan[0] == ("a3", None)  # a learner never counts for quorum
        skipped = dict(plan[1:])
        assert skipped["a2"] == "not healthy: skipped"
        for voter in ("a0", "a1"):
            assert "would lose quorum" in skipped[voter]

    def test_degraded_five_voters_with_one_down_defragment_the_rest(self):
        # 4 healthy of 5: with one blocked, 3 still answer, a majority.
        view = cluster(m(0), m(1), m(2), m(3), m(4), healthy={"a0", "a1", "a2", "a3"})
        plan = dict(plan_of(defrag_plan(view, free_for(view))))
        assert plan == {
            "a1": None,
            "a2": None,
            "a3": None,
            "a4": "not healthy: skipped",
            "a0": None,
        }

    def test_degraded_five_voters_with_two_down_skip_the_rest(self):
        view = cluster(m(0), m(1), m(2), m(3), m(4), healthy={"a0", "a1", "a2"})
        plan = dict(plan_of(defrag_plan(view, free_for(view))))
        for voter in ("a0", "a1", "a2"):
            assert "would lose quorum" in plan[voter]
        assert plan["a3"] == plan["a4"] == "not healthy: skipped"

    def test_degraded_check_comes_before_the_threshold(self):
        view = cluster(m(0), m(1), m(2), healthy={"a0", "a1"})
        plan = dict(plan_of(defrag_plan(view, {"a0": 0, "a1": 0}, threshold=10)))
        assert "would lose quorum" in plan["a0"]

    def test_healthy_single_member_cluster_is_defragmented(self):
        view = cluster(m(0))
        assert plan_of(defrag_plan(view, free_for(view))) == [("a0", None)]

    def test_healthy_single_voter_with_a_learner(self):
        view = cluster(m(0), m(1, learner=True))
        assert plan_of(defrag_plan(view, free_for(view))) == [("a1", None), ("a0", None)]

    def test_only_one_member(self):
        view = cluster(m(0), m(1), m(2))
        plan = defrag_plan(view, free_for(view), only=m(1))
        assert plan == [DefragItem(m(1))]

    def test_only_the_leader(self):
        view = cluster(m(0), m(1), m(2))
        assert plan_of(defrag_plan(view, free_for(view), only=m(0))) == [("a0", None)]

    def test_only_an_unhealthy_member_is_skipped(self):
        view = cluster(m(0), m(1), m(2), m(3), m(4), healthy={"a0", "a1", "a2", "a3"})
        assert plan_of(defrag_plan(view, free_for(view), only=m(4))) == [
            ("a4", "not healthy: skipped")
        ]

    def test_only_below_threshold_is_skipped(self):
        view = cluster(m(0), m(1), m(2))
        plan = defrag_plan(view, {"a0": 1, "a1": 1, "a2": 1}, only=m(2), threshold=2)
        assert plan_of(plan) == [("a2", "only 1 bytes to reclaim, below threshold 2")]

    def test_empty_free_bytes_skips_everyone(self):
        view = cluster(m(0), m(1), m(2))
        assert all(item.skip == "not healthy: skipped" for item in defrag_plan(view, {}))


# ---- compact ------------------------------------------------------------------------------------


class TestCompactRevision:
    @pytest.mark.parametrize("revision", [1, 50, 100])
    def test_explicit_revision_up_to_the_current(self, revision):
        assert compact_revision(100, revision, keep=0) == revision

    def test_explicit_revision_ignores_keep(self):
        assert compact_revision(100, 95, keep=50) == 95

    def test_explicit_revision_in_the_future_is_refused(self):
        with pytest.raises(
            ActionRefused, match="revision 101 is in the future; the current is 100"
        ):
            compact_revision(100, 101, keep=0)

    @pytest.mark.parametrize("revision", [0, -1])
    def test_explicit_revision_below_one_is_refused(self, revision):
        with pytest.raises(ActionRefused, match="1 or more"):
            compact_revision(100, revision, keep=0)

    @pytest.mark.parametrize(
        "current, keep, expected", [(100, 0, 100), (100, 10, 90), (100, 99, 1), (1, 0, 1)]
    )
    def test_keeps_a_window_of_recent_revisions(self, current, keep, expected):
        assert compact_revision(current, None, keep) == expected

    @pytest.mark.parametrize("current, keep", [(100, 100), (100, 1000), (0, 0), (5, 5)])
    def test_nothing_to_compact_is_refused(self, current, keep):
        with pytest.raises(ActionRefused, match="nothing to compact") as caught:
            compact_revision(current, None, keep)
        assert f"current revision {current}, keep {keep}" in str(caught.value)


# ---- next_cut_step ------------------------------------------------------------------------------

SEED = f"{APP}-0"


class TestNextCutStep:
    @pytest.mark.parametrize(
        "view",
        [
            None,
            cluster(m(0), m(1), m(2), leader=None),
            cluster(m(0), m(1), m(2), healthy={"a0"}),
            cluster(m(0), m(1), healthy={"a0"}),  # two voters, the other down
        ],
        ids=["unreachable", "no-leader", "one-of-three", "one-of-two"],
    )
    def test_without_quorum_refused_unless_forced(self, view):
        with pytest.raises(ActionRefused, match="no quorum") as caught:
            next_cut_step(view, SEED, force=False)
        assert "force=true" in str(caught.value)
        assert next_cut_step(view, SEED, force=True) == CutDone()

    @pytest.mark.parametrize("force", [False, True])
    def test_seed_alone_is_done(self, force):
        assert next_cut_step(cluster(m(0)), SEED, force) == CutDone()

    @pytest.mark.parametrize("force", [False, True])
    def test_leadership_moves_to_the_seed_first(self, force):
        view = cluster(m(0), m(1), m(2, learner=True), healthy={"a0", "a1", "a2"}, leader="a1")
        assert next_cut_step(view, SEED, force) == MoveLeader(to=m(0))

    def test_seed_can_be_any_member(self):
        view = cluster(m(0), m(1), m(2))
        assert next_cut_step(view, f"{APP}-2", force=False) == MoveLeader(to=m(2))

    def test_learners_go_before_healthy_voters(self):
        view = cluster(m(0), m(1), m(2), m(3, learner=True))
        step = next_cut_step(view, SEED, force=False)
        assert isinstance(step, RemoveMember)
        assert step.member == m(3, learner=True)
        assert "restore" in step.reason

    def test_unstarted_learner_goes_first(self):
        view = cluster(m(0), m(1), m(2, learner=True, started=False))
        step = next_cut_step(view, SEED, force=False)
        assert isinstance(step, RemoveMember)
        assert step.member.id == "a2"

    def test_unhealthy_voters_go_before_healthy_voters(self):
        # etcd-k8s-4 is down; etcd-k8s-1 sorts first by name but is healthy.
        view = cluster(m(0), m(1), m(2), m(3), m(4), healthy={"a0", "a1", "a2", "a3"})
        step = next_cut_step(view, SEED, force=False)
        assert isinstance(step, RemoveMember)
        assert step.member == m(4)

    def test_learners_and_unhealthy_voters_are_taken_by_name(self):
        view = cluster(
            m(0), m(1), m(2), m(3), m(4), m(5, learner=True), healthy={"a0", "a1", "a2", "a3", "a5"}
        )
        step = next_cut_step(view, SEED, force=False)
        assert isinstance(step, RemoveMember)
        assert step.member == m(4)  # etcd-k8s-4 (down voter) before etcd-k8s-5 (learner)

    def test_healthy_voters_go_lowest_name_first(self):
        view = cluster(m(0), m(2), m(1))
        step = next_cut_step(view, SEED, force=False)
        assert isinstance(step, RemoveMember)
        assert step.member == m(1)

    @pytest.mark.parametrize(
        "view",
        [
            cluster(m(0), m(1), m(2), healthy={"a1", "a2"}, leader="a1"),
            cluster(m(0, learner=True), m(1), m(2), healthy={"a0", "a1", "a2"}, leader="a1"),
            cluster(m(0, started=False, learner=True), m(1), m(2), leader="a1"),
            cluster(m(1), m(2), leader="a1"),
        ],
        ids=["seed-unhealthy", "seed-learner", "seed-unstarted", "seed-not-listed"],
    )
    def test_seed_not_a_healthy_voter_refused_unless_forced(self, view):
        with pytest.raises(ActionRefused) as caught:
            next_cut_step(view, SEED, force=False)
        assert f"{SEED} is not a healthy voter" in str(caught.value)
        assert "force=true" in str(caught.value)
        assert next_cut_step(view, SEED, force=True) == CutDone()

    def test_removal_that_would_lose_quorum_is_refused(self, monkeypatch):
        # With quorum and the unhealthy members taken first this cannot happen today; the
        # guard still stands between the cut and a lost quorum.
        monkeypatch.setattr(toolbox, "removal_keeps_quorum", lambda view, member: False)
        view = cluster(m(0), m(1), m(2))
        with pytest.raises(ActionRefused, match="removing etcd-k8s-1 would lose quorum"):
            next_cut_step(view, SEED, force=True)

    @pytest.mark.parametrize(
        "start",
        [
            cluster(m(0), m(1), m(2), leader="a2"),
            cluster(m(0), m(1), m(2), m(3, learner=True), leader="a1"),
            cluster(m(0), m(1), m(2), m(3), m(4), healthy={"a0", "a2", "a4"}, leader="a4"),
            cluster(m(0), m(1), m(2, learner=True, started=False)),
        ],
        ids=["three-voters", "with-learner", "five-two-down", "unstarted-learner"],
    )
    def test_the_cut_walks_down_to_the_seed_one_change_at_a_time_keeping_quorum(self, start):
        view, steps = start, []
        for _ in range(10):
            step = next_cut_step(view, SEED, force=False)
            steps.append(step)
            if isinstance(step, CutDone):
                break
            if isinstance(step, MoveLeader):
                view = dataclasses.replace(view, leader_id=step.to.id)
            else:
                assert isinstance(step, RemoveMember)
                members = tuple(x for x in view.members if x.id != step.member.id)
                view = dataclasses.replace(view, members=members)
            assert has_quorum(view)
        assert isinstance(steps[-1], CutDone)
        assert view.members == (m(0),)
        removed = [s.member.id for s in steps if isinstance(s, RemoveMember)]
        assert len(removed) == len(start.members) - 1
        moves = [s for s in steps if isinstance(s, MoveLeader)]
        assert len(moves) == (0 if start.leader_id == "a0" else 1)
        if moves:
            assert steps[0] == MoveLeader(to=m(0))
        # Members that cannot serve go before those that can.
        healthy_voters = {x.id for x in start.healthy_voters}
        ranks = [1 if x in healthy_voters else 0 for x in removed]
        assert ranks == sorted(ranks)

    def test_seed_is_matched_by_member_name_not_id(self):
        view = cluster(m(0), m(1), m(2))
        assert by_id(view, "a0").name == SEED
        with pytest.raises(ActionRefused, match="a0 is not a healthy voter"):
            next_cut_step(view, "a0", force=False)
