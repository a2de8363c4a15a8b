"""The client charm library (requirer side of `etcd_client`), with ops.testing and a tiny charm.

No etcd here: etcd3 is replaced by a fake module where a client is built.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import sys
import types
from typing import Any

import ops
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ops import testing

from charms.etcd_k8s.v0.etcd_client import (  # "lib" is on pytest's pythonpath (pyproject)
    EtcdClientChangedEvent,
    EtcdClientGoneEvent,
    EtcdClientRequires,
    EtcdConnection,
)

PREFIX = "/client-a/"
ENDPOINTS = (
    "https://etcd-k8s-0.etcd-k8s-endpoints.m.svc.cluster.local:2379",
    "https://etcd-k8s-1.etcd-k8s-endpoints.m.svc.cluster.local:2379",
)
META = {"name": "client-a", "requires": {"etcd": {"interface": "etcd_client"}}}
CONFIG = {"options": {"cert": {"type": "string", "default": ""}}}


def leaf_pem(cn: str = "client-a") -> str:
    """A self-signed leaf certificate: what a client charm would hand over."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


PEM = leaf_pem()
CA_PEM = leaf_pem("etcd-ca")  # any PEM will do: the library passes it through


# What the charm saw on each `changed`/`gone`: (event, connection, provider status).
seen: list[tuple[str, EtcdConnection | None, str | None]] = []


class ClientCharm(ops.CharmBase):
    """Hands its certificate over on config-changed (leader); records what etcd-k8s serves."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.etcd = EtcdClientRequires(self, "etcd", prefix=PREFIX)
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.on.install, self._on_install)
        framework.observe(self.etcd.on.changed, self._on_changed)
        framework.observe(self.etcd.on.gone, self._on_gone)

    def _on_config_changed(self, _event: ops.ConfigChangedEvent) -> None:
        if self.unit.is_leader() and self.config["cert"]:
            self.etcd.set_certificate(str(self.config["cert"]))

    def _on_install(self, _event: ops.InstallEvent) -> None:
        # Careless on purpose: does not check leadership.
        self.etcd.set_certificate(str(self.config["cert"]))

    def _on_changed(self, event: EtcdClientChangedEvent) -> None:
        seen.append(("changed", self.etcd.connection(event.relation), self.etcd.provider_status()))

    def _on_gone(self, event: EtcdClientGoneEvent) -> None:
        seen.append(("gone", None, None))


@pytest.fixture(autouse=True)
def _clear_seen():
    seen.clear()


@pytest.fixture
def ctx() -> testing.Context[ClientCharm]:
    return testing.Context(ClientCharm, meta=META, config=CONFIG)


def etcd_relation(**remote_app_data: str) -> testing.Relation:
    return testing.Relation("etcd", remote_app_name="etcd-k8s", remote_app_data=remote_app_data)


def provider_secrets() -> tuple[testing.Secret, testing.Secret]:
    """The provider's user and CA secrets, as granted to this charm (what etcd-k8s sends since
    LIBPATCH 2: uris in the user secret, as data_interfaces asks for them)."""
    user = testing.Secret({"username": "client-a", "uris": ",".join(ENDPOINTS)})
    return user, testing.Secret({"tls": "true", "tls-ca": CA_PEM})


def served(user: testing.Secret, tls: testing.Secret, **extra: str) -> dict[str, str]:
    return {
        "endpoints": ",".join(e.removeprefix("https://") for e in ENDPOINTS),  # host:port
        "version": "3.5.1",
        "secret-user": user.id,
        "secret-tls": tls.id,
        **extra,
    }


def mtls_secrets(state: testing.State) -> list[testing.Secret]:
    return [s for s in state.secrets if s.label and s.label.endswith("-mtls")]


# --- what the requirer publishes ---------------------------------------------------------------


def test_leader_publishes_request_and_certificate(ctx):
    rel = etcd_relation()
    state = testing.State(leader=True, relations={rel}, config={"cert": PEM})

    state = ctx.run(ctx.on.config_changed(), state)
    state = ctx.run(ctx.on.relation_changed(state.get_relation(rel.id)), state)

    data = state.get_relation(rel.id).local_app_data
    assert data["prefix"] == PREFIX
    assert json.loads(data["requested-secrets"]) == ["username", "uris", "tls", "tls-ca"]
    assert json.loads(data["provided-secrets"]) == ["mtls-cert"]
    [secret] = mtls_secrets(state)
    assert data["secret-mtls"] == secret.id
    assert secret.owner == "app"
    assert secret.label == f"etcd-{rel.id}-mtls"
    assert secret.latest_content == {"mtls-cert": PEM}
    assert secret.remote_grants == {rel.id: {"etcd-k8s"}}


def test_certificate_reaches_a_relation_created_later(ctx):
    """set_certificate before the relation exists: the library publishes it on relation-created."""
    state = ctx.run(ctx.on.config_changed(), testing.State(leader=True, config={"cert": PEM}))
    assert not mtls_secrets(state)

    rel = etcd_relation()
    state = ctx.run(ctx.on.relation_created(rel), dataclasses.replace(state, relations={rel}))

    [secret] = mtls_secrets(state)
    assert secret.latest_content == {"mtls-cert": PEM}
    assert secret.remote_grants == {rel.id: {"etcd-k8s"}}
    data = state.get_relation(rel.id).local_app_data
    assert data["secret-mtls"] == secret.id
    assert data["prefix"] == PREFIX


def test_non_leader_writes_nothing(ctx):
    rel = etcd_relation()
    state = testing.State(leader=False, relations={rel}, config={"cert": PEM})

    state = ctx.run(ctx.on.relation_created(rel), state)
    state = ctx.run(ctx.on.relation_changed(state.get_relation(rel.id)), state)
    state = ctx.run(ctx.on.config_changed(), state)

    assert state.get_relation(rel.id).local_app_data == {}
    assert not state.secrets
    assert [kind for kind, _, _ in seen] == ["changed", "changed"]  # still told, to read


def test_set_certificate_refuses_on_a_non_leader(ctx):
    state = testing.State(leader=False, relations={etcd_relation()}, config={"cert": PEM})
    with pytest.raises(testing.errors.UncaughtCharmError) as raised:
        ctx.run(ctx.on.install(), state)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert "only the leader" in str(raised.value.__cause__)


def test_new_certificate_updates_the_same_secret(ctx, caplog):
    rel = etcd_relation()
    state = testing.State(leader=True, relations={rel}, config={"cert": PEM})
    state = ctx.run(ctx.on.config_changed(), state)
    [first] = mtls_secrets(state)

    renewed = leaf_pem()
    state = ctx.run(ctx.on.config_changed(), dataclasses.replace(state, config={"cert": renewed}))
    [second] = mtls_secrets(state)
    assert second.id == first.id
    assert second.latest_content == {"mtls-cert": renewed}
    assert state.get_relation(rel.id).local_app_data["secret-mtls"] == first.id

    # Same certificate again: no new revision (ops.testing warns on a no-op set_content).
    with caplog.at_level(logging.WARNING):
        state = ctx.run(ctx.on.config_changed(), state)
    assert "existing value" not in caplog.text
    [third] = mtls_secrets(state)
    assert third.latest_content == {"mtls-cert": renewed}


def test_relation_broken_emits_gone_and_drops_the_certificate_secret(ctx):
    rel = etcd_relation()
    state = testing.State(leader=True, relations={rel}, config={"cert": PEM})
    state = ctx.run(ctx.on.config_changed(), state)
    assert mtls_secrets(state)

    state = ctx.run(ctx.on.relation_broken(state.get_relation(rel.id)), state)

    assert any(isinstance(e, EtcdClientGoneEvent) for e in ctx.emitted_events)
    assert seen[-1][0] == "gone"
    assert not mtls_secrets(state)


# --- what the requirer reads ------------------------------------------------------------------


@pytest.mark.parametrize(
    "missing",
    ["endpoints", "secret-user", "secret-tls", "user-unreadable", "tls-unreadable"],
)
def test_no_connection_until_everything_is_there(ctx, missing):
    user, tls = provider_secrets()
    if missing == "endpoints":  # no address at all: neither uris nor endpoints
        user = testing.Secret({"username": "client-a"})
    data = served(user, tls)
    secrets = {user, tls}
    if missing in data:
        del data[missing]
    elif missing == "user-unreadable":
        secrets.discard(user)  # URI published but not granted (yet)
    else:
        secrets.discard(tls)
    rel = etcd_relation(**data)

    ctx.run(ctx.on.relation_changed(rel), testing.State(relations={rel}, secrets=secrets))

    assert seen == [("changed", None, None)]


def test_connection_when_served(ctx):
    user, tls = provider_secrets()
    rel = etcd_relation(**served(user, tls))

    ctx.run(ctx.on.relation_changed(rel), testing.State(relations={rel}, secrets={user, tls}))

    assert seen == [
        (
            "changed",
            EtcdConnection(
                endpoints=ENDPOINTS,
                username="client-a",
                tls_ca=CA_PEM,
                version="3.5.1",
                prefix=PREFIX,
            ),
            None,
        )
    ]


def test_an_older_provider_is_still_understood(ctx):
    """etcd-k8s before LIBPATCH 2: full URLs in endpoints and uris, no uris in the secret."""
    user = testing.Secret({"username": "client-a"})
    tls = testing.Secret({"tls-ca": CA_PEM})
    old = {"endpoints": ",".join(ENDPOINTS), "uris": ",".join(ENDPOINTS), "version": "3.5.1"}
    rel = etcd_relation(**old, **{"secret-user": user.id, "secret-tls": tls.id})
    ctx.run(ctx.on.relation_changed(rel), testing.State(relations={rel}, secrets={user, tls}))
    assert seen[0][1] is not None and seen[0][1].endpoints == ENDPOINTS
    # And host:port endpoints alone (no uris anywhere) read as https URLs.
    plain = {**served(user, tls)}
    rel = etcd_relation(**plain)
    seen.clear()
    ctx.run(ctx.on.relation_changed(rel), testing.State(relations={rel}, secrets={user, tls}))
    assert seen[0][1] is not None and seen[0][1].endpoints == ENDPOINTS


@pytest.mark.parametrize(
    "statuses, said",
    [
        (
            [{"code": 5003, "message": "the prefix overlaps another client's", "resolution": "x"}],
            "refused: the prefix overlaps another client's",
        ),
        (
            [{"code": 4001, "message": "client TLS is off", "resolution": "y"}],
            "waiting: client TLS is off",
        ),
        (
            [
                {"code": 4002, "message": "no certificate yet", "resolution": ""},
                {"code": 5008, "message": "reserved name", "resolution": ""},
            ],
            "refused: reserved name",
        ),
    ],
)
def test_provider_status_means_no_connection(ctx, statuses, said):
    user, tls = provider_secrets()
    rel = etcd_relation(**served(user, tls, status=json.dumps(statuses)))

    ctx.run(ctx.on.relation_changed(rel), testing.State(relations={rel}, secrets={user, tls}))

    assert seen == [("changed", None, said)]


@pytest.mark.parametrize("line", ["refused: prefix overlaps", "waiting: for the cluster"])
def test_an_older_providers_one_line_status_is_understood(ctx, line):
    user, tls = provider_secrets()
    rel = etcd_relation(**served(user, tls, status=line))
    ctx.run(ctx.on.relation_changed(rel), testing.State(relations={rel}, secrets={user, tls}))
    assert seen == [("changed", None, line)]


def test_provider_secret_change_emits_changed_for_its_relation(ctx):
    user, tls = provider_secrets()
    rel = etcd_relation(**served(user, tls))
    state = testing.State(relations={rel}, secrets={user, tls})

    ctx.run(ctx.on.secret_changed(tls), state)

    [event] = [e for e in ctx.emitted_events if isinstance(e, EtcdClientChangedEvent)]
    assert event.relation.id == rel.id
    assert seen[0][1] is not None and seen[0][1].tls_ca == CA_PEM


def test_unrelated_secret_change_is_ignored(ctx):
    user, tls = provider_secrets()
    other = testing.Secret({"password": "x"})
    rel = etcd_relation(**served(user, tls))

    ctx.run(
        ctx.on.secret_changed(other), testing.State(relations={rel}, secrets={user, tls, other})
    )

    assert not [e for e in ctx.emitted_events if isinstance(e, EtcdClientChangedEvent)]
    assert seen == []


# --- EtcdConnection helpers -------------------------------------------------------------------

CONN = EtcdConnection(
    endpoints=ENDPOINTS, username="client-a", tls_ca=CA_PEM, version="3.5.1", prefix=PREFIX
)


def test_etcdctl_args():
    assert CONN.etcdctl_args("/c/cert.pem", "/c/key.pem", "/c/ca.pem") == [
        f"--endpoints={ENDPOINTS[0]},{ENDPOINTS[1]}",
        "--cacert=/c/ca.pem",
        "--cert=/c/cert.pem",
        "--key=/c/key.pem",
    ]


@pytest.fixture
def fake_etcd3(monkeypatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def client(**kwargs: Any) -> str:
        calls.append(kwargs)
        return "client"

    module = types.ModuleType("etcd3")
    module.client = client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "etcd3", module)
    monkeypatch.delenv("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", raising=False)
    return calls


@pytest.mark.parametrize(
    ("endpoint", "host", "port"),
    [
        (None, "etcd-k8s-0.etcd-k8s-endpoints.m.svc.cluster.local", 2379),
        ("https://10.1.2.3:2381", "10.1.2.3", 2381),
        ("etcd-k8s-1.example:12379", "etcd-k8s-1.example", 12379),
        ("https://etcd-k8s-2.example", "etcd-k8s-2.example", 2379),
    ],
)
def test_etcd3_client_host_and_port(fake_etcd3, endpoint, host, port):
    assert CONN.etcd3_client("/c/cert.pem", "/c/key.pem", "/c/ca.pem", endpoint, 3) == "client"
    assert fake_etcd3 == [
        {
            "host": host,
            "port": port,
            "ca_cert": "/c/ca.pem",
            "cert_cert": "/c/cert.pem",
            "cert_key": "/c/key.pem",
            "timeout": 3,
        }
    ]
    assert os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] == "python"


def test_etcd3_client_rejects_an_endpoint_without_host(fake_etcd3):
    with pytest.raises(ValueError, match="no host"):
        CONN.etcd3_client("c", "k", "ca", endpoint="https://:2379")
    assert fake_etcd3 == []
