"""Who may do what in etcd (core/access.py): auth follows client TLS; client roles follow the
relations."""

import dataclasses

import pytest

from core.access import next_auth_step, next_clients_step
from core.clients import Applied, Decision, Ensure, Grant, Revoke, write_applied
from core.model import CLIENT, ClientsState, Settings, TlsRecord, TlsState
from core.pem import fingerprint
from core.steps import ApplyClients, DisableAuth, EnableAuth, Idle
from tests.unit.test_membership import formed, member, observe, unit, view

CA = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
ON = TlsRecord(stage="on", bundle=(CA,), trusted=frozenset({fingerprint(CA)}))


def cluster(*, quorum: bool = True):
    us = [unit(n, member_id=f"a{n}") for n in range(3)]
    healthy = {"a0", "a1", "a2"} if quorum else {"a0"}
    return view(
        *(member(u, u.member_id) for u in us), leader="a0" if quorum else None, healthy=healthy
    )


def auth_obs(*, record=ON, related=True, auth_on=False, leader=True, reach=True, quorum=True):
    app = formed(tls=Settings(client=record), auth_on=auth_on)
    obs = observe(
        unit(0, member_id="a0"),
        leader=leader,
        app=app,
        running=True,
        data=True,
        cluster=cluster(quorum=quorum) if reach else None,
    )
    return dataclasses.replace(
        obs, tls=TlsState(related=frozenset({CLIENT}) if related else frozenset())
    )


class TestAuthFollowsClientTls:
    def test_on_once_every_member_trusts_the_bundle(self):
        assert next_auth_step(auth_obs()) == EnableAuth()

    def test_not_before_every_member_trusts_the_bundle(self):
        half = dataclasses.replace(ON, trusted=frozenset())
        assert next_auth_step(auth_obs(record=half)) == Idle()

    @pytest.mark.parametrize("stage", ["off", "trust"])
    def test_not_while_client_tls_is_not_on(self, stage):
        assert next_auth_step(auth_obs(record=TlsRecord(stage=stage))) == Idle()

    def test_stays_on_while_client_tls_stays(self):
        assert next_auth_step(auth_obs(auth_on=True)) == Idle()

    def test_off_first_when_the_relation_goes(self):
        assert next_auth_step(auth_obs(related=False, auth_on=True)) == DisableAuth()

    def test_off_when_client_tls_is_leaving(self):
        leaving = TlsRecord(stage="trust", bundle=(CA,))
        assert next_auth_step(auth_obs(record=leaving, auth_on=True)) == DisableAuth()

    def test_stays_off_without_the_relation(self):
        assert next_auth_step(auth_obs(related=False)) == Idle()

    @pytest.mark.parametrize(
        "kw",
        [{"leader": False}, {"reach": False}, {"quorum": False}],
        ids=["not-leader", "no-member-answers", "no-quorum"],
    )
    def test_no_change_without_the_leader_or_quorum(self, kw):
        assert next_auth_step(auth_obs(**kw)) == Idle()
        assert next_auth_step(auth_obs(related=False, auth_on=True, **kw)) == Idle()

    def test_no_change_before_the_cluster_is_recorded(self):
        obs = auth_obs()
        obs = dataclasses.replace(obs, app=dataclasses.replace(obs.app, cluster_id=None))
        assert next_auth_step(obs) == Idle()


GRANT = Grant("30", "app", "app-cn", "/app/", "PEM\n")


def clients_obs(grants, applied_raw, *, quorum=True, reach=True):
    obs = observe(
        unit(0, member_id="a0"),
        leader=True,
        app=formed(),
        running=True,
        data=True,
        cluster=cluster(quorum=quorum) if reach else None,
    )
    state = ClientsState(Decision(grants=grants, refusals={}), applied_raw=applied_raw)
    return dataclasses.replace(obs, clients=state)


class TestClientRoles:
    def test_a_new_grant_is_ensured(self):
        step = next_clients_step(clients_obs({"30": GRANT}, write_applied({})))
        assert step == ApplyClients((Ensure(GRANT),), sweep=False, keep=frozenset({GRANT.role}))

    def test_nothing_to_do_when_etcd_has_what_is_granted(self):
        applied = write_applied({"30": Applied.of(GRANT)})
        assert next_clients_step(clients_obs({"30": GRANT}, applied)) == Idle()

    def test_a_removed_relation_is_revoked(self):
        applied = write_applied({"30": Applied.of(GRANT)})
        step = next_clients_step(clients_obs({}, applied))
        assert step == ApplyClients((Revoke("30", Applied.of(GRANT)),), sweep=False)

    @pytest.mark.parametrize("raw", [None, "", "not json", '{"30": 1}'])
    def test_never_checked_sweeps_even_with_nothing_granted(self, raw):
        # After a restore the key is absent (or someone wrote garbage over it): roles no
        # relation holds may be in etcd.
        assert next_clients_step(clients_obs({}, raw)) == ApplyClients((), sweep=True)

    def test_never_checked_sweeps_but_keeps_the_granted_roles(self):
        step = next_clients_step(clients_obs({"30": GRANT}, None))
        assert step == ApplyClients((Ensure(GRANT),), sweep=True, keep=frozenset({GRANT.role}))

    @pytest.mark.parametrize("kw", [{"quorum": False}, {"reach": False}])
    def test_nothing_without_quorum(self, kw):
        assert next_clients_step(clients_obs({"30": GRANT}, None, **kw)) == Idle()

    def test_nothing_without_the_leaders_view(self):
        obs = dataclasses.replace(clients_obs({"30": GRANT}, None), clients=None)
        assert next_clients_step(obs) == Idle()
