"""The etcdctl adapter, fed output captured from etcdctl 3.5.1 `-w json`."""

from __future__ import annotations

import json

import pytest

from core.model import ClusterView, Member
from workload.etcdctl import (
    DIAL_TIMEOUT,
    ETCDCTL,
    LIST_TIMEOUT,
    LOGIN_DIAL_TIMEOUT,
    STATUS_TIMEOUT,
    EndpointStatus,
    Etcdctl,
    EtcdctlError,
    member_id_hex,
)
from workload.snapshot_tool import ETCDUTL, SnapshotStatus, SnapshotTool

CLUSTER_ID = "92fe430f6b9012f5"  # 10591977107130159861
VOTER_ID = "ee54c7103815aa13"  # 17173570151544891923
LEARNER_ID = "869c22381e6be793"  # 9699665321873106835

HEADER = '{"cluster_id":10591977107130159861,"member_id":17173570151544891923,"raft_term":2}'
LEARNER_JSON = '{"ID":9699665321873106835,"peerURLs":["http://127.0.0.8:2380"],"isLearner":true}'
VOTER_JSON = (
    '{"ID":17173570151544891923,"name":"a","peerURLs":["http://127.0.0.9:2380"],'
    '"clientURLs":["http://127.0.0.9:2379"]}'
)
MEMBER_LIST = f'{{"header":{HEADER},"members":[{LEARNER_JSON},{VOTER_JSON}]}}'
MEMBER_ADD = (
    f'{{"header":{HEADER},"member":{LEARNER_JSON},"members":[{LEARNER_JSON},{VOTER_JSON}]}}'
)
ENDPOINT_STATUS = (
    '[{"Endpoint":"http://127.0.0.9:2379","Status":{"header":{"cluster_id":10591977107130159861,'
    '"member_id":17173570151544891923,"revision":1,"raft_term":2},"version":"3.5.1",'
    '"dbSize":20480,"leader":17173570151544891923,"raftIndex":4,"raftTerm":2,'
    '"raftAppliedIndex":4,"dbSizeInUse":16384}}]'
)
STATUS_FAILED = (
    "Failed to get the status of endpoint http://127.0.0.7:2379 (context deadline exceeded)\n"
)
NOT_IN_SYNC = "Error: etcdserver: can only promote a learner member which is in sync with leader\n"
NOT_A_LEARNER = "Error: etcdserver: can only promote a learner member\n"

VOTER = Member(
    id=VOTER_ID,
    name="a",
    peer_urls=("http://127.0.0.9:2380",),
    client_urls=("http://127.0.0.9:2379",),
)
LEARNER = Member(id=LEARNER_ID, name="", peer_urls=("http://127.0.0.8:2380",), is_learner=True)


class FakeRunner:
    """Answers each etcdctl subcommand with canned (exit code, stdout, stderr)."""

    def __init__(self, **answers: tuple[int, str, str]):
        self.answers = answers
        self.calls: list[tuple[list[str], float]] = []

    def __call__(self, argv: list[str], timeout: float, **_: object) -> tuple[int, str, str]:
        self.calls.append((argv, timeout))
        words = [a for a in argv[1:] if not a.startswith("-") and a != "json"]
        key = "_".join(words[:2])
        return self.answers[key]

    def args(self, index: int = -1) -> list[str]:
        return self.calls[index][0]


ENDPOINTS = ["http://127.0.0.9:2379", "http://127.0.0.7:2379"]


def etcdctl(**answers: tuple[int, str, str]) -> tuple[Etcdctl, FakeRunner]:
    runner = FakeRunner(**answers)
    return Etcdctl(runner, ENDPOINTS, timeout=3), runner


class TestCall:
    def test_argv_asks_for_json_from_the_given_endpoints(self):
        client, runner = etcdctl(member_list=(0, MEMBER_LIST, ""))
        client.member_list()
        argv = runner.args()
        assert argv[0] == ETCDCTL
        assert f"--endpoints={','.join(ENDPOINTS)}" in argv
        i = argv.index("-w")
        assert argv[i + 1] == "json"
        assert argv[-2:] == ["member", "list"]
        assert f"--command-timeout={LIST_TIMEOUT:g}s" in argv

    def test_runner_timeout_exceeds_the_command_timeout(self):
        client, runner = etcdctl(member_list=(0, MEMBER_LIST, ""))
        client.member_list()
        assert runner.calls[-1][1] > 3

    def test_a_call_without_login_dials_briefly(self):
        client, runner = etcdctl(member_list=(0, MEMBER_LIST, ""))
        client.member_list()
        assert f"--dial-timeout={DIAL_TIMEOUT:g}s" in runner.args()

    def test_a_login_gets_a_longer_dial_within_the_exec_budget(self):
        """etcdctl logs in within its dial timeout; user and role commands ignore
        --command-timeout, so the exec budget must cover dial and command both."""
        runner = FakeRunner(user_passwd=(0, "Password updated\n", ""))
        client = Etcdctl(runner, ENDPOINTS, timeout=3, auth=("root", "pw"))
        client.user_passwd("root", "new")
        argv, budget = runner.calls[-1]
        assert f"--dial-timeout={LOGIN_DIAL_TIMEOUT:g}s" in argv
        assert budget > LOGIN_DIAL_TIMEOUT + 3

    def test_failure_raises_with_what_etcd_said(self):
        client, _ = etcdctl(member_list=(1, "", "Error: context deadline exceeded\n"))
        with pytest.raises(EtcdctlError) as caught:
            client.member_list()
        assert caught.value.exit_code == 1
        assert caught.value.reason == "context deadline exceeded"
        assert "member list" in str(caught.value)
        assert "context deadline exceeded" in str(caught.value)


class TestMemberList:
    def test_ids_become_hex(self):
        client, _ = etcdctl(member_list=(0, MEMBER_LIST, ""))
        view = client.member_list()
        assert view.cluster_id == CLUSTER_ID
        assert {m.id for m in view.members} == {VOTER_ID, LEARNER_ID}

    def test_members_are_parsed_started_first(self):
        client, _ = etcdctl(member_list=(0, MEMBER_LIST, ""))
        view = client.member_list()
        assert view.members == (VOTER, LEARNER)
        assert not view.members[1].started
        assert view.voters == (VOTER,)
        assert view.learners == (LEARNER,)

    def test_member_list_alone_knows_no_health(self):
        client, _ = etcdctl(member_list=(0, MEMBER_LIST, ""))
        view = client.member_list()
        assert view.healthy_ids == frozenset()
        assert view.leader_id is None


class TestMemberAdd:
    def test_returns_the_added_learner(self):
        client, runner = etcdctl(member_add=(0, MEMBER_ADD, ""))
        assert client.member_add_learner("b", "http://127.0.0.8:2380") == LEARNER
        assert runner.args()[-4:] == ["add", "b", "--peer-urls=http://127.0.0.8:2380", "--learner"]


class TestPromote:
    def test_passes_the_hex_id(self):
        client, runner = etcdctl(member_promote=(0, "{}", ""))
        client.member_promote(LEARNER_ID)
        assert runner.args()[-3:] == ["member", "promote", LEARNER_ID]

    def test_not_in_sync(self):
        client, _ = etcdctl(member_promote=(1, "", NOT_IN_SYNC))
        with pytest.raises(EtcdctlError) as caught:
            client.member_promote(LEARNER_ID)
        error = caught.value
        assert error.learner_not_in_sync
        assert not error.not_a_learner
        assert error.reason == (
            "etcdserver: can only promote a learner member which is in sync with leader"
        )

    def test_not_a_learner(self):
        client, _ = etcdctl(member_promote=(1, "", NOT_A_LEARNER))
        with pytest.raises(EtcdctlError) as caught:
            client.member_promote(VOTER_ID)
        error = caught.value
        assert error.not_a_learner
        assert not error.learner_not_in_sync
        assert error.reason == "etcdserver: can only promote a learner member"


class TestErrorReason:
    def test_last_error_line_wins_over_log_lines(self):
        stderr = (
            '{"level":"warn","ts":"2021-01-01T00:00:00Z","msg":"retrying of unary invoker"}\n'
            "Error: first\n"
            "Error: context deadline exceeded\n"
            '{"level":"warn","ts":"2021-01-01T00:00:01Z","msg":"closing client"}\n'
            "\n"
        )
        assert EtcdctlError(["x"], 1, stderr).reason == "context deadline exceeded"

    def test_without_error_line_the_last_line(self):
        assert EtcdctlError(["x"], 1, STATUS_FAILED).reason == STATUS_FAILED.strip()

    def test_without_output(self):
        assert EtcdctlError(["x"], 124, "  \n").reason == "no output"

    def test_keeps_the_call(self):
        error = EtcdctlError(["member", "list"], 2, "Error: boom", stdout="{}")
        assert error.args_used == ["member", "list"]
        assert error.stdout == "{}"
        assert str(error) == "etcdctl member list failed (2): boom"


class TestEndpointStatus:
    def test_parses_status(self):
        client, runner = etcdctl(endpoint_status=(0, ENDPOINT_STATUS, ""))
        [status] = client.endpoint_status(["http://127.0.0.9:2379"])
        assert status == EndpointStatus(
            endpoint="http://127.0.0.9:2379",
            member_id=VOTER_ID,
            leader_id=VOTER_ID,
            version="3.5.1",
            db_size=20480,
            db_size_in_use=16384,
            raft_term=2,
            raft_index=4,
            revision=1,
            is_learner=False,
        )
        assert "--endpoints=http://127.0.0.9:2379" in runner.args()

    def test_partial_failure_keeps_the_endpoints_that_answered(self):
        client, _ = etcdctl(endpoint_status=(1, ENDPOINT_STATUS, STATUS_FAILED))
        statuses = client.endpoint_status(ENDPOINTS)
        assert [s.endpoint for s in statuses] == ["http://127.0.0.9:2379"]

    def test_total_failure_is_empty(self):
        client, _ = etcdctl(endpoint_status=(1, "", STATUS_FAILED))
        assert client.endpoint_status(ENDPOINTS) == []

    def test_no_endpoints_runs_nothing(self):
        client, runner = etcdctl()
        assert client.endpoint_status([]) == []
        assert runner.calls == []


class TestView:
    def test_health_and_leader_come_from_status(self):
        client, runner = etcdctl(
            member_list=(0, MEMBER_LIST, ""),
            endpoint_status=(0, ENDPOINT_STATUS, ""),
        )
        view = client.view()
        assert view == ClusterView(
            cluster_id=CLUSTER_ID,
            members=(VOTER, LEARNER),
            healthy_ids=frozenset({VOTER_ID}),
            leader_id=VOTER_ID,
            raft_indexes=((VOTER_ID, 4),),
            releases=((VOTER_ID, "3.5.1"),),
        )
        assert view.healthy_voters == (VOTER,)
        # Only started members have client URLs to ask.
        assert "--endpoints=http://127.0.0.9:2379" in runner.args()

    def test_unanswered_status_leaves_no_healthy_member_and_no_leader(self):
        client, _ = etcdctl(
            member_list=(0, MEMBER_LIST, ""),
            endpoint_status=(1, "", STATUS_FAILED),
        )
        view = client.view()
        assert view.healthy_ids == frozenset()
        assert view.leader_id is None
        assert view.members == (VOTER, LEARNER)

    def test_leaderless_status_gives_no_leader(self):
        status = json.loads(ENDPOINT_STATUS)
        status[0]["Status"]["leader"] = 0
        client, _ = etcdctl(
            member_list=(0, MEMBER_LIST, ""),
            endpoint_status=(0, json.dumps(status), ""),
        )
        view = client.view()
        assert view.leader_id is None
        assert view.healthy_ids == frozenset({VOTER_ID})

    def test_member_list_failure_propagates(self):
        client, _ = etcdctl(member_list=(1, "", "Error: context deadline exceeded"))
        with pytest.raises(EtcdctlError):
            client.view()


@pytest.mark.parametrize(
    "raw, expected",
    [(0, "0"), (255, "ff"), ("17173570151544891923", VOTER_ID), (2**64 - 1, "f" * 16)],
)
def test_member_id_hex(raw, expected):
    assert member_id_hex(raw) == expected


# ---- actions' calls ------------------------------------------------------------------------------


def plain(argv: list[str]) -> bool:
    return "-w" not in argv and "json" not in argv


def command_timeout(argv: list[str]) -> str:
    [flag] = [a for a in argv if a.startswith("--command-timeout=")]
    return flag.split("=", 1)[1]


class TestEndpointStatusErrors:
    def test_alarms_reported_by_a_member_are_kept(self):
        status = json.loads(ENDPOINT_STATUS)
        status[0]["Status"]["errors"] = ["memberID:17173570151544891923 alarm:NOSPACE "]
        client, _ = etcdctl(endpoint_status=(0, json.dumps(status), ""))
        [parsed] = client.endpoint_status(["http://127.0.0.9:2379"])
        assert parsed.errors == ("memberID:17173570151544891923 alarm:NOSPACE ",)

    @pytest.mark.parametrize("errors", [None, []])
    def test_no_errors_is_empty(self, errors):
        status = json.loads(ENDPOINT_STATUS)
        if errors is not None:
            status[0]["Status"]["errors"] = errors
        client, _ = etcdctl(endpoint_status=(0, json.dumps(status), ""))
        [parsed] = client.endpoint_status(["http://127.0.0.9:2379"])
        assert parsed.errors == ()

    def test_learner_flag_is_read(self):
        status = json.loads(ENDPOINT_STATUS)
        status[0]["Status"]["isLearner"] = True
        client, _ = etcdctl(endpoint_status=(0, json.dumps(status), ""))
        [parsed] = client.endpoint_status(["http://127.0.0.9:2379"])
        assert parsed.is_learner


HEALTH = json.dumps(
    [
        {"endpoint": "http://a:2379", "health": True, "took": "1ms"},
        {"endpoint": "http://b:2379", "health": False, "error": "context deadline exceeded"},
    ]
)
HEALTH_FAILED = "Error: unhealthy cluster\n"


class TestEndpointHealth:
    @pytest.mark.parametrize("code, stderr", [(0, ""), (1, HEALTH_FAILED)], ids=["ok", "exit-1"])
    def test_each_endpoint_healthy_or_with_etcds_reason(self, code, stderr):
        client, _ = etcdctl(endpoint_health=(code, HEALTH, stderr))
        assert client.endpoint_health(["http://a:2379", "http://b:2379"]) == {
            "http://a:2379": "healthy",
            "http://b:2379": "context deadline exceeded",
        }

    def test_unhealthy_without_reason(self):
        out = json.dumps([{"endpoint": "http://b:2379", "health": False, "took": "3ms"}])
        client, _ = etcdctl(endpoint_health=(1, out, HEALTH_FAILED))
        assert client.endpoint_health(["http://b:2379"]) == {"http://b:2379": "unhealthy"}

    def test_failure_without_output_is_empty(self):
        client, _ = etcdctl(endpoint_health=(1, "", HEALTH_FAILED))
        assert client.endpoint_health(["http://a:2379"]) == {}

    def test_no_endpoints_runs_nothing(self):
        client, runner = etcdctl()
        assert client.endpoint_health([]) == {}
        assert runner.calls == []

    def test_argv_asks_the_given_endpoints_for_json_with_a_short_timeout(self):
        client, runner = etcdctl(endpoint_health=(0, HEALTH, ""))
        client.endpoint_health(["http://a:2379", "http://b:2379"])
        argv = runner.args()
        assert "--endpoints=http://a:2379,http://b:2379" in argv
        assert argv[argv.index("-w") + 1] == "json"
        assert argv[-2:] == ["endpoint", "health"]
        assert command_timeout(argv) == f"{STATUS_TIMEOUT * 2:g}s"


class TestSnapshotSave:
    def test_argv_from_one_endpoint_plain_with_its_own_timeout(self):
        client, runner = etcdctl(snapshot_save=(0, "Snapshot saved at /x/s.db\n", ""))
        client.snapshot_save("http://127.0.0.9:2379", "/var/lib/etcd/backups/.incoming/s.db", 600)
        argv, timeout = runner.calls[-1]
        assert argv[0] == ETCDCTL
        assert "--endpoints=http://127.0.0.9:2379" in argv
        assert argv[-3:] == ["snapshot", "save", "/var/lib/etcd/backups/.incoming/s.db"]
        assert plain(argv)
        assert command_timeout(argv) == "600s"
        assert timeout > 600

    def test_failure_raises(self):
        client, _ = etcdctl(snapshot_save=(1, "", "Error: context deadline exceeded\n"))
        with pytest.raises(EtcdctlError, match="snapshot save"):
            client.snapshot_save("http://127.0.0.9:2379", "/x/s.db", 60)


class TestCatchUp:
    def test_a_linearizable_get_through_the_one_member(self):
        client, runner = etcdctl(**{"get_etcd-k8s/catch-up": (0, "", "")})
        client.catch_up("http://127.0.0.9:2379")
        argv = runner.args()
        assert "--endpoints=http://127.0.0.9:2379" in argv
        assert argv[-2:] == ["get", "etcd-k8s/catch-up"]
        assert not any(a.startswith("--consistency") for a in argv)  # default: linearizable
        assert plain(argv)


class TestDefrag:
    def test_argv_one_endpoint_plain_with_its_own_timeout(self):
        client, runner = etcdctl(defrag=(0, "Finished defragmenting etcd member[x]\n", ""))
        client.defrag("http://127.0.0.7:2379", 120)
        argv, timeout = runner.calls[-1]
        assert "--endpoints=http://127.0.0.7:2379" in argv
        assert argv[-1] == "defrag"
        assert plain(argv)
        assert command_timeout(argv) == "120s"
        assert timeout > 120

    def test_failure_raises(self):
        client, _ = etcdctl(defrag=(1, "", "Error: context deadline exceeded\n"))
        with pytest.raises(EtcdctlError) as caught:
            client.defrag("http://127.0.0.7:2379", 5)
        assert caught.value.reason == "context deadline exceeded"


COMPACTED = "Error: etcdserver: mvcc: required revision has been compacted\n"
FUTURE = "Error: etcdserver: mvcc: required revision is a future revision\n"


class TestCompact:
    def test_argv_all_endpoints_physical_plain(self):
        client, runner = etcdctl(compact_42=(0, "compacted revision 42\n", ""))
        client.compact(42, 30)
        argv, timeout = runner.calls[-1]
        assert f"--endpoints={','.join(ENDPOINTS)}" in argv
        assert argv[-3:] == ["compact", "42", "--physical"]
        assert plain(argv)
        assert command_timeout(argv) == "30s"
        assert timeout > 30

    def test_already_compacted(self):
        client, _ = etcdctl(compact_42=(1, "", COMPACTED))
        with pytest.raises(EtcdctlError) as caught:
            client.compact(42, 30)
        assert caught.value.compacted
        assert not caught.value.future_revision
        assert caught.value.reason == "etcdserver: mvcc: required revision has been compacted"

    def test_future_revision(self):
        client, _ = etcdctl(compact_42=(1, "", FUTURE))
        with pytest.raises(EtcdctlError) as caught:
            client.compact(42, 30)
        assert caught.value.future_revision
        assert not caught.value.compacted


@pytest.mark.parametrize(
    "stderr, compacted",
    [
        (COMPACTED, True),
        ('{"level":"warn"}\n' + COMPACTED, True),
        (FUTURE, False),
        ("Error: context deadline exceeded\n", False),
        ("", False),
    ],
)
def test_error_compacted(stderr, compacted):
    assert EtcdctlError(["compact", "1"], 1, stderr).compacted is compacted


ALARM_HEADER = '{"cluster_id":10591977107130159861,"member_id":123,"revision":7,"raft_term":2}'


class TestAlarms:
    def test_lists_member_and_alarm_name(self):
        out = f'{{"header":{ALARM_HEADER},"alarms":[{{"memberID":123,"alarm":1}}]}}'
        client, runner = etcdctl(alarm_list=(0, out, ""))
        assert client.alarm_list() == [("7b", "NOSPACE")]
        argv = runner.args()
        assert argv[argv.index("-w") + 1] == "json"
        assert argv[-2:] == ["alarm", "list"]

    def test_several_and_unknown_alarms(self):
        alarms = [
            {"memberID": 17173570151544891923, "alarm": 2},
            {"memberID": 255, "alarm": 1},
            {"memberID": 1, "alarm": 9},
        ]
        out = json.dumps({"header": {}, "alarms": alarms})
        client, _ = etcdctl(alarm_list=(0, out, ""))
        assert client.alarm_list() == [
            (VOTER_ID, "CORRUPT"),
            ("ff", "NOSPACE"),
            ("1", "UNKNOWN"),
        ]

    @pytest.mark.parametrize(
        "out", ['{"header":{}}', '{"header":{},"alarms":[]}', '{"header":{},"alarms":null}']
    )
    def test_no_alarms(self, out):
        client, _ = etcdctl(alarm_list=(0, out, ""))
        assert client.alarm_list() == []

    def test_list_failure_raises(self):
        client, _ = etcdctl(alarm_list=(1, "", "Error: context deadline exceeded\n"))
        with pytest.raises(EtcdctlError):
            client.alarm_list()

    def test_disarm(self):
        client, runner = etcdctl(alarm_disarm=(0, '{"header":{}}', ""))
        client.alarm_disarm()
        argv = runner.args()
        assert argv[-2:] == ["alarm", "disarm"]
        assert f"--endpoints={','.join(ENDPOINTS)}" in argv

    def test_disarm_failure_raises(self):
        client, _ = etcdctl(alarm_disarm=(1, "", "Error: etcdserver: no leader\n"))
        with pytest.raises(EtcdctlError, match="alarm disarm"):
            client.alarm_disarm()


# ---- offline snapshot tool -----------------------------------------------------------------------

SNAPSHOT_STATUS = '{"hash":1,"revision":4,"totalKey":9,"totalSize":20480}'


class TestSnapshotTool:
    @pytest.mark.parametrize(
        "version, binary",
        [((3, 4), "etcdctl"), ((3, 5), "etcdutl"), ((3, 6), "etcdutl"), ((4, 0), "etcdutl")],
    )
    def test_picks_etcdutl_from_3_5_on(self, version, binary):
        runner = FakeRunner(snapshot_status=(0, SNAPSHOT_STATUS, ""))
        tool = SnapshotTool(runner, version)
        assert tool.binary == binary
        tool.status("/x/s.db")
        assert runner.args()[0] == {"etcdctl": ETCDCTL, "etcdutl": ETCDUTL}[binary]

    def test_status_parses_json(self):
        runner = FakeRunner(snapshot_status=(0, SNAPSHOT_STATUS, ""))
        status = SnapshotTool(runner, (3, 5)).status("/var/lib/etcd/backups/s.db", timeout=30)
        assert status == SnapshotStatus(hash=1, revision=4, total_keys=9, total_size=20480)
        argv, timeout = runner.calls[-1]
        assert argv == [ETCDUTL, "snapshot", "status", "-w", "json", "/var/lib/etcd/backups/s.db"]
        assert timeout == 30

    def test_status_failure_raises_with_the_reason(self):
        runner = FakeRunner(
            snapshot_status=(2, "", "Error: snapshot file integrity check failed\n")
        )
        with pytest.raises(EtcdctlError) as caught:
            SnapshotTool(runner, (3, 5)).status("/x/s.db")
        assert caught.value.exit_code == 2
        assert caught.value.reason == "snapshot file integrity check failed"

    def test_status_of_a_crash_raises(self):
        runner = FakeRunner(snapshot_status=(2, "", "panic: runtime error\ngoroutine 1\n"))
        with pytest.raises(EtcdctlError):
            SnapshotTool(runner, (3, 4)).status("/x/s.db")

    def test_restore_passes_the_new_member_flags(self):
        runner = FakeRunner(snapshot_restore=(0, "", "restored snapshot\n"))
        SnapshotTool(runner, (3, 6)).restore(
            "/var/lib/etcd/backups/s.db",
            data_dir="/var/lib/etcd/restore",
            name="etcd-k8s-0",
            initial_cluster="etcd-k8s-0=http://e0:2380",
            peer_url="http://e0:2380",
            token="etcd-k8s-abc",
            timeout=90,
        )
        argv, timeout = runner.calls[-1]
        assert argv == [
            ETCDUTL,
            "snapshot",
            "restore",
            "/var/lib/etcd/backups/s.db",
            "--data-dir=/var/lib/etcd/restore",
            "--name=etcd-k8s-0",
            "--initial-cluster=etcd-k8s-0=http://e0:2380",
            "--initial-advertise-peer-urls=http://e0:2380",
            "--initial-cluster-token=etcd-k8s-abc",
        ]
        assert timeout == 90

    def test_restore_with_etcdctl_on_3_4(self):
        runner = FakeRunner(snapshot_restore=(0, "", ""))
        SnapshotTool(runner, (3, 4)).restore(
            "/s.db", "/d", "n", "n=http://p:2380", "http://p:2380", "t"
        )
        argv, timeout = runner.calls[-1]
        assert argv[0] == ETCDCTL
        assert argv[1:4] == ["snapshot", "restore", "/s.db"]
        assert timeout == 600.0

    def test_restore_failure_raises(self):
        runner = FakeRunner(snapshot_restore=(1, "", "Error: expected sha256 [...], got [...]\n"))
        with pytest.raises(EtcdctlError, match="snapshot restore"):
            SnapshotTool(runner, (3, 5)).restore(
                "/s.db", "/d", "n", "n=http://p:2380", "http://p", "t"
            )
