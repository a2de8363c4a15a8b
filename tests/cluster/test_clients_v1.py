"""Client relations of the v1 protocol on real etcd, with a requirer nobody here wrote
(dpcharmlibs-interfaces' ResourceRequirerEventHandler, tests/bench/client_v1_charm.py): one
relation, several requests, each served with its own user and secrets, each reaching its own
prefix and nothing else; a refused request is seen as the library reports it (status_raised
with its code) and leaves the others served."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import grpc
import pytest

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
import etcd3  # noqa: E402

from tests.bench.ca import Identity, self_signed_client  # noqa: E402
from tests.bench.checks import assert_formed  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402

DENIED = (grpc.RpcError, etcd3.exceptions.Etcd3Exception)


def report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {"responses": {}, "statuses": []}


def connect(j: Juju, ident: Identity, ca: str, unit: str) -> Any:
    ident.ca.write_text(ca)
    return etcd3.client(
        host=j.address(unit),
        port=2379,
        ca_cert=str(ident.ca),
        cert_key=str(ident.key),
        cert_cert=str(ident.cert),
        timeout=5,
    )


def test_v1_requests_are_served_each_on_its_own(bench: Juju) -> None:
    j = bench
    j.deploy(3, leader=0)
    j.settle()
    j.relate_certificates("client-certificates")
    j.settle()
    work = Path(j.workdir) / "v1"
    j.client_identity = j.provider.authority.client_identity(work / "root", "root")
    ids = {cn: self_signed_client(work, cn) for cn in ("v1-a", "v1-b", "v1-c")}
    path = work / "report.json"
    j.relate_v1_client(
        "v1-client",
        [
            ("/v1-a/", ids["v1-a"].cert.read_text()),
            ("/v1-b/", ids["v1-b"].cert.read_text()),
            ("/", ids["v1-c"].cert.read_text()),  # the whole keyspace: refused
        ],
        path,
    )
    j.settle()
    assert_formed(j, 3)
    got = report(path)
    assert set(got["responses"]) == {"/v1-a/", "/v1-b/"}, got
    for prefix, cn in (("/v1-a/", "v1-a"), ("/v1-b/", "v1-b")):
        response = got["responses"][prefix]
        assert response["event"] == "ResourceCreatedEvent"
        assert response["username"] == cn
        assert response["version"].startswith(j.version)
        uris = response["uris"].split(",")
        assert len(uris) == 3 and all(u.startswith("https://") for u in uris), uris
        assert all("://" not in e for e in response["endpoints"].split(","))
        for unit in j.units:
            client = connect(j, ids[cn], response["tls-ca"], unit)
            client.put(f"{prefix}from-{unit}", "mine")
            assert client.get(f"{prefix}from-{unit}")[0] == b"mine"
            other = "/v1-b/" if prefix == "/v1-a/" else "/v1-a/"
            with pytest.raises(DENIED):
                client.get(f"{other}x")
            with pytest.raises(DENIED):
                client.put("/outside/x", "no")
            client.close()
    # As the library reports them: the refusal raised and never resolved; what waited on the
    # way (the trust roll) raised, then resolved.
    events = [(s["event"], s["code"]) for s in got["statuses"]]
    active: dict[int, dict[str, Any]] = {}
    for said in got["statuses"]:
        if said["event"] == "StatusRaisedEvent":
            active[said["code"]] = said
        else:
            assert said["event"] == "StatusResolvedEvent" and said["code"] in active, events
            del active[said["code"]]
    assert list(active) == [5002], events
    assert "whole keyspace" in active[5002]["message"] and active[5002]["resolution"]
    assert "v1-client (relation 30/" in str(j.app_status), j.app_status
    assert not j.failures(), j.failures()
