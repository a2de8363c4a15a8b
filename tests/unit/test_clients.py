"""The client-relations core (src/clients.py) and the etcdctl auth plumbing, without ops or
etcd: which requests are served, refused or kept waiting, and what changes in etcd."""

from __future__ import annotations

import datetime
import json

import ops
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ops import testing

from core import clients, tls
from core.clients import Applied, Ensure, Grant, Request, Revoke, decide, plan
from relations.etcd_client import ClientRelations
from workload.etcdctl import Etcdctl

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.timezone.utc)
RESERVED = frozenset({"root", "etcd-k8s-0"})


def cert(
    cn: str | None = "client-a",
    ca: bool = False,
    sign: bool = False,
    days: int = 30,
    start_days: int = -1,
    constraints: bool = True,
) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    name = x509.Name(attrs or [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "x")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + datetime.timedelta(days=start_days))
        .not_valid_after(NOW + datetime.timedelta(days=start_days + days))
    )
    if constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    if sign:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, False, False, False), True
        )
    signed = builder.sign(key, hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.PEM).decode()


def req(rid: int, prefix: str | None = "/a/", pem: str | None = None, app: str = "") -> Request:
    return Request(rid, app or f"app{rid}", prefix, pem if pem is not None else cert(f"u{rid}"))


# ---- certificates ---------------------------------------------------------------------------


def test_a_leaf_names_its_user() -> None:
    assert clients.check_certificate(cert("client-a"), NOW) == ("client-a", None)


def test_a_leaf_without_basic_constraints_is_still_a_leaf() -> None:
    assert clients.check_certificate(cert("x", constraints=False), NOW)[0] == "x"


@pytest.mark.parametrize(
    ("pem", "why"),
    [
        ("", "not PEM"),
        ("hello", "not PEM"),
        ("-----BEGIN CERTIFICATE-----\nbm90\n-----END CERTIFICATE-----\n", "malformed"),
        (cert(ca=True), "CA certificate"),
        (cert(sign=True), "may sign certificates"),
        (cert(days=1, start_days=-5), "not valid now"),
        (cert(start_days=2), "not valid now"),
        (cert(cn=None), "no common name"),
        (cert("a") + cert("b"), "more than one"),
    ],
)
def test_unusable_certificates_are_named(pem: str, why: str) -> None:
    user, reason = clients.check_certificate(pem, NOW)
    assert user is None and reason is not None and reason.refused and why in reason.message


# ---- deciding -------------------------------------------------------------------------------


def test_valid_requests_are_granted_readwrite_on_their_prefix() -> None:
    d = decide([req(31, "/b/"), req(30, "/a/")], True, RESERVED, NOW)
    assert sorted(d.grants) == ["30", "31"] and not d.refusals
    assert (d.grants["30"].user, d.grants["30"].prefix, d.grants["30"].role) == (
        "u30",
        "/a/",
        "etcd-client-30",
    )


def test_without_client_tls_everyone_waits_and_is_told_why() -> None:
    d = decide([req(30)], False, RESERVED, NOW)
    assert not d.grants and d.refusals["30"].text().startswith("waiting:")
    assert "client TLS is off" in d.refusals["30"].text()


def test_an_invalid_request_is_refused_even_without_tls() -> None:
    d = decide([req(30, "/")], False, RESERVED, NOW)
    assert d.refusals["30"].text().startswith("refused:")


@pytest.mark.parametrize("prefix", [None, "", "  ", "/"])
def test_missing_empty_or_root_prefixes_are_refused(prefix: str | None) -> None:
    d = decide([req(30, prefix)], True, RESERVED, NOW)
    assert d.refusals["30"].text().startswith("refused:") and not d.grants


def test_of_two_overlapping_prefixes_the_older_relation_keeps_its_own() -> None:
    for newer in ("/a/deeper/", "/a", "/"):
        d = decide([req(31, newer), req(30, "/a/")], True, RESERVED, NOW)
        assert "30" in d.grants, newer
        assert "31" in d.refusals and "31" not in d.grants


def test_overlap_message_names_the_other_client() -> None:
    d = decide([req(30, "/a/", app="alpha"), req(31, "/a/x/")], True, RESERVED, NOW)
    assert "alpha" in d.refusals["31"].text() and "'/a/'" in d.refusals["31"].text()


def test_prefixes_that_only_share_a_start_do_not_overlap() -> None:
    d = decide([req(30, "/a/"), req(31, "/ab/")], True, RESERVED, NOW)
    assert sorted(d.grants) == ["30", "31"]


def test_reserved_and_taken_names_are_refused() -> None:
    shared = cert("same")
    d = decide(
        [req(30, "/a/", cert("root")), req(31, "/b/", cert("etcd-k8s-0")), req(32, "/c/", shared)]
        + [req(33, "/d/", shared)],
        True,
        RESERVED,
        NOW,
    )
    assert "reserved" in d.refusals["30"].text() and "reserved" in d.refusals["31"].text()
    assert "32" in d.grants and "already the user" in d.refusals["33"].text()


def test_a_missing_certificate_waits_and_an_unreadable_one_is_refused() -> None:
    d = decide(
        [Request(30, "a", "/a/", None), Request(31, "b", "/b/", None, "cannot read the secret")],
        True,
        RESERVED,
        NOW,
    )
    assert d.refusals["30"].text().startswith("waiting:")
    assert d.refusals["31"].code == 5010 and "cannot read the secret" in d.refusals["31"].message


def test_a_refused_request_does_not_block_a_later_valid_one() -> None:
    d = decide([req(30, "/"), req(31, "/a/")], True, RESERVED, NOW)
    assert "31" in d.grants


# ---- planning -------------------------------------------------------------------------------


def grant(rid: int, user: str = "u", prefix: str = "/a/", pem: str | None = None) -> Grant:
    return Grant(str(rid), f"app{rid}", user, prefix, pem or cert(user))


def test_new_grants_are_ensured_and_gone_ones_revoked_first() -> None:
    old = Applied("old", "etcd-client-29", "/z/", "fp")
    changes = plan({"29": old}, {"30": grant(30)})
    assert isinstance(changes[0], Revoke) and changes[0].key == "29"
    assert isinstance(changes[1], Ensure) and changes[1].grant.key == "30"


def test_a_new_common_name_or_prefix_revokes_then_grants() -> None:
    g = grant(30, "new", "/a/")
    for applied in (Applied("old", g.role, "/a/", "x"), Applied("new", g.role, "/b/", "x")):
        changes = plan({"30": applied}, {"30": g})
        assert [type(c) for c in changes] == [Revoke, Ensure]


def test_nothing_to_do_when_applied_matches_even_with_a_new_certificate() -> None:
    g = grant(30)
    assert plan({"30": Applied.of(g)}, {"30": g}) == []
    assert plan({"30": Applied(g.user, g.role, g.prefix, "other-fp")}, {"30": g}) == []


def test_applied_round_trips_and_garbage_reads_as_empty() -> None:
    applied = {"30": Applied.of(grant(30)), "31": Applied.of(grant(31, "v", "/b/"))}
    assert clients.read_applied(clients.write_applied(applied)) == applied
    assert clients.read_applied("not json") == {}
    assert clients.read_applied(json.dumps({"30": {"user": 1}})) == {}
    assert clients.read_applied(None) == {}


def test_clients_get_only_the_ca_certificates_of_the_bundle() -> None:
    ca, leaf = cert("ca", ca=True), cert("leaf")
    assert clients.server_cas([ca, leaf, "junk"]) == (ca,)


# ---- the client leaves join the client bundle -----------------------------------------------


def test_client_leaves_join_the_client_bundle_and_leave_it() -> None:
    ca = cert("provider-ca", ca=True)
    units = {"etcd-k8s/0": tls.UnitTls(in_use_ca=tls.fingerprint(ca), cas=(ca,))}
    members = frozenset(units)
    record = tls.TlsRecord("on", (ca,), frozenset({tls.fingerprint(ca)}))
    leaf = cert("client-a")
    step = tls.next_record("client", record, True, units, members, (leaf,))
    assert isinstance(step, tls.NewRecord)
    assert set(step.record.bundle_fps) == {tls.fingerprint(ca), tls.fingerprint(leaf)}
    grown = tls.TlsRecord("on", step.record.bundle, frozenset(step.record.bundle_fps))
    back = tls.next_record("client", grown, True, units, members, ())
    assert isinstance(back, tls.NewRecord) and back.record.bundle_fps == (tls.fingerprint(ca),)


def test_client_leaves_alone_never_turn_client_tls_on() -> None:
    step = tls.next_record("client", tls.TlsRecord(), True, {}, frozenset(), (cert(),))
    assert not isinstance(step, tls.NewRecord) or step.record.bundle == ()


# ---- etcdctl: credentials in the environment, passwords on stdin ------------------------------


def test_credentials_and_passwords_never_reach_argv() -> None:
    calls: list[tuple[list[str], dict]] = []

    def run(argv: list[str], timeout: float, **extra: object) -> tuple[int, str, str]:
        calls.append((argv, extra))
        return 0, "{}", ""

    ctl = Etcdctl(run, ["https://a:2379"], auth=("root", "s3cret"))
    ctl.user_add("root", "n3w")
    ctl.user_passwd("root", "n3w")
    ctl.user_add("client-a", None)
    ctl.role_grant_prefix("etcd-client-30", "/a/")
    for argv, extra in calls:
        assert not [a for a in argv if "s3cret" in a or "n3w" in a], argv
        assert extra["env"] == {"ETCDCTL_USER": "root", "ETCDCTL_PASSWORD": "s3cret"}
    assert calls[0][1]["stdin"] == "n3w\n" and "--interactive=false" in calls[0][0]
    assert "--no-password" in calls[2][0]
    assert calls[3][0][-5:] == [
        "grant-permission",
        "etcd-client-30",
        "readwrite",
        "/a/",
        "--prefix=true",
    ]


def test_without_credentials_the_runner_gets_no_extras() -> None:
    seen: list[dict] = []

    def run(argv: list[str], timeout: float, **extra: object) -> tuple[int, str, str]:
        seen.append(extra)
        return 0, '{"header": {"cluster_id": 1}, "members": []}', ""

    Etcdctl(run, ["http://a:2379"]).member_list()
    assert seen == [{}]


# ---- the relation adapter: what garbage in a client's databag reads as -----------------------


class _Probe(ops.CharmBase):
    seen: list[Request] = []

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.update_status, self._read)

    def _read(self, _: ops.EventBase) -> None:
        relations = ClientRelations(self)
        _Probe.seen = relations.requests()
        for relation in relations.relations():
            relations.answer(relation, {str(relation.id): clients.status(5010, "test")})


def _read_requests(
    remote: dict[str, str], secrets: tuple[testing.Secret, ...] = ()
) -> tuple[Request, dict[str, str]]:
    ctx = testing.Context(
        _Probe,
        meta={"name": "etcd-k8s", "provides": {"etcd-client": {"interface": "etcd_client"}}},
    )
    relation = testing.Relation(
        "etcd-client",
        remote_app_name="client-x",
        remote_app_data=remote,
        local_app_data={"endpoints": "https://old:2379", "secret-user": "secret:old"},
    )
    out = ctx.run(
        ctx.on.update_status(),
        testing.State(leader=True, relations={relation}, secrets=list(secrets)),
    )
    return _Probe.seen[0], dict(out.get_relation(relation.id).local_app_data)


def test_an_unreadable_secret_is_refused_and_credentials_are_withdrawn() -> None:
    request, answer = _read_requests({"prefix": "/x/", "secret-mtls": "secret:doesnotexist"})
    assert request.problem and "cannot read the secret" in request.problem
    why = decide([request], True, RESERVED, NOW).refusals[request.key]
    assert why.code == 5010 and "cannot read the secret" in why.message
    # No endpoints or secret left behind; the status as data_interfaces reads it.
    assert list(answer) == ["status"]
    assert json.loads(answer["status"]) == [clients.status(5010, "test").as_dict()]


def test_a_secret_without_mtls_cert_is_refused_and_no_secret_means_waiting() -> None:
    empty = testing.Secret({"other": "x"})
    request, _ = _read_requests({"prefix": "/x/", "secret-mtls": empty.id}, (empty,))
    assert request.problem == "the secret in secret-mtls has no mtls-cert"
    request, _ = _read_requests({"prefix": "/x/"})
    assert request.problem is None and request.cert_pem is None
    assert decide([request], True, RESERVED, NOW).refusals[request.key].code == 4002
