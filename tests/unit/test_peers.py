"""Peer relation databags: typed reads that never trust garbage, and writes."""

from __future__ import annotations

import dataclasses
import json
import logging

import pydantic
import pytest

from core.model import AppState, JoinTicket, RebuildRecord, RestoreRecord, UnitInfo
from state import peer_models as peers

ME = UnitInfo(
    unit="etcd-k8s/3",
    member_name="etcd-k8s-3",
    peer_url="http://etcd-k8s-3.etcd-k8s-endpoints.m.svc.cluster.local:2380",
    client_url="http://etcd-k8s-3.etcd-k8s-endpoints.m.svc.cluster.local:2379",
    member_id="86a8f6c2b1e3d4f0",
)

TICKET = JoinTicket(
    member_name="etcd-k8s-3",
    member_id="86a8f6c2b1e3d4f0",
    peer_url=ME.peer_url,
    initial_cluster=f"etcd-k8s-0=http://e0:2380,etcd-k8s-3={ME.peer_url}",
)


def good_unit_bag() -> dict[str, str]:
    return {
        "member-name": ME.member_name,
        "peer-url": ME.peer_url,
        "client-url": ME.client_url,
        "member-id": ME.member_id,
    }


def warnings(caplog) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "state.peer_models" and r.levelno == logging.WARNING
    ]


class TestUnit:
    @pytest.mark.parametrize("member_id", ["86a8f6c2b1e3d4f0", None])
    def test_write_then_read_roundtrips(self, member_id):
        info = UnitInfo(ME.unit, ME.member_name, ME.peer_url, ME.client_url, member_id)
        bag: dict[str, str] = {}
        peers.write_unit(bag, info)
        assert peers.read_unit(ME.unit, bag) == info

    def test_write_uses_the_documented_keys(self):
        bag: dict[str, str] = {}
        peers.write_unit(bag, ME)
        assert bag == good_unit_bag()

    def test_write_without_member_id_leaves_it_out(self):
        bag: dict[str, str] = {}
        peers.write_unit(bag, UnitInfo(ME.unit, ME.member_name, ME.peer_url, ME.client_url))
        assert "member-id" not in bag

    def test_write_clears_a_member_id_that_is_gone(self):
        bag = good_unit_bag()
        peers.write_unit(bag, UnitInfo(ME.unit, ME.member_name, ME.peer_url, ME.client_url))
        assert bag["member-id"] == ""  # "" deletes the key in ops

    def test_write_touches_only_changed_keys(self):
        class Recording(dict):
            def __init__(self, *args):
                super().__init__(*args)
                self.written: list[str] = []

            def __setitem__(self, key, value):
                self.written.append(key)
                super().__setitem__(key, value)

        bag = Recording(good_unit_bag())
        peers.write_unit(bag, ME)
        assert bag.written == []
        peers.write_unit(bag, UnitInfo(ME.unit, ME.member_name, ME.peer_url, "http://x:2379", "ab"))
        assert bag.written == ["client-url", "member-id"]

    def test_unit_that_has_not_introduced_itself_is_absent_quietly(self, caplog):
        caplog.set_level(logging.WARNING)
        assert peers.read_unit("etcd-k8s/1", {}) is None
        assert peers.read_unit("etcd-k8s/1", {"member-name": "", "peer-url": "x"}) is None
        assert warnings(caplog) == []

    def test_ops_deleted_member_id_reads_as_none(self):
        bag = good_unit_bag()
        del bag["member-id"]
        info = peers.read_unit(ME.unit, bag)
        assert info is not None and info.member_id is None

    def test_extra_keys_are_ignored(self):
        bag = {**good_unit_bag(), "ingress-address": "10.1.2.3"}
        assert peers.read_unit(ME.unit, bag) == ME

    @pytest.mark.parametrize(
        "changes, field",
        [
            ({"peer-url": "etcd-k8s-3:2380"}, "peer-url"),
            ({"client-url": "ftp://etcd-k8s-3:2379"}, "client-url"),
            ({"member-id": "not-hex"}, "member-id"),
            ({"member-id": "86A8F6C2B1E3D4F0"}, "member-id"),
            ({"member-id": "1" * 17}, "member-id"),
            ({"member-name": "Etcd_K8s/3"}, "member-name"),
            ({"peer-url": None}, "peer-url"),
            ({"client-url": None}, "client-url"),
        ],
        ids=[
            "peer-url-not-http",
            "client-url-ftp",
            "member-id-not-hex",
            "member-id-upper-case",
            "member-id-too-long",
            "bad-member-name",
            "missing-peer-url",
            "missing-client-url",
        ],
    )
    def test_garbage_is_absent_and_logged(self, caplog, changes, field):
        bag = good_unit_bag()
        for key, value in changes.items():
            if value is None:
                del bag[key]
            else:
                bag[key] = value
        with caplog.at_level(logging.WARNING, logger="state.peer_models"):
            assert peers.read_unit("etcd-k8s/3", bag) is None
        [record] = warnings(caplog)
        assert "etcd-k8s/3" in record.getMessage()
        assert field in record.getMessage()


class TestApp:
    def test_empty_bag_is_a_fresh_app(self):
        assert peers.read_app({}) == AppState()

    def test_empty_values_read_as_none(self):
        bag = {"cluster-token": "", "bootstrap-member": "", "cluster-id": "", "join": ""}
        assert peers.read_app(bag) == AppState()

    def test_reads_every_field(self):
        bag = {"cluster-token": "tok", "bootstrap-member": "etcd-k8s-0", "cluster-id": "abc"}
        peers.write_ticket(bag, TICKET)
        assert peers.read_app(bag) == AppState(
            cluster_token="tok", bootstrap_member="etcd-k8s-0", cluster_id="abc", join=TICKET
        )

    def test_ticket_roundtrips(self):
        bag: dict[str, str] = {}
        peers.write_ticket(bag, TICKET)
        assert peers.read_app(bag).join == TICKET

    def test_ticket_is_json_with_dashed_keys(self):
        bag: dict[str, str] = {}
        peers.write_ticket(bag, TICKET)
        assert json.loads(bag["join"]) == {
            "member-name": TICKET.member_name,
            "member-id": TICKET.member_id,
            "peer-url": TICKET.peer_url,
            "initial-cluster": TICKET.initial_cluster,
        }

    def test_writing_no_ticket_empties_it(self):
        bag: dict[str, str] = {}
        peers.write_ticket(bag, TICKET)
        peers.write_ticket(bag, None)
        assert bag["join"] == ""
        assert peers.read_app(bag).join is None

    @pytest.mark.parametrize(
        "raw",
        [
            "{not json",
            "null",
            "[]",
            '"a string"',
            json.dumps({"member-name": "etcd-k8s-3"}),
            json.dumps(
                {
                    "member-name": "etcd-k8s-3",
                    "member-id": "zz",
                    "peer-url": ME.peer_url,
                    "initial-cluster": "a=b",
                }
            ),
            json.dumps(
                {
                    "member-name": "etcd-k8s-3",
                    "member-id": "abc",
                    "peer-url": "etcd-k8s-3:2380",
                    "initial-cluster": "a=http://b",
                }
            ),
            json.dumps(
                {
                    "member-name": "etcd-k8s-3",
                    "member-id": "abc",
                    "peer-url": ME.peer_url,
                    "initial-cluster": "",
                }
            ),
        ],
        ids=[
            "not-json",
            "null",
            "list",
            "string",
            "missing-keys",
            "bad-member-id",
            "bad-peer-url",
            "empty-initial-cluster",
        ],
    )
    def test_garbage_ticket_reads_as_none_and_is_logged(self, caplog, raw):
        bag = {"cluster-token": "tok", "cluster-id": "abc", "join": raw}
        with caplog.at_level(logging.WARNING, logger="state.peer_models"):
            app = peers.read_app(bag)
        assert app.join is None
        assert app.cluster_token == "tok" and app.cluster_id == "abc"  # the rest still reads
        [record] = warnings(caplog)
        assert "join ticket" in record.getMessage()


RECORD = RestoreRecord(
    id="0123456789abcdef",
    snapshot="nightly-2024.01.01",
    superseded="92fe430f6b9012f5",
    cluster_id="ee54c7103815aa13",
    seed="etcd-k8s-0",
)


def good_restore() -> dict[str, str]:
    return {
        "id": RECORD.id,
        "snapshot": RECORD.snapshot,
        "superseded": RECORD.superseded,
        "cluster-id": RECORD.cluster_id,
        "seed": RECORD.seed,
    }


class TestRestoreRecord:
    def test_write_then_read_roundtrips(self):
        bag: dict[str, str] = {}
        peers.write_restore(bag, RECORD)
        assert peers.read_app(bag).restore == RECORD

    def test_is_json_with_dashed_keys(self):
        bag: dict[str, str] = {}
        peers.write_restore(bag, RECORD)
        assert json.loads(bag["restore"]) == good_restore()
        assert list(bag) == ["restore"]

    def test_reads_beside_the_other_fields(self):
        bag = {
            "cluster-token": "tok",
            "cluster-id": RECORD.cluster_id,
            "restart-turn": "etcd-k8s-2",
        }
        peers.write_ticket(bag, TICKET)
        peers.write_restore(bag, RECORD)
        assert peers.read_app(bag) == AppState(
            cluster_token="tok",
            cluster_id=RECORD.cluster_id,
            join=TICKET,
            restart_turn="etcd-k8s-2",
            restore=RECORD,
        )

    def test_absent_or_empty_is_none_quietly(self, caplog):
        with caplog.at_level(logging.WARNING, logger="state.peer_models"):
            assert peers.read_app({}).restore is None
            assert peers.read_app({"restore": ""}).restore is None
        assert warnings(caplog) == []

    def test_rewrite_replaces_the_previous_record(self):
        bag: dict[str, str] = {}
        peers.write_restore(bag, RECORD)
        later = RestoreRecord("fedcba9876543210", "later", RECORD.cluster_id, "abc", "etcd-k8s-1")
        peers.write_restore(bag, later)
        assert peers.read_app(bag).restore == later

    def test_extra_keys_are_ignored(self):
        bag = {"restore": json.dumps({**good_restore(), "taken-by": "admin"})}
        assert peers.read_app(bag).restore == RECORD

    @pytest.mark.parametrize(
        "changes",
        [
            {"id": "0123abc"},  # too short
            {"id": "0" * 33},  # too long
            {"id": "0123ABCD"},
            {"id": "not-hex!"},
            {"snapshot": ""},
            {"superseded": "xyz"},
            {"cluster_id": "1" * 17},
            {"seed": "Etcd_K8s/0"},
        ],
        ids=[
            "short-id",
            "long-id",
            "upper-id",
            "non-hex-id",
            "empty-snapshot",
            "bad-superseded",
            "long-cluster-id",
            "bad-seed",
        ],
    )
    def test_writing_an_invalid_record_raises(self, changes):
        record = dataclasses.replace(RECORD, **changes)
        bag: dict[str, str] = {}
        with pytest.raises(pydantic.ValidationError):
            peers.write_restore(bag, record)
        assert bag == {}

    @pytest.mark.parametrize(
        "raw",
        [
            "{not json",
            "null",
            "[]",
            '"a string"',
            "42",
            json.dumps({**good_restore(), "id": "zz"}),
            json.dumps({**good_restore(), "id": "abc"}),
            json.dumps({**good_restore(), "superseded": "NOT-HEX"}),
            json.dumps({**good_restore(), "cluster-id": ""}),
            json.dumps({**good_restore(), "cluster-id": 123}),
            json.dumps({**good_restore(), "seed": "../etc"}),
            json.dumps({**good_restore(), "snapshot": ""}),
            json.dumps({k: v for k, v in good_restore().items() if k != "seed"}),
            json.dumps({k: v for k, v in good_restore().items() if k != "cluster-id"}),
            json.dumps({"id": RECORD.id}),
            json.dumps({}),
        ],
        ids=[
            "not-json",
            "null",
            "list",
            "string",
            "number",
            "bad-id",
            "short-id",
            "bad-superseded",
            "empty-cluster-id",
            "int-cluster-id",
            "bad-seed",
            "empty-snapshot",
            "missing-seed",
            "missing-cluster-id",
            "only-id",
            "empty-object",
        ],
    )
    def test_garbage_reads_as_none_and_is_logged(self, caplog, raw):
        bag = {"cluster-token": "tok", "cluster-id": "abc", "restore": raw}
        peers.write_ticket(bag, TICKET)
        with caplog.at_level(logging.WARNING, logger="state.peer_models"):
            app = peers.read_app(bag)
        assert app.restore is None
        assert app.cluster_token == "tok" and app.cluster_id == "abc"  # the rest still reads
        assert app.join == TICKET
        [record] = warnings(caplog)
        assert "restore record" in record.getMessage()


class TestMemberStateAndRebuild:
    def test_member_state_roundtrips(self):
        info = dataclasses.replace(ME, member_state="serving")
        bag: dict[str, str] = {}
        peers.write_unit(bag, info)
        assert bag["member-state"] == "serving"
        assert peers.read_unit(ME.unit, bag) == info

    def test_unknown_member_state_makes_the_unit_data_garbage(self, caplog):
        bag = {**good_unit_bag(), "member-state": "cheerful"}
        assert peers.read_unit(ME.unit, bag) is None
        assert "member-state" in warnings(caplog)[0].getMessage()

    def test_rebuild_record_roundtrips(self):
        record = RebuildRecord("a0", "c1", 42, ("b1", "b2"))
        bag = good_unit_bag()
        peers.write_rebuild(bag, record)
        assert json.loads(bag["rebuild"]) == {
            "member-id": "a0",
            "cluster-id": "c1",
            "raft-index": 42,
            "dropped": ["b1", "b2"],
        }
        assert peers.read_unit(ME.unit, bag).rebuild == record

    @pytest.mark.parametrize(
        "raw",
        [
            "{",
            "[]",
            '{"member-id": "a0"}',
            '{"member-id": "zz", "cluster-id": "c1", "raft-index": 1}',
            '{"member-id": "a0", "cluster-id": "c1", "raft-index": -1}',
        ],
    )
    def test_garbage_rebuild_record_is_ignored_and_logged(self, caplog, raw):
        unit = peers.read_unit(ME.unit, {**good_unit_bag(), "rebuild": raw})
        assert unit is not None and unit.rebuild is None
        assert "rebuild record" in warnings(caplog)[0].getMessage()
