"""The etcdctl adapter, fed output captured from etcdctl 3.5.1 `-w json`."""

from __future__ import annotations

import json

import pytest

from etcdctl import ETCDCTL, LIST_TIMEOUT, EndpointStatus, Etcdctl, EtcdctlError, member_id_hex
from membership import ClusterView, Member

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

    def __call__(self, argv: list[str], timeout: float) -> tuple[int, str, str]:
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
