"""core/refresh.py: the version-skew guard, the 3.6 downgrade procedure, pre-refresh-check's
refusals and the app status's version note."""

from __future__ import annotations

import pytest

from core import refresh
from core.messages import known
from core.refresh import ClusterFacts, Versions, guard


def allowed(**kw: object) -> None:
    judged = guard(Versions(**kw))  # type: ignore[arg-type]
    assert judged.allowed, judged


def refused(rule: str, *words: str, **kw: object) -> str:
    judged = guard(Versions(**kw))  # type: ignore[arg-type]
    assert not judged.allowed, judged
    assert judged.why == rule, judged
    assert judged.refusal is not None
    assert known(judged.refusal) is not None, "not a catalogue message"
    assert "juju refresh etcd-k8s --resource etcd-image=" in judged.refusal
    for word in words:
        assert word in judged.refusal, judged.refusal
    return judged.refusal


class TestParse:
    @pytest.mark.parametrize(
        ("text", "release"),
        [
            ("3.5.1", (3, 5, 1)),
            ("v3.4.23", (3, 4, 23)),
            ("3.5", (3, 5, 0)),
            ("3.6.0-rc.1", (3, 6, 0)),
            (" 3.5.26\n", (3, 5, 26)),
        ],
    )
    def test_reads(self, text: str, release: tuple[int, int, int]) -> None:
        assert refresh.parse(text) == release

    @pytest.mark.parametrize("text", [None, "", "three", "v", "3"])
    def test_unreadable(self, text: str | None) -> None:
        assert refresh.parse(text) is None


class TestGuardAllows:
    def test_a_new_member_with_nothing_to_compare(self) -> None:
        allowed(image="3.5.1")

    def test_unreadable_image_is_left_to_etcd(self) -> None:
        judged = guard(Versions(image="garbage", cluster="3.9", disk="2.0.0"))
        assert judged.allowed and "unreadable" in judged.why

    @pytest.mark.parametrize(
        ("image", "cluster", "disk"),
        [
            ("3.4.23", "3.4", "3.4.23"),  # churn, same image
            ("3.5.1", "3.5", "3.5.1"),
            ("3.5.1", "3.4", "3.4.23"),  # one minor up
            ("3.5.1", None, "3.4.23"),  # one minor up, no member answers
            ("3.5.1", "3.4", None),  # a joiner during the roll
            ("3.6.1", "3.5", "3.5.26"),  # 3.6 from the floor
            ("3.6.1", "3.5", "3.5.30"),
            ("3.5.2", "3.5", "3.5.1"),  # a patch up
            ("3.5.1", "3.5", "3.5.2"),  # a patch down, same minor
        ],
    )
    def test_same_or_one_minor_up(self, image: str, cluster: str | None, disk: str) -> None:
        allowed(image=image, cluster=cluster, disk=disk)

    def test_rollback_part_way_while_the_cluster_version_did_not_move(self) -> None:
        """The data ran 3.5 in a mixed cluster still at 3.4: back to 3.4 is etcd's rollback."""
        judged = guard(Versions(image="3.4.23", cluster="3.4", disk="3.5.1"))
        assert judged.allowed and "rolled back" in judged.why

    def test_36_downgrade_enabled_lowers_the_cluster_version_first(self) -> None:
        allowed(image="3.5.26", cluster="3.5", disk="3.6.1", members=("3.6.1", "3.6.1"))

    def test_auth_on_is_fine_for_churn_and_for_35_to_36(self) -> None:
        allowed(image="3.4.23", cluster="3.4", disk="3.4.23", auth_on=True)
        allowed(image="3.5.1", cluster="3.5", disk="3.5.1", auth_on=True)
        allowed(image="3.6.1", cluster="3.5", disk="3.5.26", auth_on=True)

    def test_auth_on_with_the_cluster_already_on_35(self) -> None:
        """A pod left on 3.4 data after the cluster moved (its pod churned mid-roll)."""
        allowed(image="3.5.1", cluster="3.5", disk="3.4.23", auth_on=True)


class TestGuardRefuses:
    def test_a_jump_of_two_minors(self) -> None:
        text = refused("jump", "3.6.1", "3.4", "to 3.5 first", image="3.6.1", cluster="3.4")
        assert "etcd:v3.4" in text  # rolls back to the cluster's minor

    def test_a_jump_from_the_data_on_disk(self) -> None:
        refused("jump", "data on disk", image="3.6.1", cluster="3.5", disk="3.4.23")

    def test_another_major(self) -> None:
        refused("major", image="4.0.0", cluster="3.6", disk="3.6.1")
        refused("major", image="3.5.1", disk="2.3.8")

    def test_a_downgrade_after_the_cluster_version_moved(self) -> None:
        text = refused(
            "downgrade",
            "below the cluster version 3.5",
            "etcd-image=gcr.io/etcd-development/etcd:v3.5.1",
            image="3.4.23",
            cluster="3.5",
            disk="3.5.1",
        )
        assert "cannot be downgraded" in text

    def test_rollback_names_a_member_release_when_the_data_does_not(self) -> None:
        refused("downgrade", "v3.5.1", image="3.4.23", cluster="3.5", members=("3.5.1",))

    def test_a_36_downgrade_not_prepared(self) -> None:
        refused("downgrade", "downgrade validate/enable", image="3.5.26", cluster="3.6")

    def test_older_than_the_data_with_no_member_to_ask(self) -> None:
        refused("downgrade", "no member answers", "v3.5.1", image="3.4.23", disk="3.5.1")

    @pytest.mark.parametrize(
        ("disk", "members", "lowest"),
        [
            ("3.5.1", (), "3.5.1"),
            ("3.5.26", ("3.5.26", "3.5.25"), "3.5.25"),
            (None, ("3.5.30", "3.5.9"), "3.5.9"),
        ],
    )
    def test_36_from_below_3526(self, disk: str | None, members: tuple[str, ...], lowest: str):
        refused("floor", lowest, image="3.6.0", cluster="3.5", disk=disk, members=members)

    def test_36_from_a_35_cluster_whose_patches_nobody_tells(self) -> None:
        refused("floor", image="3.6.0", cluster="3.5")

    def test_34_to_35_with_auth_on(self) -> None:
        refused("auth", "3.4 -> 3.5", image="3.5.1", cluster="3.4", disk="3.4.23", auth_on=True)
        refused("auth", image="3.5.1", disk="3.4.23", auth_on=True)

    def test_the_first_rule_that_refuses_speaks(self) -> None:
        judged = guard(Versions(image="3.6.0", cluster="3.4", disk="3.4.23", auth_on=True))
        assert judged.why == "jump"


class TestDowngradePlan:
    def test_36_to_35(self) -> None:
        plan = refresh.downgrade_plan("3.6", "3.5")
        assert plan[0] == "etcdctl downgrade validate 3.5"
        assert plan[1] == "etcdctl downgrade enable 3.5"
        assert plan[2].startswith("juju refresh etcd-k8s --resource etcd-image=")

    def test_37_to_36(self) -> None:
        assert refresh.downgrade_plan("3.7.0", "3.6.2")[1] == "etcdctl downgrade enable 3.6"

    def test_before_36_there_is_no_procedure(self) -> None:
        with pytest.raises(ValueError, match="no downgrade procedure"):
            refresh.downgrade_plan("3.5", "3.4")

    @pytest.mark.parametrize("target", ["3.4", "3.6", "3.7", "2.5"])
    def test_one_minor_down_only(self, target: str) -> None:
        with pytest.raises(ValueError, match="one minor down"):
            refresh.downgrade_plan("3.6", target)

    def test_unreadable(self) -> None:
        with pytest.raises(ValueError, match="X.Y"):
            refresh.downgrade_plan("three", "3.5")


class TestPreRefreshRefusal:
    def facts(self, **kw: object) -> ClusterFacts:
        base: dict[str, object] = {"voters": 3, "healthy_voters": 3, "has_leader": True}
        return ClusterFacts(**{**base, **kw})  # type: ignore[arg-type]

    def test_healthy_and_quiet(self) -> None:
        assert refresh.pre_refresh_refusal(self.facts()) is None

    @pytest.mark.parametrize(
        ("kw", "words"),
        [
            ({"healthy_voters": 2}, "2/3 voters healthy"),
            ({"has_leader": False}, "no leader"),
            ({"learners": ("etcd-k8s-3",)}, "learner is joining (etcd-k8s-3)"),
            ({"alarms": ("8e9e NOSPACE",)}, "alarms (8e9e NOSPACE)"),
            ({"busy": ("a TLS roll", "a backup")}, "a TLS roll, a backup in progress"),
        ],
    )
    def test_refuses(self, kw: dict[str, object], words: str) -> None:
        reason = refresh.pre_refresh_refusal(self.facts(**kw))
        assert reason is not None and words in reason, reason

    def test_health_first(self) -> None:
        reason = refresh.pre_refresh_refusal(self.facts(healthy_voters=1, busy=("a backup",)))
        assert reason is not None and "not healthy" in reason

    def test_roll_order(self) -> None:
        order = refresh.roll_order(["etcd-k8s/0", "etcd-k8s/10", "etcd-k8s/2"])
        assert order == ("etcd-k8s/10", "etcd-k8s/2", "etcd-k8s/0")


class TestVersionNote:
    def test_none_without_releases(self) -> None:
        assert refresh.version_note([], "3.5") is None
        assert refresh.version_note(["", ""], None) is None

    def test_all_on_one_release_and_the_cluster_version_moved(self) -> None:
        assert refresh.version_note(["3.5.1"] * 3, "3.5") == "etcd 3.5.1"
        assert refresh.version_note(["3.5.1"], "3.5.0") == "etcd 3.5.1"
        assert refresh.version_note(["3.5.1"], None) == "etcd 3.5.1"

    def test_all_on_one_release_the_cluster_version_behind(self) -> None:
        note = refresh.version_note(["3.5.1"] * 3, "3.4")
        assert note == "every member runs etcd 3.5.1, the cluster version is still 3.4"

    def test_mixed(self) -> None:
        note = refresh.version_note(["3.5.1", "3.4.23", "3.4.23"], "3.4")
        assert note == "refresh under way: members run etcd 3.4.23, 3.5.1, cluster version 3.4"
        assert "cluster version ?" in (refresh.version_note(["3.5.1", "3.4.23"], None) or "")
