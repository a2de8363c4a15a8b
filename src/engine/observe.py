"""What this unit observes, gathered: its peers and the application in peer data, its disk and
Pebble, the live member list with health, its certificates and the client relations (leader).
One etcdctl member list and one status call per observation."""

from __future__ import annotations

import dataclasses
import logging

from core import clients, recovery
from core import model as m
from core.refresh import Versions
from engine.context import UnitContext
from literals import DIGEST_PREFIX
from relations.etcd_client import ClientRelations
from workload.etcdctl import Etcdctl, EtcdctlError
from workload.versions import cluster_version

logger = logging.getLogger(__name__)


class Observer:
    """Builds Observations and live views for one hook."""

    def __init__(self, ctx: UnitContext, relations: ClientRelations | None = None):
        self.ctx = ctx
        self.relations = relations  # the leader's client relations (None: not looked at)

    def observe(self) -> m.Observation:
        ctx = self.ctx
        others = ctx.peers.peers()
        running = ctx.workload.is_running()
        app = ctx.peers.app()
        view = self._live_view(self._etcdctl(others, running), app.cluster_id)
        running_digest = self._running_digest() if running else None
        if running_digest != ctx.me.config_digest:  # what this unit runs now, published later
            ctx.me = dataclasses.replace(ctx.me, config_digest=running_digest)
        client_state = self._clients_state(ctx.me, others, app)  # before TLS: leaves to trust
        disk = self.disk()
        return m.Observation(
            me=ctx.me,
            is_leader=ctx.is_leader,
            app=app,
            peers=others,
            disk=disk,
            running=running,
            cluster=view,
            present=ctx.peers.present(),
            config=m.ConfigState(running_digest=running_digest, wanted_digest=ctx.wanted_digest),
            tls=self._tls_state(client_state),
            clients=client_state,
            new_token=ctx.new_token(),
            root_in_doubt=ctx.is_leader and app.auth_on and ctx.root.pending() is not None,
            versions=self._versions(others, running, disk, view, app),
        )

    def _versions(
        self,
        others: tuple[m.UnitInfo, ...],
        running: bool,
        disk: m.Disk,
        view: m.ClusterView | None,
        app: m.AppState,
    ) -> Versions | None:
        """Before this unit starts etcd (the refresh guard), and on the leader (the app
        status): the image's release, a live member's cluster version, the data's release."""
        ctx = self.ctx
        if running and not ctx.is_leader:
            return None
        if not running and not disk.has_member_data and app.join is None:
            return None  # nothing to start yet: spare the peers the question
        try:
            image = ctx.etcd_release()
        except RuntimeError as error:  # etcd itself judges an image it cannot start
            logger.warning("%s", error)
            image = ""
        urls = [ctx.me.client_url] if running else []
        urls += [u.client_url for u in others if u.member_id]
        return Versions(
            image=image,
            cluster=cluster_version(urls) if urls else None,
            disk=disk.marker.release if disk.marker else None,
            members=tuple(r for _, r in view.releases) if view else (),
            auth_on=app.auth_on,
        )

    def _tls_state(self, client_state: m.ClientsState | None) -> m.TlsState:
        related = frozenset(k for k, on in self.ctx.offers.related.items() if on)
        if not self.ctx.is_leader:
            return m.TlsState(related=related)
        grants = client_state.decision.grants.values() if client_state else ()
        return m.TlsState(
            related=related,
            units=self.ctx.peers.unit_tls(),
            extra_trust=tuple(g.cert_pem for g in grants),
        )

    def _clients_state(
        self, me: m.UnitInfo, others: tuple[m.UnitInfo, ...], app: m.AppState
    ) -> m.ClientsState | None:
        if not self.ctx.is_leader or self.relations is None:
            return None
        reserved = frozenset({clients.ROOT_USER, me.member_name, *(u.member_name for u in others)})
        client_tls = app.tls.client.stage == "on" and app.auth_on
        decision = clients.decide(self.relations.requests(), client_tls, reserved)
        return m.ClientsState(decision=decision, applied_raw=self.ctx.peers.clients_raw())

    def live_view(self, local_only: bool = False) -> m.ClusterView | None:
        """The member list with health, and nothing else of the observation (for actions).
        `local_only`: ask this unit's member alone."""
        ctx = self.ctx
        if local_only:
            client: Etcdctl | None = ctx.client([ctx.me.client_url])
        else:
            client = self._etcdctl(ctx.peers.peers(), ctx.workload.is_running())
        return self._live_view(client, ctx.peers.app().cluster_id)

    def _etcdctl(self, others: tuple[m.UnitInfo, ...], running: bool) -> Etcdctl | None:
        endpoints = [self.ctx.me.client_url] if running else []
        endpoints += [u.client_url for u in others if u.member_id]
        return self.ctx.client(endpoints) if endpoints else None

    def _live_view(self, client: Etcdctl | None, recorded: str | None) -> m.ClusterView | None:
        if client is None:
            return None
        try:
            view = client.view()
        except EtcdctlError as error:
            logger.info("no member answered a member list: %s", error.reason)
            return None
        if recorded not in (None, view.cluster_id) and len(client.endpoints) > 1:
            view = self._view_of(recorded, client.endpoints) or view
        return view

    def _view_of(self, cluster_id: str | None, endpoints: list[str]) -> m.ClusterView | None:
        """After a restore a removed member of the old cluster may answer for a while: ask
        each endpoint alone for the view of the recorded cluster before taking another one."""
        for endpoint in endpoints:
            try:
                view = self.ctx.client([endpoint]).view()
            except EtcdctlError:
                continue
            if view.cluster_id == cluster_id:
                return view
        return None

    def _running_digest(self) -> str | None:
        text = self.ctx.workload.config_text() or ""
        first = text.split("\n", 1)[0]
        return first.removeprefix(DIGEST_PREFIX) if first.startswith(DIGEST_PREFIX) else None

    def disk(self) -> m.Disk:
        if not self.ctx.workload.has_member_data():
            return m.Disk()
        return m.Disk(has_member_data=True, marker=marker(self.ctx.workload.read_marker()))

    def survivors(self) -> list[recovery.Survivor]:
        """Members answering `endpoint status`, which needs no quorum."""
        units = {u.client_url: u.unit for u in (self.ctx.me, *self.ctx.peers.peers())}
        statuses = self.ctx.client(list(units)).endpoint_status(list(units))
        return [
            recovery.Survivor(
                unit=units.get(s.endpoint, s.endpoint),
                member_id=s.member_id,
                raft_index=s.raft_index,
                has_leader=s.leader_id != "0",
            )
            for s in statuses
        ]

    def reports(self) -> dict[str, str | None]:
        """What every unit with a member says of it through Juju, this one included."""
        units = (self.ctx.me, *self.ctx.peers.peers())
        return {u.unit: u.member_state for u in units if u.member_id}


def marker(raw: dict[str, object] | None) -> m.Marker | None:
    """The marker beside the data, or None when there is none or it does not parse."""
    if not raw:
        return None
    member_id, cluster_id = raw.get("member-id"), raw.get("cluster-id")
    if not (isinstance(member_id, str) and member_id and isinstance(cluster_id, str)):
        return None
    index, release = raw.get("raft-index"), raw.get("etcd-version")
    return m.Marker(
        member_id=member_id,
        cluster_id=cluster_id,
        joining=raw.get("joining") is True,
        raft_index=index if isinstance(index, int) and not isinstance(index, bool) else None,
        release=release if isinstance(release, str) and release else None,
    )
