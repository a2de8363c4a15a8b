"""The TLS decisions (tls.py), their peer-data models, the config they render, and etcdctl's
handling of mixed http/https endpoints. No etcd here: tests/cluster/test_tls.py runs it."""

from __future__ import annotations

import json

import pytest

from core import model, pem, steps, tls
from core.identity import config_digest
from state import peer_models as peers
from state.config import EtcdOptions
from tests.bench.ca import Authority
from workload.etcdctl import ClientCert, Etcdctl, EtcdctlError
from workload.pebble import READY_COMMAND, ready_command
from workload.render import MemberConfig, TlsConfig, render_config

CA1 = Authority("unit-ca-1").pem
CA2 = Authority("unit-ca-2").pem
FP1, FP2 = pem.fingerprint(CA1), pem.fingerprint(CA2)


def material(ca: str = CA1, cert: str = CA1, key: str = "KEY") -> model.Material:
    # A CA certificate stands in for a leaf: the decisions only compare fingerprints.
    return model.Material(cert=cert, key=key, ca=ca)


def unit(ca: str | None, *cas: str) -> model.UnitTls:
    return model.UnitTls(
        in_use_ca=pem.fingerprint(ca) if ca else None, cas=pem.bundle_of(list(cas))
    )


ON1 = model.TlsRecord("on", (CA1,), frozenset({FP1}))


class TestPem:
    def test_fingerprint_ignores_wrapping_and_blanks(self):
        body = "".join(CA1.splitlines()[1:-1])
        rewrapped = "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----"
        assert pem.fingerprint("\n  " + rewrapped + "\n\n") == FP1

    def test_split_pem_finds_each_certificate(self):
        assert pem.split_pem(CA1 + "junk\n" + CA2) == (CA1, CA2)

    def test_bundle_is_unique_and_ordered(self):
        assert pem.bundle_of([CA2, CA1, CA2]) == pem.bundle_of([CA1, CA2])
        assert len(pem.bundle_of([CA2, CA1, CA2])) == 2


class TestInstall:
    def test_nothing_offered_keeps(self):
        assert tls.next_install(ON1, True, material(), None) == steps.Keep()

    def test_same_material_keeps(self):
        assert tls.next_install(ON1, True, material(), material()) == steps.Keep()

    def test_plaintext_installs_anything(self):
        offered = material(CA2, CA2)
        assert tls.next_install(model.TlsRecord(), True, None, offered) == steps.Install(offered)

    def test_renewal_with_a_trusted_ca_installs(self):
        renewed = material(CA1, CA2)  # another leaf, same CA
        assert tls.next_install(ON1, True, material(), renewed) == steps.Install(renewed)

    def test_a_new_ca_waits_until_every_member_trusts_it(self):
        step = tls.next_install(ON1, True, material(), material(CA2, CA2))
        assert isinstance(step, steps.Keep) and "waits until every member trusts" in step.reason
        growing = model.TlsRecord("on", pem.bundle_of([CA1, CA2]), frozenset({FP1}))
        assert isinstance(
            tls.next_install(growing, True, material(), material(CA2, CA2)), steps.Keep
        )
        trusted = model.TlsRecord("on", pem.bundle_of([CA1, CA2]), frozenset({FP1, FP2}))
        offered = material(CA2, CA2)
        assert tls.next_install(trusted, True, material(), offered) == steps.Install(offered)

    def test_files_stay_until_tls_is_fully_off(self):
        off_with_bundle = model.TlsRecord("off", (CA1,), frozenset({FP1}))
        assert tls.next_install(ON1, False, material(), None) == steps.Keep()
        assert tls.next_install(off_with_bundle, False, material(), None) == steps.Keep()
        assert tls.next_install(model.TlsRecord(), False, material(), None) == steps.Remove()
        assert tls.next_install(model.TlsRecord(), False, None, None) == steps.Keep()

    def test_unit_tls_lists_in_use_and_offered_cas(self):
        info = tls.unit_tls(material(CA1), material(CA2, CA2))
        assert info.in_use_ca == FP1 and set(info.cas) == {CA1, CA2}
        assert tls.unit_tls(None, None) == model.UnitTls()


MEMBERS = frozenset({"etcd-k8s/0", "etcd-k8s/1"})


def record_step(kind, record, related, units, members=MEMBERS):
    return tls.next_record(kind, record, related, units, members)


class TestRecord:
    def test_waits_for_every_member_to_have_a_certificate(self):
        step = record_step("peer", model.TlsRecord(), True, {"etcd-k8s/0": unit(CA1, CA1)})
        assert step == steps.Wait("peer TLS waits for a certificate on etcd-k8s/1")

    def test_peer_goes_through_trust_then_on(self):
        units = {"etcd-k8s/0": unit(CA1, CA1), "etcd-k8s/1": unit(CA1, CA1)}
        step = record_step("peer", model.TlsRecord(), True, units)
        assert isinstance(step, steps.NewRecord) and step.record == model.TlsRecord("trust", (CA1,))
        step = record_step("peer", step.record, True, units)
        assert isinstance(step, steps.NewRecord)
        assert step.record == model.TlsRecord("trust", (CA1,), frozenset({FP1}))
        step = record_step("peer", step.record, True, units)
        assert isinstance(step, steps.NewRecord) and step.record == ON1
        assert record_step("peer", ON1, True, units) is None

    def test_client_goes_straight_on(self):
        units = {"etcd-k8s/0": unit(CA1, CA1), "etcd-k8s/1": unit(CA1, CA1)}
        step = record_step("client", model.TlsRecord(), True, units)
        assert isinstance(step, steps.NewRecord) and step.record.stage == "on"

    def test_no_member_yet_or_no_ca_waits(self):
        # The bootstrap's own hook: no unit runs a member yet, the certificates are not in.
        units = {"etcd-k8s/0": unit(CA1, CA1)}
        for kind in ("peer", "client"):
            step = record_step(kind, model.TlsRecord(), True, units, frozenset())
            assert step == steps.Wait(f"{kind} TLS waits for a certificate on etcd-k8s/0")
            step = record_step(kind, model.TlsRecord(), True, {}, frozenset({"etcd-k8s/0"}))
            assert step == steps.Wait(f"{kind} TLS waits for a certificate on etcd-k8s/0")
        step = record_step("peer", model.TlsRecord(), True, {}, frozenset())
        assert step == steps.Wait("peer TLS waits for a certificate on the first member")

    def test_a_unit_without_a_member_does_not_hold_tls_back(self):
        units = {"etcd-k8s/0": unit(CA1, CA1), "etcd-k8s/1": unit(CA1, CA1), "etcd-k8s/2": None}
        assert isinstance(record_step("client", model.TlsRecord(), True, units), steps.NewRecord)

    def test_new_ca_grows_the_bundle_then_shrinks_it(self):
        offered = {"etcd-k8s/0": unit(CA1, CA1, CA2), "etcd-k8s/1": unit(CA1, CA1)}
        step = record_step("client", ON1, True, offered)
        assert isinstance(step, steps.NewRecord)
        assert step.record.bundle == pem.bundle_of([CA1, CA2])
        assert step.record.trusted == frozenset({FP1}), "trusted only once every member runs it"
        grown = step.record
        step = record_step("client", grown, True, offered)
        assert isinstance(step, steps.NewRecord) and step.record.trusted == {FP1, FP2}
        switched = {"etcd-k8s/0": unit(CA2, CA2), "etcd-k8s/1": unit(CA2, CA2)}
        step = record_step("client", step.record, True, switched)
        assert isinstance(step, steps.NewRecord) and step.record.bundle == (CA2,)

    def test_old_ca_stays_while_one_unit_still_uses_it(self):
        both = model.TlsRecord("on", pem.bundle_of([CA1, CA2]), frozenset({FP1, FP2}))
        half = {"etcd-k8s/0": unit(CA2, CA2), "etcd-k8s/1": unit(CA1, CA1, CA2)}
        assert record_step("peer", both, True, half) is None

    def test_relation_removed_steps_down_and_keeps_the_bundle_until_done(self):
        step = record_step("peer", ON1, False, {})
        assert isinstance(step, steps.NewRecord) and step.record.stage == "trust"
        step = record_step("peer", step.record, False, {})
        assert isinstance(step, steps.NewRecord)
        assert step.record.stage == "off" and step.record.bundle == (CA1,)
        step = record_step("peer", step.record, False, {})
        assert isinstance(step, steps.NewRecord) and step.record == model.TlsRecord()
        assert record_step("peer", model.TlsRecord(), False, {}) is None

    def test_client_relation_removed_goes_off_in_one_roll(self):
        step = record_step("client", ON1, False, {})
        assert isinstance(step, steps.NewRecord) and step.record.stage == "off"

    def test_off_record_restarts_nothing(self):
        off_with_bundle = model.Settings(client=model.TlsRecord("off", (CA1,), frozenset({FP1})))
        options = EtcdOptions()

        def options_digest(options: EtcdOptions, settings: model.Settings | None = None) -> str:
            return config_digest(options.model_dump_json(), settings)

        assert options_digest(options, off_with_bundle) == options_digest(options)
        assert options_digest(options, model.Settings(client=ON1)) != options_digest(options)

    def test_schemes_follow_the_stage(self):
        trust = model.TlsRecord("trust", (CA1,))
        assert (tls.peer_scheme(trust), tls.peer_scheme(ON1)) == ("http", "https")
        assert tls.client_scheme(model.TlsRecord()) == "http"
        assert tls.describe(ON1, model.TlsRecord()) == "peer TLS on, client TLS off"


class TestPeerData:
    def test_record_round_trip(self):
        bag: dict[str, str] = {}
        peers.write_tls(bag, "peer", ON1)
        assert peers.read_tls(bag).peer == ON1
        peers.write_tls(bag, "peer", model.TlsRecord())
        assert bag["peer-tls"] == ""

    @pytest.mark.parametrize(
        "raw",
        ["not json", '{"stage": "sideways"}', '{"bundle": ["not a pem"]}', '{"trusted": ["xyz"]}'],
    )
    def test_garbage_record_reads_as_plaintext_and_is_logged(self, raw, caplog):
        settings = peers.read_tls({"client-tls": raw})
        assert settings.client == model.TlsRecord()
        assert "ignoring garbage client-tls" in caplog.text

    def test_unit_round_trip_and_garbage(self, caplog):
        bag: dict[str, str] = {}
        info = unit(CA1, CA1, CA2)
        peers.write_unit_tls(bag, "client", info)
        assert peers.read_unit_tls("etcd-k8s/1", bag, "client") == info
        bag["client-tls"] = json.dumps({"in-use-ca": "<script>"})
        assert peers.read_unit_tls("etcd-k8s/1", bag, "client") is None
        assert "ignoring garbage client-tls in peer data of etcd-k8s/1" in caplog.text

    def test_no_private_key_is_published(self):
        bag: dict[str, str] = {}
        peers.write_unit_tls(bag, "peer", tls.unit_tls(material(key="PRIVATE"), None))
        assert "PRIVATE" not in json.dumps(bag)


def member(tls_config: TlsConfig, peer: str = "http", client: str = "http") -> MemberConfig:
    host = "etcd-k8s-0.etcd-k8s-endpoints.m.svc.cluster.local"
    return MemberConfig(
        name="etcd-k8s-0",
        data_dir="/var/lib/etcd/data",
        peer_url=f"{peer}://{host}:2380",
        client_url=f"{client}://{host}:2379",
        initial_cluster=f"etcd-k8s-0={peer}://{host}:2380",
        initial_cluster_state="existing",
        initial_cluster_token="t",
        tls=tls_config,
    )


class TestRendering:
    def test_plaintext_has_no_tls_section(self):
        text = render_config(member(TlsConfig()), EtcdOptions())
        assert "transport-security" not in text
        assert 'listen-peer-urls: "http://0.0.0.0:2380"' in text

    def test_trust_step_dials_https_but_listens_http(self):
        config = TlsConfig(peer=True, peer_cert="/c", peer_key="/k", peer_ca="/ca")
        text = render_config(member(config), EtcdOptions())
        assert 'listen-peer-urls: "http://0.0.0.0:2380"' in text
        assert "peer-transport-security:" in text and "client-cert-auth: true" in text

    def test_full_tls(self):
        config = TlsConfig(
            peer=True, client=True, client_cert="/cc", client_key="/ck", client_ca="/cca"
        )
        text = render_config(member(config, "https", "https"), EtcdOptions())
        assert 'listen-client-urls: "https://0.0.0.0:2379"' in text
        assert 'listen-peer-urls: "https://0.0.0.0:2380"' in text
        assert 'trusted-ca-file: "/cca"' in text

    def test_ready_check_uses_the_pod_name_and_a_certificate_over_https(self):
        assert ready_command("http://x:2379", ["--cert=/c"]) == READY_COMMAND
        command = ready_command("https://x:2379", ["--cert=/c"])
        assert "--endpoints=https://x:2379" in command and "--cert=/c" in command


class TestMixedEndpoints:
    CERT = ClientCert(cacert="/ca", cert="/c", key="/k")

    def runner(self, answers):
        calls = []

        def run(argv, timeout):
            calls.append(argv)
            endpoints = next(a for a in argv if a.startswith("--endpoints="))
            return answers(endpoints.split("=", 1)[1], argv)

        return run, calls

    def test_one_scheme_is_one_call_with_certificates_for_https(self):
        run, calls = self.runner(lambda eps, argv: (0, "[]", ""))
        Etcdctl(run, ["https://a:2379", "https://b:2379"], cert=self.CERT).endpoint_status(
            ["https://a:2379", "https://b:2379"]
        )
        assert len(calls) == 1 and "--cert=/c" in calls[0]

    def test_http_calls_carry_no_certificate(self):
        run, calls = self.runner(lambda eps, argv: (0, "[]", ""))
        Etcdctl(run, ["http://a:2379"], cert=self.CERT).endpoint_status(["http://a:2379"])
        assert not [a for a in calls[0] if a.startswith("--cert")]

    def test_cluster_call_falls_back_to_the_other_scheme(self):
        members = json.dumps({"header": {"cluster_id": 1}, "members": []})

        def answers(eps, argv):
            return (
                (1, "", "Error: context deadline exceeded") if "https" in eps else (0, members, "")
            )

        run, calls = self.runner(answers)
        client = Etcdctl(run, ["https://a:2379", "https://b:2379", "http://c:2379"], cert=self.CERT)
        assert client.member_list().cluster_id == "1"
        assert [c[1] for c in calls] == [
            "--endpoints=https://a:2379,https://b:2379",
            "--endpoints=http://c:2379",
        ]

    def test_both_fail_raises_the_last_error(self):
        run, _ = self.runner(lambda eps, argv: (1, "", f"Error: down {eps}"))
        with pytest.raises(EtcdctlError, match="down"):
            Etcdctl(run, ["https://a:2379", "http://c:2379"]).member_list()

    def test_status_asks_each_scheme_and_joins(self):
        def status(eps, argv):
            entry = {
                "Endpoint": eps,
                "Status": {"header": {"member_id": 10 if "https" in eps else 11}, "leader": 10},
            }
            return 0, json.dumps([entry]), ""

        run, calls = self.runner(status)
        found = Etcdctl(run, [], cert=self.CERT).endpoint_status(
            ["https://a:2379", "http://c:2379"]
        )
        assert {s.member_id for s in found} == {"a", "b"}
        assert len(calls) == 2


class TestRefuse:
    """certificates.refuse: what a provider hands over is checked before it is put in use."""

    POD = "etcd-k8s-0.etcd-k8s-endpoints.m.svc.cluster.local"

    def request(self):
        from charmlibs.interfaces.tls_certificates import CertificateRequestAttributes

        return CertificateRequestAttributes(
            common_name="etcd-k8s-0", sans_dns=frozenset({self.POD, "etcd-k8s"})
        )

    def leaf(self, authority: Authority, names: list[str]) -> str:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-k8s-0")])
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        csr = builder.sign(key, hashes.SHA256())
        return authority.sign(csr).public_bytes(serialization.Encoding.PEM).decode()

    def test_a_good_leaf_passes(self):
        from relations.certificates import refuse

        authority = Authority("good")
        assert refuse(self.leaf(authority, [self.POD]), authority.pem, self.request()) is None

    def test_refusals(self):
        from relations.certificates import refuse

        authority, other = Authority("good"), Authority("other")
        good = self.leaf(authority, [self.POD])
        request = self.request()
        assert "not signed by the CA" in (refuse(good, other.pem, request) or "")
        assert "a CA certificate" in (refuse(authority.pem, authority.pem, request) or "")
        assert "does not name" in (
            refuse(self.leaf(authority, ["x"]), authority.pem, request) or ""
        )
        assert "not a PEM" in (refuse("garbage", authority.pem, request) or "")


class TestLeadersTlsPass:
    """next_tls_step: one step at a time, never during a roll, a join or with a voter down."""

    @staticmethod
    def obs(*, related=(model.PEER,), digests=("d", "d", "d"), healthy=None, turn=None, **app):
        import dataclasses

        from tests.unit.test_membership import formed, member, observe
        from tests.unit.test_membership import unit as peer_unit

        us = [
            dataclasses.replace(peer_unit(n, member_id=f"a{n}"), config_digest=d)
            for n, d in enumerate(digests)
        ]
        members = [member(u, u.member_id) for u in us]
        view = model.ClusterView(
            cluster_id="c0ffee",
            members=tuple(members),
            healthy_ids=frozenset(healthy if healthy is not None else {m.id for m in members}),
            leader_id="a0",
        )
        obs = observe(
            us[0],
            peers=tuple(us[1:]),
            leader=True,
            app=formed(restart_turn=turn, **app),
            running=True,
            data=True,
            cluster=view,
        )
        offered = {u.unit: {model.PEER: unit(CA1, CA1)} for u in us}
        return dataclasses.replace(
            obs,
            config=model.ConfigState(running_digest="d", wanted_digest="d"),
            tls=model.TlsState(related=frozenset(related), units=offered),
        )

    def test_relating_starts_with_trust(self):
        step = tls.next_tls_step(self.obs())
        assert isinstance(step, steps.TlsStep)
        assert [(kind, new.record.stage) for kind, new in step.changes] == [(model.PEER, "trust")]

    def test_nothing_related_nothing_to_do(self):
        assert tls.next_tls_step(self.obs(related=())) == steps.Idle()

    @pytest.mark.parametrize(
        "kw, key",
        [
            ({"turn": "etcd-k8s/1"}, "tls.busy-roll"),
            ({"healthy": {"a0", "a1"}}, "tls.busy-unhealthy"),
        ],
        ids=["roll-in-progress", "voter-down"],
    )
    def test_a_due_step_waits_and_says_why(self, kw, key):
        from core.messages import say

        assert tls.next_tls_step(self.obs(**kw)) == steps.Wait(say(key))

    @pytest.mark.parametrize("turn", [None, "etcd-k8s/1"])
    def test_a_unit_behind_the_config_holds_tls(self, turn):
        from core.messages import say

        step = tls.next_tls_step(self.obs(digests=("d", "old", "d"), turn=turn))
        assert step == steps.Wait(say("tls.busy-roll"))
        assert tls.busy_reason(self.obs(digests=("d", "d", "d"))) is None

    def test_a_plain_config_roll_is_not_reported_as_tls_waiting(self):
        # Nothing TLS is due: the roll is no reason to say "TLS waits".
        assert tls.next_tls_step(self.obs(related=(), turn="etcd-k8s/1")) == steps.Idle()

    def test_not_the_leader_or_no_cluster(self):
        import dataclasses

        obs = self.obs()
        assert tls.next_tls_step(dataclasses.replace(obs, is_leader=False)) == steps.Idle()
        assert tls.next_tls_step(dataclasses.replace(obs, cluster=None)) == steps.Idle()
