"""Who may do what in etcd, carried out (core/access.py decides): etcd auth on and off with the
root user, the client requests' users and roles, and each client relation's answer. The root
password goes to etcdctl in its environment and new passwords on stdin: never argv or a log."""

from __future__ import annotations

import logging

from core import clients
from core import model as m
from core.messages import say
from core.steps import ApplyClients, DisableAuth, EnableAuth, SettleRootPassword
from engine.context import UnitContext
from engine.member import MemberDriver
from relations.etcd_client import Answer, ClientRelations, Served
from workload.etcdctl import Etcdctl, EtcdctlError
from workload.tls_files import client_cert

logger = logging.getLogger(__name__)


def enable_auth(client: Etcdctl, password: str) -> None:
    """Idempotent: root exists with this password and the root role, auth is on. Works on a
    cluster with auth off, and on one with auth already on and this password (a restore)."""
    try:
        client.user_add(clients.ROOT_USER, password)
    except EtcdctlError as error:
        if not error.already_exists:
            raise
        client.user_passwd(clients.ROOT_USER, password)
    client.user_grant_role(clients.ROOT_USER, "root")
    client.auth_enable()


def sweep_client_roles(client: Etcdctl, keep: frozenset[str] = frozenset()) -> list[str]:
    """Delete every client relation role (`etcd-client-*`) but `keep`, and the users that hold
    one: what a restored snapshot brings back of relations that are gone."""
    stale = sorted(
        r for r in client.role_names() if r.startswith(clients.ROLE_PREFIX) and r not in keep
    )
    if not stale:
        return []
    for user in client.user_names():
        if user != clients.ROOT_USER and set(client.user_roles(user)) & set(stale):
            logger.info("decision: client-revoke user=%s (no relation holds it)", user)
            client.user_delete(user)
    for role in stale:
        logger.info("decision: client-revoke role=%s (no relation holds it)", role)
        client.role_delete(role)
    return stale


def accepted_root_password(
    ctx: UnitContext, endpoints: list[str], candidates: list[str]
) -> str | None:
    """Which of `candidates` etcd takes as root's password; None when etcd does not say (no
    answer, or neither: then nothing is known either way)."""
    for password in candidates:
        probe = Etcdctl(ctx.workload.run, endpoints, cert=client_cert(), auth=("root", password))
        try:
            probe.user_roles(clients.ROOT_USER)
        except EtcdctlError as error:
            if error.auth_failed:
                continue
            logger.warning("cannot tell which root password etcd has: %s", error.reason)
            return None
        return password
    return None


def settle_root_password(ctx: UnitContext, endpoints: list[str]) -> str | None:
    """Leader: after a rotation cut short, keep in the secret the password etcd has."""
    old, new = ctx.root.password(), ctx.root.pending()
    candidates = [p for p in (new, old) if p]
    password = accepted_root_password(ctx, endpoints, candidates)
    if password is not None:
        logger.info(
            "decision: root password settled (%s)", "rotated" if password == new else "unchanged"
        )
        ctx.root.set(password)
        ctx.remember_root(password)
    return password


class Access:
    """The leader's auth and client-user steps, and what the client relations are told."""

    def __init__(self, ctx: UnitContext, driver: MemberDriver, relations: ClientRelations | None):
        self.ctx = ctx
        self.driver = driver
        self.relations = relations
        self.notes: list[str] = []  # why auth or a client's user does not move on (app status)

    def switch_auth(self, step: EnableAuth | DisableAuth, obs: m.Observation) -> bool:
        assert obs.cluster is not None
        client = self.driver.auth_client(obs.cluster)
        try:
            if isinstance(step, DisableAuth):
                logger.info("decision: auth-disable (client TLS goes off)")
                client.auth_disable()
                self.ctx.peers.set_auth(False)
            else:
                logger.info("decision: auth-enable (client TLS is on on every member)")
                password = self.ctx.root.ensure()
                self.ctx.remember_root(password)
                enable_auth(self.ctx.client(client.endpoints), password)
                self.ctx.peers.set_auth(True)
        except EtcdctlError as error:
            why = error.reason
            if error.auth_failed:
                why = "etcd's root password is not the one in the secret"
            logger.warning("etcd auth: %s", why)
            self.notes.append(say("auth.failed", why=why))
            return False
        return True

    def settle_root(self, _: SettleRootPassword, obs: m.Observation) -> bool:
        assert obs.cluster is not None
        endpoints = self.driver.auth_client(obs.cluster).endpoints
        if settle_root_password(self.ctx, endpoints) is None:
            self.notes.append(say("auth.root-in-doubt"))
            return False
        return True

    def apply_clients(self, step: ApplyClients, obs: m.Observation) -> bool:
        assert obs.cluster is not None and obs.clients is not None
        applied = clients.read_applied(obs.clients.applied_raw)
        refusals = obs.clients.decision.refusals
        client = self.driver.auth_client(obs.cluster)
        try:
            if step.sweep:
                sweep_client_roles(client, step.keep)
            for change in step.changes:
                if isinstance(change, clients.Revoke):
                    _revoke(client, change)
                    applied.pop(change.key, None)
                    if change.key not in refusals and self.relations:
                        self.relations.drop_secrets(change.key)
                else:
                    _grant(client, change.grant)
                    applied[change.grant.key] = clients.Applied.of(change.grant)
        except EtcdctlError as error:
            logger.warning("client users: %s", error.reason)
            self.notes.append(say("clients.wait", why=error.reason))
            return False
        finally:
            self.ctx.peers.write_clients(applied)
        return True

    def answer(self, obs: m.Observation) -> None:
        """Leader: every client relation's databag says what it has (or why not)."""
        if obs.clients is None or self.relations is None:
            return
        decision = obs.clients.decision
        applied = clients.read_applied(self.ctx.peers.clients_raw())
        record = obs.app.tls.client
        endpoints = _endpoints(obs.cluster, frozenset(u.member_name for u in obs.units))
        answers: dict[str, Answer] = dict(decision.refusals)
        for key, grant in decision.grants.items():
            done = applied.get(key)
            if done is None or done != clients.Applied.of(grant):
                answers[key] = clients.status(4003)
            elif grant.cert_fp not in record.trusted:
                answers[key] = clients.status(4004)
            elif not endpoints:
                answers[key] = clients.status(4005)
            else:
                cas = "".join(clients.server_cas(record.bundle))
                answers[key] = Served(endpoints, self.ctx.etcd_release(), grant.user, cas)
        for relation in self.relations.relations():
            self.relations.answer(relation, answers)

    def refused_note(self, obs: m.Observation) -> str | None:
        """The app status line for refused client requests (each also a WARNING log line)."""
        if obs.clients is None:
            return None
        apps = {r.key: r.app for r in self.relations.requests()} if self.relations else {}
        refused = []
        for key, why in sorted(obs.clients.decision.refusals.items()):
            if why.refused:
                logger.warning("client relation %s (%s): %s", key, apps.get(key), why.text())
                refused.append(f"{apps.get(key)} (relation {key})")
        return say("clients.refused", which=", ".join(refused)) if refused else None


def _endpoints(view: m.ClusterView | None, staying: frozenset[str]) -> tuple[str, ...]:
    """The voters' client URLs: a learner serves no client requests, and a unit that has left
    the peer relation (scale down) is about to take its member away."""
    if view is None:
        return ()
    return tuple(
        sorted(v.client_urls[0] for v in view.voters if v.client_urls and v.name in staying)
    )


def _grant(client: Etcdctl, grant: clients.Grant) -> None:
    logger.info(
        "decision: client-grant request=%s app=%s user=%s prefix=%s",
        grant.key,
        grant.app,
        grant.user,
        grant.prefix,
    )
    for call in (
        lambda: client.role_add(grant.role),
        lambda: client.user_add(grant.user, None),
    ):
        try:
            call()
        except EtcdctlError as error:
            if not error.already_exists:
                raise
    client.role_grant_prefix(grant.role, grant.prefix)
    client.user_grant_role(grant.user, grant.role)


def _revoke(client: Etcdctl, change: clients.Revoke) -> None:
    logger.info(
        "decision: client-revoke request=%s user=%s prefix=%s",
        change.key,
        change.applied.user,
        change.applied.prefix,
    )
    for call in (
        lambda: client.user_delete(change.applied.user),
        lambda: client.role_delete(change.applied.role),
    ):
        try:
            call()
        except EtcdctlError as error:
            if not error.not_found:
                raise
