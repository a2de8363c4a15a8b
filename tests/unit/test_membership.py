"""The membership decision core: next_local_step, next_cluster_step, next_departure_step."""

from __future__ import annotations

import dataclasses
import random

import pytest

from core import flow
from core.membership import (
    member_state,
    next_cluster_step,
    next_departure_step,
    next_local_step,
    removal_keeps_quorum,
    ticket_for,
    with_member_added,
)
from core.model import (
    EMPTY,
    LEARNER,
    NO_LEADER,
    SERVING,
    STOPPED,
    AppState,
    ClusterView,
    Disk,
    JoinTicket,
    Marker,
    Member,
    Observation,
    RebuildRecord,
    RestoreRecord,
    UnitInfo,
)
from core.steps import (
    AddLearner,
    Blocked,
    Bootstrap,
    ClearTicket,
    DropSuperseded,
    HoldData,
    Idle,
    Join,
    LastVoter,
    Left,
    MoveLeader,
    PlanBootstrap,
    Promote,
    PublishTicket,
    RecordCluster,
    RemoveMember,
    StartMember,
    Wait,
    WipeStaleData,
)

APP = "etcd-k8s"
TOKEN = "etcd-k8s-planned"
NEW_TOKEN = "etcd-k8s-fresh"
CLUSTER_ID = "c0ffee"


def unit(n: int, member_id: str | None = None) -> UnitInfo:
    name = f"{APP}-{n}"
    host = f"{name}.{APP}-endpoints.model.svc.cluster.local"
    return UnitInfo(
        unit=f"{APP}/{n}",
        member_name=name,
        peer_url=f"http://{host}:2380",
        client_url=f"http://{host}:2379",
        member_id=member_id,
    )


def member(u: UnitInfo, member_id: str, *, started: bool = True, learner: bool = False) -> Member:
    """The member list entry for `u`; an unstarted member has no name and no client URLs."""
    return Member(
        id=member_id,
        name=u.member_name if started else "",
        peer_urls=(u.peer_url,),
        client_urls=(u.client_url,) if started else (),
        is_learner=learner,
    )


def view(
    *members: Member,
    cluster_id: str = CLUSTER_ID,
    healthy: set[str] | None = None,
    leader: str | None = None,
) -> ClusterView:
    """A reachable cluster; by default every started member answers."""
    if healthy is None:
        healthy = {m.id for m in members if m.started}
    return ClusterView(
        cluster_id=cluster_id,
        members=tuple(members),
        healthy_ids=frozenset(healthy),
        leader_id=leader,
    )


def observe(
    me: UnitInfo,
    *,
    peers: tuple[UnitInfo, ...] = (),
    leader: bool = False,
    app: AppState | None = None,
    data: bool = False,
    marker: Marker | None = None,
    running: bool = False,
    cluster: ClusterView | None = None,
    present: frozenset[str] | set[str] | None = None,
) -> Observation:
    """By default every unit with a databag (this one and `peers`) is present on the relation."""
    if present is None:
        present = {u.member_name for u in (me, *peers)}
    return Observation(
        me=me,
        is_leader=leader,
        app=app if app is not None else AppState(),
        peers=peers,
        disk=Disk(has_member_data=data, marker=marker),
        running=running,
        cluster=cluster,
        present=frozenset(present),
    )


def planned(bootstrap_member: str, **changes) -> AppState:
    return AppState(cluster_token=TOKEN, bootstrap_member=bootstrap_member, **changes)


def formed(**changes) -> AppState:
    """App data of a cluster that has bootstrapped and been recorded."""
    return AppState(
        cluster_token=TOKEN, bootstrap_member=unit(0).member_name, cluster_id=CLUSTER_ID, **changes
    )


def local(obs: Observation):
    return next_local_step(obs, new_token=NEW_TOKEN)


# ---- fresh deploy ------------------------------------------------------------------------------


class TestBeforeAnyPlan:
    def test_leader_plans_bootstrap_naming_itself_with_the_new_token(self):
        obs = observe(unit(2), peers=(unit(0), unit(1)), leader=True)
        assert local(obs) == PlanBootstrap(member=f"{APP}-2", token=NEW_TOKEN)

    def test_non_leader_waits_for_the_leader(self):
        step = local(observe(unit(0), peers=(unit(1),), leader=False))
        assert isinstance(step, Wait)
        assert "leader" in step.reason

    @pytest.mark.parametrize("is_leader", [True, False])
    @pytest.mark.parametrize(
        "peers, cluster",
        [
            ((unit(1, member_id="a1"),), None),
            ((unit(1),), view(member(unit(1), "a1"))),
        ],
        ids=["peer-has-member-id", "cluster-reachable"],
    )
    def test_no_token_but_a_member_exists_blocks(self, is_leader, peers, cluster):
        step = local(observe(unit(0), peers=peers, leader=is_leader, cluster=cluster))
        assert isinstance(step, Blocked)
        assert "cluster token" in step.reason

    def test_own_member_id_without_token_blocks(self):
        step = local(observe(unit(0, member_id="a0"), leader=True))
        assert isinstance(step, Blocked)


# ---- bootstrap ---------------------------------------------------------------------------------


class TestBootstrap:
    @pytest.mark.parametrize("is_leader", [True, False])
    def test_named_member_bootstraps_with_the_planned_token(self, is_leader):
        obs = observe(unit(0), peers=(unit(1), unit(2)), leader=is_leader, app=planned(f"{APP}-0"))
        assert local(obs) == Bootstrap(token=TOKEN)

    @pytest.mark.parametrize(
        "me, peers, app, cluster",
        [
            (unit(0), (unit(1),), planned(f"{APP}-0", cluster_id=CLUSTER_ID), None),
            (unit(0), (unit(1, member_id="a1"),), planned(f"{APP}-0"), None),
            (unit(0, member_id="a0"), (unit(1),), planned(f"{APP}-0"), None),
            (unit(0), (unit(1),), planned(f"{APP}-0"), view(member(unit(1), "a1"))),
        ],
        ids=["cluster-id-recorded", "peer-has-member-id", "own-member-id", "cluster-reachable"],
    )
    @pytest.mark.parametrize("is_leader", [True, False])
    def test_named_member_does_not_bootstrap_when_a_cluster_may_exist(
        self, me, peers, app, cluster, is_leader
    ):
        step = local(observe(me, peers=peers, leader=is_leader, app=app, cluster=cluster))
        assert not isinstance(step, Bootstrap | PlanBootstrap)
        assert isinstance(step, Wait)

    def test_other_unit_waits_for_the_named_member(self):
        step = local(observe(unit(1), peers=(unit(0),), app=planned(f"{APP}-0")))
        assert isinstance(step, Wait)
        assert f"{APP}-0" in step.reason

    def test_new_leader_after_the_plan_waits_for_the_named_member(self):
        # etcd-k8s/0 planned while leader; leadership moved to etcd-k8s/1 before it bootstrapped.
        step = local(observe(unit(1), peers=(unit(0),), leader=True, app=planned(f"{APP}-0")))
        assert isinstance(step, Wait)
        assert f"{APP}-0" in step.reason

    def test_leader_replans_when_the_named_member_is_gone(self):
        obs = observe(unit(1), peers=(unit(2),), leader=True, app=planned(f"{APP}-0"))
        assert local(obs) == PlanBootstrap(member=f"{APP}-1", token=NEW_TOKEN)

    def test_non_leader_does_not_replan_when_the_named_member_is_gone(self):
        step = local(observe(unit(1), peers=(unit(2),), leader=False, app=planned(f"{APP}-0")))
        assert isinstance(step, Wait)

    @pytest.mark.parametrize(
        "app, cluster",
        [
            (planned(f"{APP}-0", cluster_id=CLUSTER_ID), None),
            (planned(f"{APP}-0"), view(member(unit(2), "a2"))),
        ],
        ids=["cluster-id-recorded", "cluster-reachable"],
    )
    def test_leader_does_not_replan_once_a_cluster_exists(self, app, cluster):
        step = local(observe(unit(1), peers=(unit(2),), leader=True, app=app, cluster=cluster))
        assert not isinstance(step, PlanBootstrap | Bootstrap)


# ---- data on disk ------------------------------------------------------------------------------


@pytest.mark.parametrize("is_leader", [True, False])
@pytest.mark.parametrize(
    "app, cluster",
    [
        (AppState(), None),
        (planned(f"{APP}-0"), None),
        (planned(f"{APP}-1"), None),
        (formed(), None),
        (formed(), view(member(unit(1), "a1"), member(unit(0), "a0"), healthy={"a1"})),
        (
            formed(join=JoinTicket(f"{APP}-0", "a0", unit(0).peer_url, "x=y")),
            view(member(unit(1), "a1"), member(unit(0), "a0", started=False, learner=True)),
        ),
    ],
    ids=[
        "no-plan",
        "planned-for-me",
        "planned-for-other",
        "formed-unreachable",
        "formed",
        "ticket-for-me",
    ],
)
@pytest.mark.parametrize(
    "marker", [None, Marker(member_id="a0", cluster_id=CLUSTER_ID)], ids=["no-marker", "marker"]
)
def test_data_on_disk_starts_the_member(is_leader, app, cluster, marker):
    """Data of a member the live cluster lists (or no cluster answering at all): start it."""
    obs = observe(
        unit(0),
        peers=(unit(1),),
        leader=is_leader,
        app=app,
        data=True,
        marker=marker,
        cluster=cluster,
    )
    assert local(obs) == StartMember()


class TestStaleData:
    """Data on disk, not running: start it only if it is the live cluster's member for this unit."""

    def returning(self, marker: Marker | None, cluster: ClusterView | None, **kw) -> Observation:
        """etcd-k8s/2 coming back with data on its volume; etcd-k8s/0 and /1 stayed."""
        return observe(
            unit(2),
            peers=(unit(0, "a0"), unit(1, "a1")),
            app=formed(**kw),
            data=True,
            marker=marker,
            cluster=cluster,
        )

    @pytest.mark.parametrize(
        "marker",
        [None, Marker("a2", CLUSTER_ID), Marker("gone", CLUSTER_ID), Marker("a2", "beef")],
        ids=["no-marker", "live-member", "unlisted-member", "other-cluster"],
    )
    def test_without_a_cluster_view_starts_whatever_is_there(self, marker):
        # No member answers: starting what is on disk is how quorum comes back.
        assert local(self.returning(marker, None)) == StartMember()

    @pytest.mark.parametrize("readded", [False, True], ids=["not-readded", "readded-as-learner"])
    def test_return_after_scale_down_wipes_the_removed_members_data(self, readded):
        # 3 -> 2 removed member a2; on 2 -> 3 the volume of etcd-k8s-2 comes back with a2's data.
        members = [member(unit(0), "a0"), member(unit(1), "a1")]
        join = None
        if readded:
            members.append(member(unit(2), "b2", started=False, learner=True))
            join = ticket(unit(2), "b2")
        step = local(self.returning(Marker("a2", CLUSTER_ID), view(*members), join=join))
        assert isinstance(step, WipeStaleData)
        assert "a2" in step.reason

    def test_data_of_another_cluster_is_wiped(self):
        # Even though the live cluster lists a member by this unit's name.
        cluster = view(
            member(unit(0), "a0"),
            member(unit(1), "a1"),
            member(unit(2), "a2"),
            healthy={"a0", "a1"},
        )
        step = local(self.returning(Marker("a2", "beef"), cluster))
        assert isinstance(step, WipeStaleData)
        assert "beef" in step.reason and CLUSTER_ID in step.reason

    def test_the_cluster_check_comes_before_the_member_check(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"))
        step = local(self.returning(Marker("zz", "beef"), cluster))
        assert isinstance(step, WipeStaleData)
        assert "beef" in step.reason

    @pytest.mark.parametrize("started", [True, False])
    def test_marker_of_the_live_member_starts_it(self, started):
        # This unit is not running, so its own member does not answer.
        cluster = view(
            member(unit(0), "a0"),
            member(unit(1), "a1"),
            member(unit(2), "a2", started=started),
            healthy={"a0", "a1"},
        )
        assert local(self.returning(Marker("a2", CLUSTER_ID), cluster)) == StartMember()

    def test_data_without_marker_of_a_listed_member_starts_it(self):
        # Data written before markers existed: listed by name is all there is to go by.
        cluster = view(
            member(unit(0), "a0"), member(unit(1), "a1"), member(unit(2), "a2"), healthy={"a0"}
        )
        assert local(self.returning(None, cluster)) == StartMember()

    def test_data_without_marker_of_an_unlisted_member_is_wiped(self):
        step = local(self.returning(None, view(member(unit(0), "a0"), member(unit(1), "a1"))))
        assert isinstance(step, WipeStaleData)
        assert "does not list" in step.reason

    def test_marker_matching_but_this_unit_not_listed_is_wiped(self):
        # The marker's member is listed, but under another unit's name and peer URL.
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"))
        step = local(self.returning(Marker("a1", CLUSTER_ID), cluster))
        assert isinstance(step, WipeStaleData)

    @pytest.mark.parametrize("is_leader", [True, False])
    def test_running_member_is_never_wiped(self, is_leader):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"))
        obs = dataclasses.replace(
            self.returning(Marker("a2", "beef"), cluster), running=True, is_leader=is_leader
        )
        assert not isinstance(local(obs), WipeStaleData)


# ---- running -----------------------------------------------------------------------------------


class TestRunning:
    def test_started_learner_promotes_itself(self):
        me = member(unit(1), "a1", learner=True)
        cluster = view(member(unit(0), "a0"), me)
        obs = observe(
            unit(1), peers=(unit(0),), app=formed(), data=True, running=True, cluster=cluster
        )
        assert local(obs) == Promote(member=me)

    def test_unstarted_learner_waits(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1", started=False, learner=True))
        obs = observe(unit(1), peers=(unit(0),), app=formed(), running=True, cluster=cluster)
        assert isinstance(local(obs), Wait)

    @pytest.mark.parametrize("is_leader", [True, False])
    def test_voter_is_idle(self, is_leader):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"))
        obs = observe(
            unit(1), peers=(unit(0),), leader=is_leader, app=formed(), running=True, cluster=cluster
        )
        assert local(obs) == Idle()

    def test_running_but_not_listed_blocks(self):
        cluster = view(member(unit(0), "a0"))
        obs = observe(unit(1), peers=(unit(0),), app=formed(), running=True, cluster=cluster)
        step = local(obs)
        assert isinstance(step, Blocked)
        assert "not a member" in step.reason

    def test_running_without_any_answer_waits_for_quorum(self):
        obs = observe(unit(1), peers=(unit(0),), app=formed(), running=True, cluster=None)
        step = local(obs)
        assert isinstance(step, Wait)
        assert "quorum" in step.reason

    def test_voter_found_by_peer_url_before_its_name_is_known(self):
        # find() matches by peer URL too; a listed voter must not look like a stranger.
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1", started=False))
        obs = observe(unit(1), peers=(unit(0),), app=formed(), running=True, cluster=cluster)
        assert local(obs) == Idle()


# ---- joining -----------------------------------------------------------------------------------


def ticket(u: UnitInfo, member_id: str) -> JoinTicket:
    return JoinTicket(
        member_name=u.member_name,
        member_id=member_id,
        peer_url=u.peer_url,
        initial_cluster=f"{APP}-0={unit(0).peer_url},{u.member_name}={u.peer_url}",
    )


class TestJoin:
    def test_ticket_for_me_joins_with_the_cluster_token(self):
        t = ticket(unit(1), "a1")
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1", started=False, learner=True))
        obs = observe(unit(1), peers=(unit(0),), app=formed(join=t), cluster=cluster)
        assert local(obs) == Join(ticket=t, token=TOKEN)

    def test_ticket_for_me_waits_while_no_member_answers(self):
        # A learner asks its peers for the cluster as it starts: cut off, it would only exit.
        t = ticket(unit(1), "a1")
        obs = observe(unit(1), peers=(unit(0),), app=formed(join=t), cluster=None)
        assert local(obs) == Wait(
            "waiting to join as learner a1: no etcd member answers from this pod"
        )

    def test_stale_ticket_with_another_member_id_waits(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "b1", started=False, learner=True))
        obs = observe(
            unit(1), peers=(unit(0),), app=formed(join=ticket(unit(1), "a1")), cluster=cluster
        )
        step = local(obs)
        assert isinstance(step, Wait)
        assert "stale" in step.reason

    def test_stale_ticket_for_an_unlisted_member_waits(self):
        cluster = view(member(unit(0), "a0"))
        obs = observe(
            unit(1), peers=(unit(0),), app=formed(join=ticket(unit(1), "a1")), cluster=cluster
        )
        step = local(obs)
        assert isinstance(step, Wait)
        assert "stale" in step.reason

    def test_ticket_for_started_member_without_data_removes_it(self):
        # Never Join again as a member that already started: its data is gone, remove it first.
        me = member(unit(1), "a1", learner=True)
        cluster = view(member(unit(0), "a0"), me, healthy={"a0"})
        obs = observe(
            unit(1), peers=(unit(0),), app=formed(join=ticket(unit(1), "a1")), cluster=cluster
        )
        step = local(obs)
        assert isinstance(step, RemoveMember)
        assert step.member == me
        assert "a1" in step.reason

    def test_ticket_for_started_voter_without_data_blocks_when_removal_loses_quorum(self):
        me = member(unit(1), "a1")
        cluster = view(member(unit(0), "a0"), me, member(unit(2), "a2"), healthy={"a0"})
        obs = observe(
            unit(1),
            peers=(unit(0), unit(2)),
            app=formed(join=ticket(unit(1), "a1")),
            cluster=cluster,
        )
        step = local(obs)
        assert isinstance(step, Blocked)
        assert "a1" in step.reason and "quorum" in step.reason

    def test_listed_and_started_member_without_data_removes_it(self):
        me = member(unit(1), "a1")
        cluster = view(member(unit(0), "a0"), me, member(unit(2), "a2"), healthy={"a0", "a2"})
        obs = observe(unit(1), peers=(unit(0), unit(2)), app=formed(), cluster=cluster)
        step = local(obs)
        assert isinstance(step, RemoveMember)
        assert step.member == me
        assert "a1" in step.reason

    def test_listed_and_started_member_without_data_blocks_when_removal_loses_quorum(self):
        cluster = view(
            member(unit(0), "a0"), member(unit(1), "a1"), member(unit(2), "a2"), healthy={"a0"}
        )
        obs = observe(unit(1), peers=(unit(0), unit(2)), app=formed(), cluster=cluster)
        step = local(obs)
        assert isinstance(step, Blocked)
        assert "a1" in step.reason and "quorum" in step.reason

    def test_ticket_for_another_unit_waits_to_be_added(self):
        cluster = view(member(unit(0), "a0"), member(unit(2), "a2", started=False, learner=True))
        obs = observe(
            unit(1),
            peers=(unit(0), unit(2)),
            app=formed(join=ticket(unit(2), "a2")),
            cluster=cluster,
        )
        step = local(obs)
        assert isinstance(step, Wait)
        assert "learner" in step.reason

    def test_without_ticket_waits_to_be_added(self):
        obs = observe(unit(1), peers=(unit(0),), app=formed(), cluster=view(member(unit(0), "a0")))
        assert isinstance(local(obs), Wait)


class TestLostData:
    """Seed 000's "member exists, data lost" (a lost PVC): no data, but a started member listed."""

    def lost(self, cluster: ClusterView, *, with_ticket: bool, me_id: str = "a2") -> Observation:
        join = ticket(unit(2), me_id) if with_ticket else None
        return observe(
            unit(2, me_id),
            peers=(unit(0, "a0"), unit(1, "a1")),
            app=formed(join=join),
            cluster=cluster,
        )

    @pytest.mark.parametrize("with_ticket", [False, True], ids=["no-ticket", "ticket"])
    def test_removes_its_own_member_when_the_others_keep_quorum(self, with_ticket):
        # Three voters; this unit is not running, so its own member is the unhealthy one.
        me = member(unit(2), "a2")
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), me, healthy={"a0", "a1"})
        step = local(self.lost(cluster, with_ticket=with_ticket))
        assert isinstance(step, RemoveMember)
        assert step.member == me
        assert "a2" in step.reason

    @pytest.mark.parametrize("with_ticket", [False, True], ids=["no-ticket", "ticket"])
    def test_blocks_when_only_one_of_three_voters_is_healthy(self, with_ticket):
        cluster = view(
            member(unit(0), "a0"), member(unit(1), "a1"), member(unit(2), "a2"), healthy={"a0"}
        )
        step = local(self.lost(cluster, with_ticket=with_ticket))
        assert isinstance(step, Blocked)
        assert "quorum" in step.reason and "a2" in step.reason

    @pytest.mark.parametrize("with_ticket", [False, True], ids=["no-ticket", "ticket"])
    def test_a_lost_learner_is_removed_whatever_the_voters_health(self, with_ticket):
        me = member(unit(2), "a2", learner=True)
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), me, healthy={"a0"})
        step = local(self.lost(cluster, with_ticket=with_ticket))
        assert step == RemoveMember(member=me, reason=step.reason)

    def test_an_unstarted_learner_without_data_is_not_removed(self):
        # Added but never started: that is the normal join, not lost data.
        cluster = view(
            member(unit(0), "a0"),
            member(unit(1), "a1"),
            member(unit(2), "a2", started=False, learner=True),
        )
        assert isinstance(local(self.lost(cluster, with_ticket=False)), Wait)
        t = ticket(unit(2), "a2")
        assert local(self.lost(cluster, with_ticket=True)) == Join(ticket=t, token=TOKEN)

    def test_waits_when_no_member_answers(self):
        obs = observe(unit(2, "a2"), peers=(unit(0, "a0"),), app=formed(), cluster=None)
        assert isinstance(local(obs), Wait)


# ---- the leader's cluster step -----------------------------------------------------------------


def leader_obs(cluster: ClusterView | None, app: AppState | None = None, units: int = 3, **kw):
    """The Juju leader etcd-k8s/0 with peers etcd-k8s/1.. ."""
    return observe(
        unit(0, member_id="a0"),
        peers=tuple(unit(n) for n in range(1, units)),
        leader=True,
        app=app if app is not None else formed(),
        data=True,
        running=True,
        cluster=cluster,
        **kw,
    )


class TestClusterStep:
    def test_non_leader_is_idle(self):
        cluster = view(member(unit(0), "a0"))
        obs = dataclasses.replace(leader_obs(cluster, app=planned(f"{APP}-0")), is_leader=False)
        assert next_cluster_step(obs) == Idle()

    def test_nothing_formed_and_nothing_reachable_is_idle(self):
        assert next_cluster_step(leader_obs(None, app=planned(f"{APP}-0"))) == Idle()

    def test_formed_but_nothing_reachable_waits(self):
        assert isinstance(next_cluster_step(leader_obs(None)), Wait)

    def test_records_cluster_id_when_unset(self):
        cluster = view(member(unit(0), "a0"), cluster_id="1234")
        step = next_cluster_step(leader_obs(cluster, app=planned(f"{APP}-0")))
        assert step == RecordCluster(cluster_id="1234")

    def test_blocks_on_cluster_id_mismatch(self):
        cluster = view(member(unit(0), "a0"), cluster_id="beef")
        step = next_cluster_step(leader_obs(cluster))
        assert isinstance(step, Blocked)
        assert "beef" in step.reason and CLUSTER_ID in step.reason

    def test_promotes_a_started_learner(self):
        learner = member(unit(1), "a1", learner=True)
        cluster = view(member(unit(0), "a0"), learner)
        assert next_cluster_step(leader_obs(cluster)) == Promote(member=learner)

    @pytest.mark.parametrize(
        "join",
        [None, ticket(unit(1), "old"), ticket(unit(2), "a2")],
        ids=["no-ticket", "stale-id", "other-unit"],
    )
    def test_publishes_the_ticket_of_an_unstarted_learner(self, join):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1", started=False, learner=True))
        step = next_cluster_step(leader_obs(cluster, app=formed(join=join)))
        assert step == PublishTicket(ticket=ticket_for(unit(1), "a1", cluster))

    def test_waits_for_the_learner_once_its_ticket_is_published(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1", started=False, learner=True))
        join = ticket_for(unit(1), "a1", cluster)
        step = next_cluster_step(leader_obs(cluster, app=formed(join=join)))
        assert isinstance(step, Wait)
        assert f"{APP}/1" in step.reason

    def test_learner_without_a_unit_waits_when_nothing_is_known_about_units(self):
        # With units known, such a learner is an orphan and removed (see TestOrphans).
        stranger = Member(id="ff", name="", peer_urls=("http://elsewhere:2380",), is_learner=True)
        cluster = view(member(unit(0), "a0"), stranger)
        step = next_cluster_step(leader_obs(cluster, present=frozenset()))
        assert isinstance(step, Wait)
        assert "ff" in step.reason

    def test_clears_ticket_when_no_learner_is_left(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), member(unit(2), "a2"))
        step = next_cluster_step(leader_obs(cluster, app=formed(join=ticket(unit(1), "a1"))))
        assert step == ClearTicket()

    def test_idle_when_every_unit_is_a_voter(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), member(unit(2), "a2"))
        assert next_cluster_step(leader_obs(cluster)) == Idle()

    def test_adds_the_lowest_numbered_unit_not_in_the_member_list(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"))
        obs = observe(
            unit(0, member_id="a0"),
            peers=(unit(1), unit(10), unit(12), unit(9)),
            leader=True,
            app=formed(),
            running=True,
            data=True,
            cluster=cluster,
        )
        # Numeric order: etcd-k8s/9 before etcd-k8s/10.
        assert next_cluster_step(obs) == AddLearner(unit=unit(9))

    def test_the_leader_itself_can_be_the_joiner(self):
        cluster = view(member(unit(1), "a1"))
        obs = observe(
            unit(0), peers=(unit(1, "a1"), unit(2)), leader=True, app=formed(), cluster=cluster
        )
        assert next_cluster_step(obs) == AddLearner(unit=unit(0))

    def test_waits_naming_unhealthy_voters_instead_of_adding(self):
        cluster = view(
            member(unit(0), "a0"),
            member(unit(1), "a1"),
            member(unit(3), "a3"),
            healthy={"a0"},
        )
        obs = observe(
            unit(0, "a0"),
            peers=(unit(1), unit(2), unit(3)),
            leader=True,
            app=formed(),
            running=True,
            cluster=cluster,
        )
        step = next_cluster_step(obs)
        assert isinstance(step, Wait)
        assert f"{APP}/2" in step.reason
        assert f"{APP}-1, {APP}-3" in step.reason
        assert f"{APP}-0" not in step.reason.split(":", 1)[1]

    @pytest.mark.parametrize("started", [True, False])
    def test_never_adds_a_second_learner(self, started):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1", started=started, learner=True))
        obs = leader_obs(cluster, units=5)  # etcd-k8s/2..4 are waiting to join
        assert not isinstance(next_cluster_step(obs), AddLearner)


# ---- removal_keeps_quorum ----------------------------------------------------------------------


def voters(n: int, healthy: str, learners: str = "") -> ClusterView:
    """Voters a0..a{n-1} of units 0.., learners as listed ids; `healthy` names ids, e.g. "012"."""
    members = [member(unit(i), f"a{i}") for i in range(n)]
    members += [member(unit(int(i)), f"a{i}", learner=True) for i in learners]
    return view(*members, healthy={f"a{i}" for i in healthy})


def by_id(cluster: ClusterView, member_id: str) -> Member:
    return next(m for m in cluster.members if m.id == member_id)


class TestRemovalKeepsQuorum:
    @pytest.mark.parametrize(
        "cluster, removed, keeps",
        [
            (voters(3, "012"), "a2", True),
            (voters(3, "01"), "a2", True),  # the dead one goes, two healthy of two remain
            (voters(3, "0"), "a2", False),  # one healthy of two remaining
            (voters(3, "2"), "a2", False),  # the only healthy one goes
            (voters(3, "12"), "a2", False),
            (voters(2, "01"), "a1", True),
            (voters(1, "0"), "a0", False),  # no voter would remain
            (voters(5, "012"), "a4", True),  # 3 healthy of 4 remaining
            (voters(5, "01"), "a4", False),  # 2 healthy of 4 remaining
            (voters(5, "0123"), "a0", True),
        ],
    )
    def test_healthy_voters_left_must_be_a_majority_of_voters_left(self, cluster, removed, keeps):
        assert removal_keeps_quorum(cluster, by_id(cluster, removed)) is keeps

    @pytest.mark.parametrize("healthy", ["", "0", "01"])
    def test_removing_a_learner_always_keeps_quorum(self, healthy):
        cluster = voters(1, healthy, learners="1")
        assert removal_keeps_quorum(cluster, by_id(cluster, "a1"))

    def test_healthy_learners_do_not_count(self):
        cluster = voters(2, "12", learners="2")  # a1 voter healthy, a2 learner healthy
        assert not removal_keeps_quorum(cluster, by_id(cluster, "a1"))
        cluster = voters(2, "02", learners="2")  # a0 voter healthy, a2 learner healthy
        # 1 of 2 voters healthy: no quorum now, so the removal could not even commit.
        assert not removal_keeps_quorum(cluster, by_id(cluster, "a1"))

    def test_no_voter_left_but_a_learner_is_not_quorum(self):
        cluster = voters(1, "01", learners="1")
        assert not removal_keeps_quorum(cluster, by_id(cluster, "a0"))

    @pytest.mark.parametrize(
        "cluster, removed",
        [(voters(2, "0"), "a1"), (voters(4, "01"), "a3")],
        ids=["1-of-2-healthy", "2-of-4-healthy"],
    )
    def test_no_quorum_now_means_no_removal(self, cluster, removed):
        assert not removal_keeps_quorum(cluster, by_id(cluster, removed))


# ---- orphans: members without a unit ----------------------------------------------------------


class TestOrphans:
    """The leader's handling of members whose unit Juju no longer has."""

    def test_orphan_learner_is_removed(self):
        gone = member(unit(3), "a3", learner=True)
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), member(unit(2), "a2"), gone)
        step = next_cluster_step(leader_obs(cluster))
        assert isinstance(step, RemoveMember)
        assert step.member == gone
        assert f"{APP}-3" in step.reason

    def test_unstarted_orphan_learner_is_removed_even_with_a_stale_databag(self):
        # Unnamed: matched by peer URL, and only units Juju still has count.
        gone = member(unit(3), "a3", started=False, learner=True)
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), gone)
        obs = leader_obs(cluster, units=4, present={f"{APP}-0", f"{APP}-1", f"{APP}-2"})
        step = next_cluster_step(obs)
        assert isinstance(step, RemoveMember)
        assert step.member == gone
        assert "a3" in step.reason

    def test_orphan_learner_removed_whatever_the_voters_health(self):
        gone = member(unit(3), "a3", learner=True)
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), gone, healthy=set())
        assert next_cluster_step(leader_obs(cluster, units=2)) == RemoveMember(
            member=gone, reason=f"member {APP}-3 has no unit behind it"
        )

    def test_unstarted_learner_with_its_unit_present_gets_its_ticket(self):
        learner = member(unit(2), "a2", started=False, learner=True)
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), learner)
        step = next_cluster_step(leader_obs(cluster))
        assert step == PublishTicket(ticket=ticket_for(unit(2), "a2", cluster))

    def test_orphan_healthy_voter_is_waited_for(self):
        cluster = voters(4, "0123")
        step = next_cluster_step(leader_obs(cluster))  # units 0..2: etcd-k8s-3 has no unit
        assert isinstance(step, Wait)
        assert f"{APP}-3" in step.reason and "no unit" in step.reason

    def test_orphan_dead_voter_is_removed_when_two_other_voters_are_healthy(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), member(unit(3), "a3"))
        cluster = dataclasses.replace(cluster, healthy_ids=frozenset({"a0", "a1"}))
        step = next_cluster_step(leader_obs(cluster, units=2))
        assert isinstance(step, RemoveMember)
        assert step.member == by_id(cluster, "a3")
        assert f"{APP}-3" in step.reason

    @pytest.mark.parametrize("healthy", [set(), {"a0"}], ids=["all-dead", "one-healthy"])
    def test_orphan_dead_voter_blocks_when_removal_loses_quorum(self, healthy):
        cluster = view(
            member(unit(0), "a0"), member(unit(1), "a1"), member(unit(3), "a3"), healthy=healthy
        )
        step = next_cluster_step(leader_obs(cluster, units=2))
        assert isinstance(step, Blocked)
        assert f"{APP}-3" in step.reason and "quorum" in step.reason

    def test_dead_voter_with_its_unit_present_is_left_alone(self):
        # Reachability alone never condemns a member.
        cluster = voters(3, "01")
        assert next_cluster_step(leader_obs(cluster)) == Idle()

    def test_orphans_come_before_learners(self):
        learner = member(unit(3), "a3", learner=True)
        cluster = view(*voters(3, "").members, learner, healthy={"a0", "a1", "a3"})
        obs = leader_obs(cluster, units=4, present={f"{APP}-0", f"{APP}-1", f"{APP}-3"})
        step = next_cluster_step(obs)
        assert isinstance(step, RemoveMember)
        assert step.member == by_id(cluster, "a2")

    @pytest.mark.parametrize(
        "cluster, expected",
        [
            # A dead voter without a unit: nothing to add, nothing to promote.
            (view(member(unit(0), "a0"), member(unit(1), "a1"), member(unit(3), "a3")), Idle()),
            # An orphan started learner: the normal learner handling promotes it.
            (
                view(
                    member(unit(0), "a0"),
                    member(unit(1), "a1"),
                    member(unit(3), "a3", learner=True),
                ),
                Promote(member=member(unit(3), "a3", learner=True)),
            ),
        ],
        ids=["dead-voter", "started-learner"],
    )
    def test_nothing_known_about_units_means_no_orphan_handling(self, cluster, expected):
        cluster = dataclasses.replace(cluster, healthy_ids=frozenset({"a0", "a1"}))
        assert next_cluster_step(leader_obs(cluster, units=2, present=frozenset())) == expected

    def test_non_leader_never_removes_orphans(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), member(unit(3), "a3"))
        obs = dataclasses.replace(leader_obs(cluster, units=2), is_leader=False)
        assert next_cluster_step(obs) == Idle()


# ---- ticket_for --------------------------------------------------------------------------------


class TestTicketFor:
    def test_entries_are_sorted_and_name_the_joiner_by_its_unit(self):
        other_learner = Member(id="dd", name="", peer_urls=("http://zz:2380",), is_learner=True)
        cluster = view(
            member(unit(2), "a2"),
            member(unit(0), "a0"),
            member(unit(1), "a1", started=False, learner=True),
            other_learner,
        )
        t = ticket_for(unit(1), "a1", cluster)
        assert t == JoinTicket(
            member_name=f"{APP}-1",
            member_id="a1",
            peer_url=unit(1).peer_url,
            initial_cluster=(
                f"{APP}-0={unit(0).peer_url},{APP}-1={unit(1).peer_url},{APP}-2={unit(2).peer_url}"
            ),
        )

    def test_every_peer_url_of_a_member_is_listed(self):
        multi = Member(id="a0", name="x", peer_urls=("http://b:2380", "http://a:2380"))
        t = ticket_for(
            unit(1), "a1", with_member_added(view(multi), member(unit(1), "a1", started=False))
        )
        assert t.initial_cluster == f"{APP}-1={unit(1).peer_url},x=http://a:2380,x=http://b:2380"


# ---- leaving -----------------------------------------------------------------------------------


def leaving(n: int, cluster: ClusterView | None, units: int = 3, **kw) -> Observation:
    """etcd-k8s/n is being removed, running, with etcd-k8s/0..units-1 around it."""
    return observe(
        unit(n, f"a{n}"),
        peers=tuple(unit(i, f"a{i}") for i in range(units) if i != n),
        app=formed(),
        data=True,
        running=True,
        cluster=cluster,
        **kw,
    )


def led_by(cluster: ClusterView, leader_id: str | None) -> ClusterView:
    return dataclasses.replace(cluster, leader_id=leader_id)


class TestDeparture:
    def test_waits_when_no_member_answers(self):
        step = next_departure_step(leaving(1, None))
        assert isinstance(step, Wait)

    def test_left_once_its_member_is_not_listed(self):
        assert next_departure_step(leaving(2, voters(2, "01"))) == Left()

    def test_raft_leader_hands_over_to_the_lowest_named_healthy_voter(self):
        cluster = led_by(voters(3, "012"), "a1")
        assert next_departure_step(leaving(1, cluster)) == MoveLeader(to=by_id(cluster, "a0"))

    def test_hands_over_to_a_voter_whose_unit_stays(self):
        # etcd-k8s/0 is leaving too: Juju no longer lists it.
        cluster = led_by(voters(3, "012"), "a1")
        obs = leaving(1, cluster, present={f"{APP}-1", f"{APP}-2"})
        assert next_departure_step(obs) == MoveLeader(to=by_id(cluster, "a2"))

    def test_hands_over_to_a_leaving_voter_when_none_stays(self):
        cluster = led_by(voters(3, "012"), "a1")
        obs = leaving(1, cluster, present={f"{APP}-1"})
        assert next_departure_step(obs) == MoveLeader(to=by_id(cluster, "a0"))

    def test_never_hands_over_to_an_unhealthy_voter_or_a_learner(self):
        cluster = led_by(voters(3, "123", learners="3"), "a1")
        obs = leaving(1, cluster, units=4)
        assert next_departure_step(obs) == MoveLeader(to=by_id(cluster, "a2"))

    def test_scale_two_to_one(self):
        cluster = voters(2, "01")
        # The raft leader leaving hands over first ...
        step = next_departure_step(leaving(1, led_by(cluster, "a1"), units=2))
        assert step == MoveLeader(to=by_id(cluster, "a0"))
        # ... then, no longer the leader, removes its own member ...
        step = next_departure_step(leaving(1, led_by(cluster, "a0"), units=2))
        assert isinstance(step, RemoveMember)
        assert step.member == by_id(cluster, "a1")
        # ... and once it is gone, it has left.
        after = led_by(voters(1, "0"), "a0")
        assert next_departure_step(leaving(1, after, units=2)) == Left()

    @pytest.mark.parametrize("leader", ["a0", None], ids=["leader", "leader-unknown"])
    def test_last_voter_is_told_apart(self, leader):
        step = next_departure_step(leaving(0, led_by(voters(1, "0"), leader), units=1))
        assert step == LastVoter()

    def test_last_voter_with_a_learner_still_there(self):
        cluster = led_by(voters(1, "01", learners="1"), "a0")
        step = next_departure_step(leaving(0, cluster, units=2))
        assert step == LastVoter()

    def test_a_voter_whose_only_peer_voter_is_down_is_not_the_last_voter(self):
        step = next_departure_step(leaving(0, led_by(voters(2, "0"), "a0"), units=2))
        assert isinstance(step, Blocked)
        assert "quorum" in step.reason

    @pytest.mark.parametrize("leader", ["a0", None])
    def test_blocks_when_removal_would_lose_quorum(self, leader):
        # a2 is down: after this member goes, one healthy voter of two is no majority.
        step = next_departure_step(leaving(1, led_by(voters(3, "01"), leader)))
        assert isinstance(step, Blocked)
        assert "quorum" in step.reason

    @pytest.mark.parametrize("leader", ["a0", None], ids=["other-leads", "leader-unknown"])
    def test_voter_that_is_not_the_raft_leader_removes_itself(self, leader):
        cluster = led_by(voters(3, "012"), leader)
        step = next_departure_step(leaving(1, cluster))
        assert isinstance(step, RemoveMember)
        assert step.member == by_id(cluster, "a1")

    @pytest.mark.parametrize("started", [True, False])
    @pytest.mark.parametrize("healthy", ["012", "0"])
    def test_learner_leaving_removes_itself(self, started, healthy):
        me = member(unit(2), "a2", started=started, learner=True)
        cluster = led_by(
            view(
                member(unit(0), "a0"), member(unit(1), "a1"), me, healthy={f"a{i}" for i in healthy}
            ),
            "a0",
        )
        step = next_departure_step(leaving(2, cluster))
        assert isinstance(step, RemoveMember)
        assert step.member == me


# ---- invariants over random observations -------------------------------------------------------


def random_observation(rng: random.Random) -> Observation:
    numbers = rng.sample(range(12), rng.randint(1, 5))
    ids = {n: f"{rng.getrandbits(64):x}" for n in numbers}
    units = [unit(n, ids[n] if rng.random() < 0.3 else None) for n in numbers]
    me, peers = units[0], tuple(units[1:])

    cluster = None
    if rng.random() < 0.5:
        members = []
        for u in units + [unit(40 + i) for i in range(rng.randint(0, 1))]:
            if rng.random() < 0.6:
                members.append(
                    member(
                        u,
                        ids.get(u.number, "ee"),
                        started=rng.random() < 0.7,
                        learner=rng.random() < 0.3,
                    )
                )
        healthy = {m.id for m in members if rng.random() < 0.8}
        cluster = view(
            *members,
            cluster_id=rng.choice([CLUSTER_ID, "beef"]),
            healthy=healthy,
            leader=rng.choice([None, *(m.id for m in members)]),
        )
        indexes = tuple((m, rng.randint(1, 100)) for m in sorted(healthy) if rng.random() < 0.8)
        cluster = dataclasses.replace(cluster, raft_indexes=indexes)

    names = [u.member_name for u in units] + [f"{APP}-99"]
    join = None
    if rng.random() < 0.4:
        target = rng.choice(units)
        join = ticket(target, rng.choice([ids[target.number], "0bad"]))
    app = AppState(
        cluster_token=rng.choice([None, TOKEN]),
        bootstrap_member=rng.choice([None, *names]),
        cluster_id=rng.choice([None, CLUSTER_ID, "beef"]),
        join=join,
    )
    data = rng.random() < 0.3
    marker = None
    if data and rng.random() < 0.6:
        marker = Marker(
            member_id=rng.choice([ids[me.number], "0bad"]),
            cluster_id=rng.choice([CLUSTER_ID, "beef"]),
            joining=rng.random() < 0.2,
            raft_index=rng.choice([None, rng.randint(1, 100)]),
        )
    if rng.random() < 0.2:  # a peer ran rebuild-cluster, cutting some members loose
        dropped = tuple(rng.sample([*ids.values(), "0bad"], rng.randint(0, 2)))
        record = RebuildRecord(rng.choice([*ids.values(), "ee"]), CLUSTER_ID, rng.randint(1, 100))
        peers = (
            (
                dataclasses.replace(peers[0], rebuild=dataclasses.replace(record, dropped=dropped)),
                *peers[1:],
            )
            if peers
            else peers
        )
    # Juju's units: usually all of them, sometimes some gone, some without a databag, or none known.
    present = None
    if rng.random() < 0.4:
        present = {u.member_name for u in units if rng.random() < 0.7}
        present |= {f"{APP}-{n}" for n in (40, 99) if rng.random() < 0.2}
    return observe(
        me,
        peers=peers,
        leader=rng.random() < 0.5,
        app=app,
        data=data,
        marker=marker,
        running=rng.random() < 0.3,
        cluster=cluster,
        present=present,
    )


def expected_for_data_on_disk(obs: Observation) -> type:
    """The spec of the data-on-disk decision, restated."""
    view, marker = obs.cluster, obs.disk.marker
    if marker is not None and marker.joining:
        if view is None:
            return Wait
        started = {m.id for m in view.members if m.started}
        return StartMember if marker.member_id in started else WipeStaleData
    if view is None:
        return StartMember
    if obs.app.cluster_id is not None and view.cluster_id != obs.app.cluster_id:
        return StartMember  # never wipe while the live cluster is not the recorded one
    if marker is not None and marker.cluster_id != view.cluster_id:
        return WipeStaleData
    if marker is not None and marker.member_id not in {m.id for m in view.members}:
        reference = view.raft_index
        for u in obs.units:
            r = u.rebuild
            if r and r.cluster_id == view.cluster_id and marker.member_id in r.dropped:
                reference = r.raft_index
        ahead = None not in (marker.raft_index, reference) and marker.raft_index > reference
        return HoldData if ahead else WipeStaleData
    if view.find(obs.me.member_name, obs.me.peer_url) is None:
        return WipeStaleData
    return StartMember


@pytest.mark.parametrize("seed", range(4))
def test_invariants_hold_for_random_observations(seed):
    rng = random.Random(seed)
    seen = set()
    for _ in range(1500):
        obs = random_observation(rng)
        step = local(obs)
        cluster_step = next_cluster_step(obs)
        departure = next_departure_step(obs)
        seen.update({type(step), type(cluster_step)})
        seen.update({("local", type(step)), ("cluster", type(cluster_step))})
        seen.add(("departure", type(departure)))

        if isinstance(step, PlanBootstrap):
            assert obs.is_leader
            assert step.member == obs.me.member_name
        if isinstance(step, Bootstrap):
            assert obs.app.bootstrap_member == obs.me.member_name
            assert obs.app.cluster_id is None
            assert obs.cluster is None
            assert not any(u.member_id for u in obs.units)
            assert not obs.disk.has_member_data and not obs.running
        if obs.disk.has_member_data and not obs.running:
            assert type(step) is expected_for_data_on_disk(obs)
        if isinstance(step, WipeStaleData):
            assert obs.disk.has_member_data and not obs.running and obs.cluster is not None
        if isinstance(step, HoldData):  # never re-added while it holds data the cluster lacks
            assert obs.disk.marker is not None and obs.disk.marker.raft_index is not None
        if not obs.is_leader:
            assert cluster_step == Idle()
        if isinstance(cluster_step, AddLearner):
            assert obs.cluster is not None and not obs.cluster.learners
            assert (
                obs.cluster.find(cluster_step.unit.member_name, cluster_step.unit.peer_url) is None
            )
            assert set(m.id for m in obs.cluster.voters) <= obs.cluster.healthy_ids

        # No removal ever costs quorum, whichever decision makes it.
        for s in (step, cluster_step, departure):
            if isinstance(s, RemoveMember):
                assert obs.cluster is not None and s.member in obs.cluster.members
                assert removal_keeps_quorum(obs.cluster, s.member)
        if isinstance(step, RemoveMember):  # only this unit's own member, started, data lost
            assert not obs.running and not obs.disk.has_member_data
            assert step.member == obs.cluster.find(obs.me.member_name, obs.me.peer_url)
            assert step.member.started
        if isinstance(cluster_step, RemoveMember):  # only a member Juju has no unit for
            assert obs.present and not obs.has_unit(cluster_step.member)
        if isinstance(departure, RemoveMember):
            assert departure.member == obs.cluster.find(obs.me.member_name, obs.me.peer_url)
        if isinstance(departure, MoveLeader):
            assert obs.cluster.leader_id == obs.cluster.find(obs.me.member_name, obs.me.peer_url).id
            assert departure.to in obs.cluster.healthy_voters
            assert departure.to.id != obs.cluster.leader_id
        if isinstance(departure, Left):
            assert obs.cluster.find(obs.me.member_name, obs.me.peer_url) is None
    # The generator must actually reach the interesting steps, or the invariants prove nothing.
    assert {PlanBootstrap, Bootstrap, Join, Promote, AddLearner, PublishTicket} <= seen
    assert {("local", StartMember), ("local", WipeStaleData), ("local", RemoveMember)} <= seen
    assert {("local", HoldData), ("local", Wait)} <= seen
    assert {("cluster", RemoveMember), ("cluster", Blocked), ("cluster", Wait)} <= seen
    assert {("departure", t) for t in (Wait, Left, MoveLeader, RemoveMember, Blocked)} <= seen


# ---- a whole deployment, simulated -------------------------------------------------------------


class Model:
    """Units, peer relation data and one etcd cluster, driven only by the core's steps.

    Hooks in one round run concurrently, as Juju runs them on different units: each sees the
    relation data committed before the round (plus its own writes), and its writes are
    committed when the round ends. etcd itself is shared and live.
    """

    def __init__(self, rng: random.Random, size: int):
        self.rng = rng
        self.infos = {n: unit(n) for n in range(size)}  # committed unit databags
        self.app = AppState()  # committed app databag
        self.data = dict.fromkeys(self.infos, False)
        self.running = dict.fromkeys(self.infos, False)
        self.leader = rng.choice(list(self.infos))
        self.cluster_id: str | None = None
        self.members: list[Member] = []
        self.bootstraps: list[int] = []

    def round(self, hooks: list[int]) -> None:
        app, infos = self.app, dict(self.infos)
        results = [self.hook(n, app, infos) for n in hooks]
        for n, (new_app, info) in zip(hooks, results, strict=True):
            if new_app != app:
                assert n == self.leader, "only the leader writes app data"
                self.app = new_app
            self.infos[n] = info

    def hook(self, n: int, app: AppState, infos: dict[int, UnitInfo]):
        """One reconcile on unit n: the engine's loop over core.flow's passes, with this
        simulation's etcd carrying out each step (what engine/reconciler.py does for real)."""
        self.seen_app, self.seen = app, dict(infos)
        tried: set[str] = set()
        obs = self.observe(n)
        for _ in range(24):
            decision = flow.next_step(obs, skip=frozenset(tried))
            for name in ("local", "cluster"):
                assert not isinstance(decision.said.get(name), Blocked), decision.said
            if decision.acting is None:
                break
            if not self.carry_out(n, decision.step, obs):
                tried.add(decision.acting)
                continue
            tried.clear()
            self.publish(n)
            obs = self.observe(n)
        self.publish(n)
        return self.seen_app, self.seen[n]

    def carry_out(self, n: int, step: object, obs: Observation) -> bool:
        """False: the step was carried out without effect (as the engine's handlers say)."""
        if isinstance(step, PlanBootstrap):
            self.write_app(bootstrap_member=step.member, cluster_token=step.token)
            return False  # the plan must be committed before anyone acts on it
        if isinstance(step, Bootstrap):
            self.bootstraps.append(n)
            self.cluster_id = self.new_id()
            self.members = [member(self.seen[n], self.new_id())]
            self.data[n] = self.running[n] = True
        elif isinstance(step, StartMember):
            self.running[n] = True
        elif isinstance(step, Join):
            self.replace_member(step.ticket.member_id, name=self.seen[n].member_name)
            self.data[n] = self.running[n] = True
        elif isinstance(step, Promote):
            self.replace_member(step.member.id, is_learner=False)
        else:
            return self.cluster_step(step, obs)
        return True

    def observe(self, n: int) -> Observation:
        return Observation(
            me=self.seen[n],
            is_leader=n == self.leader,
            app=self.seen_app,
            peers=tuple(info for m, info in self.seen.items() if m != n),
            disk=Disk(has_member_data=self.data[n]),
            running=self.running[n],
            cluster=self.view(n),
            present=frozenset(info.member_name for info in self.infos.values()),
            new_token=f"token-{self.new_id()}",
        )

    def view(self, n: int) -> ClusterView | None:
        """What etcdctl returns, asked at this unit and the peers that published a member id."""
        endpoints = [m for m, info in self.seen.items() if info.member_id or m == n]
        if self.cluster_id is None or not any(self.running[m] for m in endpoints):
            return None
        started = {self.infos[m].member_name for m in self.infos if self.running[m]}
        healthy = {m.id for m in self.members if m.name in started}
        return ClusterView(self.cluster_id, tuple(self.members), frozenset(healthy))

    def cluster_step(self, step: object, obs: Observation) -> bool:
        if isinstance(step, RecordCluster):
            self.write_app(cluster_id=step.cluster_id)
        elif isinstance(step, AddLearner):
            assert obs.cluster is not None
            assert not any(m.is_learner for m in self.members), "etcd allows one learner"
            added = Member(self.new_id(), "", (step.unit.peer_url,), is_learner=True)
            self.members.append(added)
            self.write_app(
                join=ticket_for(step.unit, added.id, with_member_added(obs.cluster, added))
            )
        elif isinstance(step, PublishTicket):
            self.write_app(join=step.ticket)
        elif isinstance(step, ClearTicket):
            self.write_app(join=None)
        else:
            raise AssertionError(f"a step this simulation does not model: {step}")
        return True

    def write_app(self, **changes) -> None:
        self.seen_app = dataclasses.replace(self.seen_app, **changes)

    def publish(self, n: int) -> None:
        info = self.seen[n]
        for m in self.members:
            if m.name == info.member_name and m.id != info.member_id:
                self.seen[n] = dataclasses.replace(info, member_id=m.id)

    def replace_member(self, member_id: str, **changes) -> None:
        self.members = [
            dataclasses.replace(m, **changes) if m.id == member_id else m for m in self.members
        ]

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(64):x}"


def test_bootstrap_plan_survives_a_leader_change():
    model = Model(random.Random(0), size=3)
    model.leader = 0
    model.round([0])  # etcd-k8s/0 plans, naming itself, and leaves it to a later hook
    assert model.app.bootstrap_member == f"{APP}-0" and model.bootstraps == []
    model.leader = 1
    model.round([1, 0, 2])  # all three at once: only the named unit bootstraps
    assert model.bootstraps == [0]


@pytest.mark.parametrize("seed", range(30))
def test_random_schedules_bootstrap_once_and_converge(seed):
    rng = random.Random(seed)
    model = Model(rng, size=rng.randint(1, 5))
    units = list(model.infos)
    for _ in range(40):
        if rng.random() < 0.2:
            model.leader = rng.choice(units)
        model.round(rng.sample(units, rng.randint(1, len(units))))
        assert len(model.bootstraps) <= 1
        assert sum(m.is_learner for m in model.members) <= 1
    for _ in range(3 * len(units) + 3):  # then every unit gets its turn, one at a time
        for n in units:
            model.round([n])

    assert len(model.bootstraps) == 1
    assert sorted(m.name for m in model.members) == sorted(
        i.member_name for i in model.infos.values()
    )
    assert not any(m.is_learner for m in model.members)
    assert model.app.join is None and model.app.cluster_id == model.cluster_id
    assert all(model.running.values())


# ---- after a restore: data of the superseded cluster --------------------------------------------

OLD_CLUSTER = "dead01"
RECORD = RestoreRecord(
    id="0123abcd",
    snapshot="nightly",
    superseded=OLD_CLUSTER,
    cluster_id=CLUSTER_ID,
    seed=f"{APP}-0",
)


def restored(**changes) -> AppState:
    """App data after the leader (etcd-k8s-0) restored: the new cluster id and the record."""
    return formed(restore=RECORD, **changes)


def old_cluster(healthy: set[str] | None = None) -> ClusterView:
    """The replaced cluster, still answering from units that have not dropped it yet."""
    members = [member(unit(i), f"a{i}") for i in range(3)]
    return view(*members, cluster_id=OLD_CLUSTER, healthy=healthy, leader="a1")


def new_cluster() -> ClusterView:
    return view(member(unit(0), "b0"), leader="b0")


class TestSuperseded:
    def after_restore(self, me: UnitInfo | None = None, **kw) -> Observation:
        me = me or unit(1)
        kw.setdefault("app", restored())
        kw.setdefault("data", True)
        kw.setdefault("marker", Marker("a1", OLD_CLUSTER))
        return observe(me, peers=tuple(unit(i) for i in range(3) if i != me.number), **kw)

    @pytest.mark.parametrize("is_leader", [False, True])
    @pytest.mark.parametrize(
        "cluster", [None, new_cluster(), old_cluster()], ids=["none", "new", "old"]
    )
    def test_stopped_unit_with_old_data_drops_it(self, is_leader, cluster):
        step = local(self.after_restore(leader=is_leader, cluster=cluster))
        assert isinstance(step, DropSuperseded)
        assert OLD_CLUSTER in step.reason
        assert RECORD.id in step.reason
        assert RECORD.snapshot in step.reason

    @pytest.mark.parametrize("is_leader", [False, True])
    @pytest.mark.parametrize(
        "cluster", [None, new_cluster(), old_cluster()], ids=["none", "new", "old"]
    )
    def test_running_unit_with_old_data_drops_it(self, is_leader, cluster):
        obs = self.after_restore(leader=is_leader, running=True, cluster=cluster)
        assert isinstance(local(obs), DropSuperseded)

    @pytest.mark.parametrize(
        "cluster, without_record",
        [
            (old_cluster(), Idle()),  # a voter of the old cluster, still serving
            (None, Wait("etcd is running but no member answers: waiting for quorum")),
        ],
        ids=["idle-voter", "waiting"],
    )
    def test_takes_precedence_over_the_running_step(self, cluster, without_record):
        obs = self.after_restore(running=True, cluster=cluster)
        assert local(dataclasses.replace(obs, app=formed())) == without_record
        assert isinstance(local(obs), DropSuperseded)

    def test_takes_precedence_over_promoting_an_old_learner(self):
        me = member(unit(1), "a1", learner=True)
        cluster = view(member(unit(0), "a0"), me, cluster_id=OLD_CLUSTER, leader="a0")
        obs = self.after_restore(running=True, cluster=cluster)
        assert local(dataclasses.replace(obs, app=formed())) == Promote(member=me)
        assert isinstance(local(obs), DropSuperseded)

    def test_takes_precedence_over_starting_the_data(self):
        # No member answers: without the record the old data would be started.
        obs = self.after_restore(cluster=None)
        assert local(dataclasses.replace(obs, app=formed())) == StartMember()
        assert isinstance(local(obs), DropSuperseded)

    @pytest.mark.parametrize("running", [False, True])
    def test_not_for_the_seed(self, running):
        obs = self.after_restore(
            me=unit(0), marker=Marker("a0", OLD_CLUSTER), running=running, cluster=new_cluster()
        )
        assert not isinstance(local(obs), DropSuperseded)

    def test_the_seed_runs_the_restored_cluster(self):
        obs = self.after_restore(
            me=unit(0), marker=Marker("b0", CLUSTER_ID), running=True, cluster=new_cluster()
        )
        assert local(obs) == Idle()

    @pytest.mark.parametrize("running", [False, True])
    def test_not_for_data_of_the_restored_cluster(self, running):
        cluster = view(member(unit(0), "b0"), member(unit(1), "b1"), leader="b0")
        obs = self.after_restore(marker=Marker("b1", CLUSTER_ID), running=running, cluster=cluster)
        assert local(obs) == (Idle() if running else StartMember())

    @pytest.mark.parametrize("running", [False, True])
    def test_data_of_any_other_cluster_is_dropped_too(self, running):
        # A follower cut off through two restores still runs the cluster before the first.
        obs = self.after_restore(marker=Marker("a1", "beef"), running=running, cluster=None)
        step = local(obs)
        assert isinstance(step, DropSuperseded)
        assert "beef" in step.reason and "older than restore" in step.reason

    @pytest.mark.parametrize("running", [False, True])
    def test_not_without_a_marker(self, running):
        obs = self.after_restore(marker=None, running=running, cluster=None)
        assert not isinstance(local(obs), DropSuperseded)

    def test_not_without_member_data(self):
        # A marker left beside a wiped data dir: nothing to drop, the unit joins as usual.
        obs = self.after_restore(data=False, cluster=new_cluster())
        assert local(obs) == Wait("waiting for the leader to add this unit as a learner")

    @pytest.mark.parametrize("app_cluster_id", [OLD_CLUSTER, "beef", None])
    @pytest.mark.parametrize("running", [False, True])
    def test_not_when_the_app_cluster_id_is_not_the_records(self, app_cluster_id, running):
        # A record left from an older restore, or app data not yet updated: never act on it.
        app = AppState(
            cluster_token=TOKEN,
            bootstrap_member=f"{APP}-0",
            cluster_id=app_cluster_id,
            restore=RECORD,
        )
        obs = self.after_restore(app=app, running=running, cluster=None)
        assert not isinstance(local(obs), DropSuperseded)

    def test_not_without_a_record(self):
        obs = self.after_restore(app=formed(), cluster=None)
        assert local(obs) == StartMember()

    def test_a_later_restore_supersedes_the_first_restored_cluster(self):
        # Restored twice: data of the first restored cluster is now the superseded one.
        second = RestoreRecord(
            id="fedcba98", snapshot="later", superseded=CLUSTER_ID, cluster_id="5eed", seed="x"
        )
        app = formed(restore=second)
        app = dataclasses.replace(app, cluster_id="5eed")
        step = local(self.after_restore(app=app, marker=Marker("b1", CLUSTER_ID), cluster=None))
        assert isinstance(step, DropSuperseded)
        assert "later" in step.reason and CLUSTER_ID in step.reason
        # The data of the cluster before the first restore goes too: it is older still.
        step = local(self.after_restore(app=app, cluster=None))
        assert isinstance(step, DropSuperseded)
        assert OLD_CLUSTER in step.reason and "older than restore fedcba98" in step.reason


# ---- data safety: unjoined data, data ahead of the cluster, member states ------------------------


class TestUnjoinedData:
    """A learner start that never published itself leaves no member's log behind."""

    def joining(self, cluster: ClusterView | None) -> Observation:
        return observe(
            unit(2),
            peers=(unit(0, "a0"), unit(1, "a1")),
            app=formed(join=ticket(unit(2), "b2")),
            data=True,
            marker=Marker("b2", CLUSTER_ID, joining=True),
            cluster=cluster,
        )

    def test_the_learner_slot_still_unstarted_wipes_it(self):
        cluster = view(
            member(unit(0), "a0"), member(unit(1), "a1"), member(unit(2), "b2", started=False)
        )
        step = local(self.joining(cluster))
        assert isinstance(step, WipeStaleData) and "never joined" in step.reason

    def test_the_learner_started_after_all_keeps_it(self):
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), member(unit(2), "b2"))
        assert local(self.joining(cluster)) == StartMember()

    def test_without_a_member_answering_it_waits(self):
        step = local(self.joining(None))
        assert isinstance(step, Wait) and "learner start" in step.reason


class TestDataAheadOfTheCluster:
    """A member the cluster no longer lists: its data is wiped only if it cannot hold writes
    the cluster lacks."""

    def returning(self, index: int | None, rebuild: RebuildRecord | None = None) -> Observation:
        rebuilder = dataclasses.replace(unit(0, "a0"), rebuild=rebuild)
        cluster = dataclasses.replace(
            view(member(unit(0), "a0"), leader="a0"), raft_indexes=(("a0", 40),)
        )
        return observe(
            unit(1),
            peers=(rebuilder, unit(2, "a2")),
            app=formed(),
            data=True,
            marker=Marker("a1", CLUSTER_ID, raft_index=index),
            cluster=cluster,
        )

    @pytest.mark.parametrize("index", [None, 12, 40])
    def test_behind_the_live_cluster_is_wiped(self, index):
        assert isinstance(local(self.returning(index)), WipeStaleData)

    def test_ahead_of_the_live_cluster_is_held(self):
        step = local(self.returning(41))
        assert isinstance(step, HoldData) and isinstance(step, Blocked)
        assert "raft index 41" in step.reason and "the live cluster is at 40" in step.reason
        assert "juju run etcd-k8s/1 discard-data" in step.reason

    def test_ahead_of_the_rebuild_point_is_held_whatever_the_cluster_did_since(self):
        rebuilt = RebuildRecord("a0", CLUSTER_ID, raft_index=11, dropped=("a1", "a2"))
        step = local(self.returning(30, rebuilt))
        assert isinstance(step, HoldData)
        assert "etcd-k8s/0 rebuilt the cluster at 11" in step.reason

    def test_a_rebuild_that_did_not_drop_this_member_does_not_count(self):
        rebuilt = RebuildRecord("a0", CLUSTER_ID, raft_index=11, dropped=("a2",))
        assert isinstance(local(self.returning(30, rebuilt)), WipeStaleData)

    def test_a_running_member_is_held_never_wiped(self):
        rebuilt = RebuildRecord("a0", CLUSTER_ID, raft_index=11, dropped=("a1",))
        obs = dataclasses.replace(self.returning(30, rebuilt), running=True)
        assert isinstance(local(obs), HoldData)
        # Behind: not wiped while it runs either; it is judged once it has stopped.
        obs = dataclasses.replace(self.returning(5), running=True)
        assert local(obs) == Blocked("etcd is running but this unit is not a member of the cluster")

    def test_a_new_learner_on_the_same_peer_url_is_not_taken_for_the_old_member(self):
        cluster = view(
            member(unit(0), "a0"), member(unit(1), "b1", started=False, learner=True), leader="a0"
        )
        obs = dataclasses.replace(self.returning(5), running=True, cluster=cluster)
        assert isinstance(local(obs), Blocked)


class TestMemberState:
    def test_states(self):
        me = member(unit(0), "a0")
        serving = view(me, member(unit(1), "a1"), leader="a1")
        base = observe(unit(0, "a0"), app=formed(), data=True, running=True, cluster=serving)
        assert member_state(base) == SERVING
        assert member_state(dataclasses.replace(base, cluster=None)) == NO_LEADER
        no_leader = dataclasses.replace(serving, leader_id=None)
        assert member_state(dataclasses.replace(base, cluster=no_leader)) == NO_LEADER
        unhealthy = dataclasses.replace(serving, healthy_ids=frozenset({"a1"}))
        assert member_state(dataclasses.replace(base, cluster=unhealthy)) == NO_LEADER
        learning = view(member(unit(0), "a0", learner=True), member(unit(1), "a1"), leader="a1")
        assert member_state(dataclasses.replace(base, cluster=learning)) == LEARNER
        assert member_state(dataclasses.replace(base, running=False)) == STOPPED
        stopped_empty = dataclasses.replace(base, running=False, disk=Disk())
        assert member_state(stopped_empty) == EMPTY

    def test_a_running_member_without_quorum_says_when_others_serve(self):
        others = tuple(dataclasses.replace(unit(n, f"a{n}"), member_state=SERVING) for n in (1, 2))
        obs = observe(unit(0, "a0"), peers=others, app=formed(), data=True, running=True)
        step = local(obs)
        assert isinstance(step, Wait) and "etcd-k8s/1, etcd-k8s/2 report a healthy" in step.reason


# ---- refresh: the version-skew guard before a start ---------------------------------------------


class TestVersionGuard:
    """core/refresh.py's guard, as the local pass asks it: refused, nothing starts."""

    def obs(self, versions, **kw) -> Observation:
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1"), member(unit(2), "a2"))
        base = observe(
            unit(2),
            peers=(unit(0, "a0"), unit(1, "a1")),
            app=formed(),
            data=True,
            marker=Marker(member_id="a2", cluster_id=CLUSTER_ID),
            cluster=cluster,
            **kw,
        )
        return dataclasses.replace(base, versions=versions)

    def test_one_minor_up_starts(self):
        from core.refresh import Versions

        obs = self.obs(Versions(image="3.5.1", cluster="3.4", disk="3.4.23"))
        assert local(obs) == StartMember()

    def test_a_downgrade_is_blocked(self):
        from core.refresh import Versions

        step = local(self.obs(Versions(image="3.4.23", cluster="3.5", disk="3.5.1")))
        assert isinstance(step, Blocked) and step.reason.startswith("refresh refused"), step

    def test_no_versions_no_guard(self):
        assert local(self.obs(None)) == StartMember()

    def test_a_joiner_is_guarded_too(self):
        from core.refresh import Versions

        t = ticket(unit(1), "a1")
        cluster = view(member(unit(0), "a0"), member(unit(1), "a1", started=False, learner=True))
        obs = observe(unit(1), peers=(unit(0),), app=formed(join=t), cluster=cluster)
        jumping = dataclasses.replace(obs, versions=Versions(image="3.6.0", cluster="3.4"))
        step = local(jumping)
        assert isinstance(step, Blocked) and "one minor at a time" in step.reason, step
        ok = dataclasses.replace(obs, versions=Versions(image="3.5.1", cluster="3.4"))
        assert local(ok) == Join(ticket=t, token=TOKEN)


class TestRefreshBusy:
    """core/actions.refresh_busy: what pre-refresh-check refuses to cut across."""

    def obs(self, app=None, cluster=None, peers=None, **kw) -> Observation:
        u0, u1, u2 = unit(0, "a0"), unit(1, "a1"), unit(2, "a2")
        if cluster is None:
            cluster = view(member(u0, "a0"), member(u1, "a1"), member(u2, "a2"), leader="a0")
        return observe(
            u0,
            peers=peers if peers is not None else (u1, u2),
            leader=True,
            app=app if app is not None else formed(),
            data=True,
            running=True,
            cluster=cluster,
            **kw,
        )

    def busy(self, obs: Observation) -> tuple[str, ...]:
        from core.actions import refresh_busy

        return refresh_busy(obs)

    def test_a_quiet_cluster(self):
        assert self.busy(self.obs()) == ()

    def test_a_rolling_restart(self):
        assert "a rolling restart" in self.busy(self.obs(app=formed(restart_turn="etcd-k8s/1")))

    def test_a_tls_switch(self):
        from core.model import Settings, TlsRecord

        app = formed(tls=Settings(peer=TlsRecord(stage="trust")))
        assert "a TLS roll" in self.busy(self.obs(app=app))

    def test_a_unit_waiting(self):
        waiting = dataclasses.replace(unit(2, "a2"), waiting_for="a certificate")
        busy = self.busy(self.obs(peers=(unit(1, "a1"), waiting)))
        assert any("etcd-k8s/2 waiting" in b for b in busy), busy

    def test_a_restore_rejoining(self):
        from core.model import RestoreRecord

        record = RestoreRecord("r1", "snap-1", "old", CLUSTER_ID, "etcd-k8s-0")
        u0 = unit(0, "a0")
        alone = view(member(u0, "a0"), leader="a0")
        busy = self.busy(self.obs(app=formed(restore=record), cluster=alone))
        assert any("restore of snap-1" in b for b in busy), busy

    def test_units_not_yet_members(self):
        u0, u1 = unit(0, "a0"), unit(1, "a1")
        two = view(member(u0, "a0"), member(u1, "a1"), leader="a0")
        busy = self.busy(self.obs(cluster=two))
        assert any("units not yet members" in b for b in busy), busy
