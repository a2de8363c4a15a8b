"""What etcd-k8s writes on an etcd-client relation, field by field, as the requirers read it:
data_interfaces' v0 EtcdRequires (status as a JSON list of {code, message, resolution}, fields
asked for as secrets in their secret group, endpoints as host:port and uris as URLs) and the v1
`requests` contract of dpcharmlibs-interfaces (one response and one pair of secrets per
request, `data` keyed by request id, `status` as in v0)."""

from __future__ import annotations

import json
from typing import Any

import ops
import pytest
from ops import testing

from core import clients
from relations.etcd_client import ClientRelations, Served

SERVERS = (
    "https://etcd-k8s-0.etcd-k8s-endpoints.m.svc.cluster.local:2379",
    "https://etcd-k8s-1.etcd-k8s-endpoints.m.svc.cluster.local:2379",
)
SERVED = Served(
    SERVERS, "3.5.1", "client-a", "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
)
# What data_interfaces' EtcdRequires (LIBPATCH 59) asks for as secrets, as it writes it.
DATA_INTERFACES_REQUESTED = [
    "username",
    "password",
    "tls",
    "tls-ca",
    "uris",
    "read-only-uris",
    "entity-name",
    "entity-password",
]


class _Provider(ops.CharmBase):
    answers: dict[str, Any] = {}

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.update_status, self._answer)

    def _answer(self, _: ops.EventBase) -> None:
        relations = ClientRelations(self)
        for relation in relations.relations():
            relations.answer(relation, _Provider.answers)


def answer(remote: dict[str, str], answers: dict[str, Any], local: dict[str, str] | None = None):
    """Run the provider on one relation: its app databag and the secrets it made."""
    _Provider.answers = answers
    ctx = testing.Context(
        _Provider,
        meta={"name": "etcd-k8s", "provides": {"etcd-client": {"interface": "etcd_client"}}},
    )
    relation = testing.Relation(
        "etcd-client",
        id=30,
        remote_app_name="client-x",
        remote_app_data=remote,
        local_app_data=local or {},
    )
    out = ctx.run(ctx.on.update_status(), testing.State(leader=True, relations={relation}))
    secrets = {s.id: s for s in out.secrets}
    return dict(out.get_relation(30).local_app_data), secrets


def content(secrets: dict[str, testing.Secret], uri: str) -> dict[str, str]:
    secret = secrets[uri]
    assert secret.remote_grants == {30: {"client-x"}}, "not granted to the relation"
    return dict(secret.latest_content or {})


# ---- v0 -------------------------------------------------------------------------------------


def test_v0_served_as_data_interfaces_reads_it() -> None:
    requested = json.dumps(DATA_INTERFACES_REQUESTED)
    data, secrets = answer({"prefix": "/a/", "requested-secrets": requested}, {"30": SERVED})
    assert set(data) == {"endpoints", "version", "secret-user", "secret-tls"}
    assert data["endpoints"] == ",".join(s.removeprefix("https://") for s in SERVERS)
    assert all(":" in e and "://" not in e for e in data["endpoints"].split(","))
    assert data["version"] == "3.5.1"
    assert content(secrets, data["secret-user"]) == {
        "username": "client-a",
        "uris": ",".join(SERVERS),
    }
    assert content(secrets, data["secret-tls"]) == {"tls": "true", "tls-ca": SERVED.tls_ca}


def test_v0_fields_not_asked_for_as_secrets_travel_in_clear() -> None:
    """Our own library before LIBPATCH 2 asked for username and tls-ca only."""
    asked = json.dumps(["username", "tls-ca"])
    data, secrets = answer({"prefix": "/a/", "requested-secrets": asked}, {"30": SERVED})
    assert data["uris"] == ",".join(SERVERS) and data["tls"] == "true"
    assert content(secrets, data["secret-user"]) == {"username": "client-a"}
    assert content(secrets, data["secret-tls"]) == {"tls-ca": SERVED.tls_ca}
    # A requirer that asks for nothing still gets user and CA in secrets (the schema's).
    data, secrets = answer({"prefix": "/a/"}, {"30": SERVED})
    assert content(secrets, data["secret-user"]) == {"username": "client-a"}


@pytest.mark.parametrize("code", sorted(clients.STATUSES))
def test_v0_every_status_is_a_json_list_of_code_message_resolution(code: int) -> None:
    said = clients.status(code, "detail")
    stale = {"endpoints": "x:2379", "secret-user": "secret:old", "uris": "https://x:2379"}
    data, _ = answer({"prefix": "/a/"}, {"30": said}, local=stale)
    assert list(data) == ["status"], "credentials and endpoints are withdrawn"
    statuses = json.loads(data["status"])  # as data_interfaces reads it: json.loads(... "[]")
    assert statuses == [{"code": code, "message": said.message, "resolution": said.resolution}]
    assert isinstance(statuses[0]["code"], int) and statuses[0]["resolution"]
    assert (code >= 5000) == said.refused


def test_v0_status_goes_once_served() -> None:
    data, _ = answer(
        {"prefix": "/a/"}, {"30": SERVED}, local={"status": json.dumps([{"code": 4003}])}
    )
    assert "status" not in data


# ---- v1 -------------------------------------------------------------------------------------


def v1_requests(*entries: dict[str, str]) -> dict[str, str]:
    return {"version": "v1", "requests": json.dumps(list(entries))}


def v1_request(rid: str, prefix: str) -> dict[str, str]:
    return {"resource": prefix, "request-id": rid, "salt": f"salt-{rid}"}


def test_v1_one_response_and_one_pair_of_secrets_per_request() -> None:
    remote = v1_requests(v1_request("aaaa", "/a/"), v1_request("bbbb", "/b/"))
    served_b = Served(SERVERS, "3.5.1", "client-b", SERVED.tls_ca)
    data, secrets = answer(remote, {"30/aaaa": SERVED, "30/bbbb": served_b})
    assert data["version"] == "v1" and "status" not in data
    responses = {r["request-id"]: r for r in json.loads(data["requests"])}
    assert set(responses) == {"aaaa", "bbbb"}
    for rid, user, prefix in (("aaaa", "client-a", "/a/"), ("bbbb", "client-b", "/b/")):
        response = responses[rid]
        assert (response["resource"], response["salt"]) == (prefix, f"salt-{rid}")
        assert response["version"] == "3.5.1" and "://" not in response["endpoints"]
        assert content(secrets, response["secret-user"]) == {
            "username": user,
            "uris": ",".join(SERVERS),
        }
        assert content(secrets, response["secret-tls"]) == {"tls": "true", "tls-ca": SERVED.tls_ca}
    assert responses["aaaa"]["secret-user"] != responses["bbbb"]["secret-user"]
    stored = json.loads(data["data"])
    assert set(stored) == {"aaaa", "bbbb", "status"}  # every response's id, or the client fails
    assert stored["aaaa"] == v1_request("aaaa", "/a/")


def test_v1_a_refused_request_keeps_its_response_and_raises_a_status() -> None:
    remote = v1_requests(v1_request("aaaa", "/a/"), v1_request("bbbb", "/"))
    refusal = clients.status(5002, "'/'")
    data, _ = answer(remote, {"30/aaaa": SERVED, "30/bbbb": refusal})
    responses = {r["request-id"]: r for r in json.loads(data["requests"])}
    assert set(responses["bbbb"]) == {"resource", "request-id", "salt"}  # echoed, not served
    assert json.loads(data["status"]) == [refusal.as_dict()]
    # data["status"] holds what the client saw before this change (nothing): it is raised.
    assert json.loads(data["data"])["status"] == {}
    # Written again unchanged: now the client has seen it, so it is not raised once more.
    again, _ = answer(remote, {"30/aaaa": SERVED, "30/bbbb": refusal}, local=data)
    assert json.loads(again["data"])["status"] == {"5002": refusal.as_dict()}
