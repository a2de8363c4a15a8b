"""One idempotent reconcile path: observe, ask the core for a step, carry it out, repeat.

Any event may run it; it assumes no order of events. Each decision is logged on one line that
starts with `decision:` so an operator can grep for it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import ops

import access
import departure
import k8s
import membership as core
import peers
import recovery
import rolling
import tls
from certificates import Offers, TlsFiles, client_cert, paths
from client_relations import ClientRelations
from etcd_config import EtcdOptions, MemberConfig, TlsConfig, render_config
from etcdctl import Etcdctl, EtcdctlError
from workload import CLIENT_PORT, DATA_DIR, PEER_PORT, Workload, ready_command

logger = logging.getLogger(__name__)

PEER_RELATION = "etcd-peers"
# A hook never loops forever; anything left waits for the next event. A leader's own writes
# wake no hook of its own, so one hook carries a whole restart turn plus the TLS step after it.
MAX_STEPS = 24
PROMOTE_PATIENCE = 60.0  # seconds a learner may take to catch up within one hook
START_PATIENCE = 30.0  # seconds a started member may take to publish itself
ADD_PATIENCE = 20.0  # seconds to wait out etcd's "unhealthy cluster" after a membership change


@dataclass(frozen=True)
class Outcome:
    """Where the reconcile ended, for the status."""

    local: core.LocalStep
    cluster: core.ClusterStep
    view: core.ClusterView | None
    me: core.UnitInfo
    verdict: recovery.Verdict | None = None  # where the quorum is, when this unit sees none
    restore: core.RestoreRecord | None = None  # the last whole-cluster restore
    config_pending: bool = False  # this member waits for its turn to restart
    tls: tls.Settings = tls.Settings()
    tls_waits: str | None = None  # why the application's TLS does not move on
    access_waits: str | None = None  # why etcd auth or a client's user does not move on


def identity(
    app: str,
    unit: str,
    model: str,
    member_id: str | None = None,
    peer_scheme: str = "http",
    client_scheme: str = "http",
    domain: str = k8s.DEFAULT_DOMAIN,
) -> core.UnitInfo:
    """A unit's member name and URLs: the pod's stable DNS name, never its IP."""
    member_name = unit.replace("/", "-")
    host = f"{member_name}.{app}-endpoints.{model}.svc.{domain}"
    return core.UnitInfo(
        unit=unit,
        member_name=member_name,
        peer_url=f"{peer_scheme}://{host}:{PEER_PORT}",
        client_url=f"{client_scheme}://{host}:{CLIENT_PORT}",
        member_id=member_id,
    )


DIGEST_PREFIX = "# options-digest: "


def options_digest(options: EtcdOptions, settings: tls.Settings | None = None) -> str:
    """What a member's config is made of, short: a change means a rolling restart. Plaintext
    gives the digest of the options alone, as before TLS existed."""
    text = options.model_dump_json() + (settings.digest_part() if settings else "")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Reconciler:
    def __init__(
        self,
        charm: ops.CharmBase,
        workload: Workload,
        options: EtcdOptions,
        offers: Offers | None = None,
        client_relations: ClientRelations | None = None,
    ):
        self.charm = charm
        self.workload = workload
        self.options = options
        self.offers = offers or Offers.none()
        self.files = TlsFiles(workload)
        self.relation = charm.model.get_relation(PEER_RELATION)
        assert self.relation is not None
        self.domain = k8s.cluster_domain()
        unit_bag = self.relation.data[charm.unit]
        published = peers.read_unit(charm.unit.name, unit_bag)
        self.tls = peers.read_tls(self.app_bag)
        self.me = identity(
            charm.app.name,
            charm.unit.name,
            charm.model.name,
            published.member_id if published else None,
            peer_scheme=tls.peer_scheme(self.tls.peer),
            client_scheme=self._serving_client_scheme(),
            domain=self.domain,
        )
        if published is not None:
            self.me = dataclasses.replace(
                self.me,
                config_digest=published.config_digest,
                member_state=published.member_state,
            )
        self._release: str | None = None
        self._rest: core.LocalStep | None = None  # a step cut short: what the unit waits for
        self.tls_waits: str | None = None
        self.access = access.Access(self, client_relations)
        self._root: tuple[str, str] | None | bool = False  # False: not read yet

    # ---- TLS ------------------------------------------------------------------------------------

    def _serving_client_scheme(self) -> str:
        """The scheme this member serves clients with: its config file says, once written."""
        text = self.workload.config_text() if self.workload.ready else None
        if text is None:
            return tls.client_scheme(self.tls.client)
        return "https" if 'advertise-client-urls: "https://' in text else "http"

    def client(self, endpoints: list[str], timeout: float = 5.0) -> Etcdctl:
        """etcdctl against `endpoints`, with this unit's client certificate for https ones."""
        return Etcdctl(
            self.workload.run, endpoints, timeout=timeout, cert=client_cert(), auth=self.root_auth()
        )

    def root_auth(self) -> tuple[str, str] | None:
        """Root's credentials once the secret exists: etcdctl sends them whether or not auth is
        on (etcd ignores them while it is off), so a cluster restored with auth on is reached."""
        if self._root is False:
            password = access.root_password(self.charm, self.app_bag)
            self._root = ("root", password) if password else None
        return self._root  # type: ignore[return-value]

    def remember_root(self, password: str) -> None:
        self._root = ("root", password)

    def sync_tls(self) -> None:
        """Put the offered certificates in use when safe, keep the CA bundles current on disk,
        and say in peer data what this unit has and what it waits for."""
        assert self.relation is not None
        bag = self.relation.data[self.charm.unit]
        waiting: list[str] = []
        for kind in tls.KINDS:
            record = self.tls.record(kind)
            in_use = self.files.in_use(kind)
            offered = self.offers.offered.get(kind)
            related = self.offers.related.get(kind, False)
            step = tls.next_install(record, related, in_use, offered)
            if isinstance(step, tls.Install):
                logger.info(
                    "decision: install-%s-certificate ca=%s cert=%s",
                    kind,
                    step.material.ca_fp,
                    step.material.cert_fp,
                )
                self.files.install(kind, step.material)
                in_use = step.material
            elif isinstance(step, tls.Remove):
                logger.info("decision: remove-%s-certificate (TLS off, relation gone)", kind)
                self.files.remove(kind)
                in_use = None
            elif step.reason:
                logger.info("%s certificate: %s", kind, step.reason)
            self.files.write_bundle(kind, record.bundle)
            peers.write_unit_tls(bag, kind, tls.unit_tls(in_use, offered))
            if tls.needs_material(record) and in_use is None:
                waiting.append(f"a {kind} certificate (certificates relation)")
        self.me = dataclasses.replace(self.me, waiting_for=" and ".join(waiting) or None)

    def _tls_config(self) -> TlsConfig:
        peer, client = paths(tls.PEER), paths(tls.CLIENT)
        return TlsConfig(
            peer=tls.needs_material(self.tls.peer),
            client=tls.needs_material(self.tls.client),
            peer_cert=peer.cert,
            peer_key=peer.key,
            peer_ca=peer.bundle,
            client_cert=client.cert,
            client_key=client.key,
            client_ca=client.bundle,
        )

    def _check_command(self) -> list[str]:
        return ready_command(self.me.client_url, client_cert().args())

    def start_member(self) -> None:
        self.workload.start(self._check_command())

    def restart_member(self) -> None:
        self.workload.restart(self._check_command())

    def _act_tls(self, obs: core.Observation) -> bool:
        """Leader: the next step of each kind's record, once every running member runs the
        config of the current ones and nothing else is under way."""
        if not obs.is_leader or obs.app.cluster_id is None or obs.cluster is None:
            return False
        assert self.relation is not None
        units = {
            u.name: {k: peers.read_unit_tls(u.name, self.relation.data[u], k) for k in tls.KINDS}
            for u in self.relation.units
        }
        units[self.charm.unit.name] = {
            k: peers.read_unit_tls(self.me.unit, self.relation.data[self.charm.unit], k)
            for k in tls.KINDS
        }
        members = frozenset(u.unit for u in obs.units if u.member_id and u.config_digest)
        steps = {
            kind: tls.next_record(
                kind,  # type: ignore[arg-type]
                self.tls.record(kind),
                self.offers.related.get(kind, False),
                {name: info[kind] for name, info in units.items()},
                members,
                self.access.extra_trust() if kind == tls.CLIENT else (),
            )
            for kind in tls.KINDS
        }
        if self.access.blocks_client_off(steps[tls.CLIENT]):
            steps[tls.CLIENT] = tls.Wait("client TLS goes off once etcd auth is off")
        waits = [step.reason for step in steps.values() if isinstance(step, tls.Wait)]
        busy = _busy(obs)
        if busy:
            # Say so only when a TLS step is due: a plain config roll is not TLS waiting.
            due = any(isinstance(step, tls.NewRecord) for step in steps.values())
            self.tls_waits = "; ".join([busy] if due else waits) or None
            return False
        acted = False
        for kind, step in steps.items():
            if isinstance(step, tls.NewRecord):
                logger.info(
                    "decision: tls-%s stage=%s bundle=%s (%s)",
                    kind,
                    step.record.stage,
                    ",".join(step.record.bundle_fps) or "-",
                    step.why,
                )
                peers.write_tls(self.app_bag, kind, step.record)
                acted = True
        self.tls_waits = "; ".join(waits) or None
        if acted:
            self.tls = peers.read_tls(self.app_bag)
            self.me = dataclasses.replace(
                self.me,
                peer_url=identity(
                    self.charm.app.name,
                    self.me.unit,
                    self.charm.model.name,
                    peer_scheme=tls.peer_scheme(self.tls.peer),
                    domain=self.domain,
                ).peer_url,
            )
        return acted

    # ---- observing ------------------------------------------------------------------------------

    @property
    def app_bag(self) -> ops.RelationDataContent:
        assert self.relation is not None
        return self.relation.data[self.charm.app]

    def peer_units(self) -> tuple[core.UnitInfo, ...]:
        assert self.relation is not None
        found = (peers.read_unit(u.name, self.relation.data[u]) for u in self.relation.units)
        return tuple(sorted((u for u in found if u), key=lambda u: u.number))

    @property
    def solo_cluster(self) -> str:
        """`--initial-cluster` naming only this member: etcd ignores it when data exists."""
        return f"{self.me.member_name}={self.me.peer_url}"

    def etcdctl(self, others: tuple[core.UnitInfo, ...], running: bool) -> Etcdctl | None:
        endpoints = [self.me.client_url] if running else []
        endpoints += [u.client_url for u in others if u.member_id]
        return self.client(endpoints) if endpoints else None

    def observe(self) -> core.Observation:
        others = self.peer_units()
        running = self.workload.is_running()
        app = peers.read_app(self.app_bag)
        view = self._live_view(self.etcdctl(others, running), app.cluster_id)
        assert self.relation is not None
        present = {u.name.replace("/", "-") for u in self.relation.units} | {self.me.member_name}
        running_digest = self._running_digest() if running else None
        if running_digest != self.me.config_digest:  # what this unit runs now, published at the end
            self.me = dataclasses.replace(self.me, config_digest=running_digest)
        obs = core.Observation(
            me=self.me,
            is_leader=self.charm.unit.is_leader(),
            app=app,
            peers=others,
            disk=self.disk(),
            running=running,
            cluster=view,
            present=frozenset(present),
            config=core.ConfigState(
                running_digest=running_digest,
                wanted_digest=options_digest(self.options, self.tls),
            ),
        )
        return obs

    def live_view(self, local_only: bool = False) -> core.ClusterView | None:
        """The member list with health, and nothing else of the observation (for actions).
        `local_only`: ask this unit's member alone."""
        if local_only:
            client: Etcdctl | None = self.client([self.me.client_url])
        else:
            client = self.etcdctl(self.peer_units(), self.workload.is_running())
        return self._live_view(client, peers.read_app(self.app_bag).cluster_id)

    def _live_view(self, client: Etcdctl | None, recorded: str | None) -> core.ClusterView | None:
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

    def _view_of(self, cluster_id: str | None, endpoints: list[str]) -> core.ClusterView | None:
        """After a restore a removed member of the old cluster may answer for a while: ask
        each endpoint alone for the view of the recorded cluster before taking another one."""
        for endpoint in endpoints:
            try:
                view = self.client([endpoint]).view()
            except EtcdctlError:
                continue
            if view.cluster_id == cluster_id:
                return view
        return None

    def _running_digest(self) -> str | None:
        text = self.workload.config_text() or ""
        first = text.split("\n", 1)[0]
        return first.removeprefix(DIGEST_PREFIX) if first.startswith(DIGEST_PREFIX) else None

    def disk(self) -> core.Disk:
        if not self.workload.has_member_data():
            return core.Disk()
        return core.Disk(has_member_data=True, marker=_marker(self.workload.read_marker()))

    # ---- the loop -------------------------------------------------------------------------------

    def reconcile(self) -> Outcome:
        """Act until the core says wait, idle or blocked, at most MAX_STEPS times."""
        self.sync_tls()
        self.publish_me()
        obs = self.observe()
        self.access.decide(obs)
        local: core.LocalStep = core.Idle()
        cluster: core.ClusterStep = core.Idle()
        for _ in range(MAX_STEPS):
            local = core.next_local_step(obs, new_token=self._new_token())
            acted = self._act_local(local, obs)
            if self._rest is not None:
                local, self._rest = self._rest, None
                break
            if not acted and isinstance(local, core.Idle):
                acted = self._act_restart(rolling.next_restart_step(obs), obs)
            if not acted:
                cluster = core.next_cluster_step(obs)
                acted = self._act_cluster(cluster, obs)
                if not acted and isinstance(cluster, core.Idle):
                    acted = self._act_turn(rolling.next_turn_step(obs))
                    if not acted:
                        acted = self._act_tls(obs)
                    if not acted:
                        acted = self.access.act_auth(obs) or self.access.act_clients(obs)
            if not acted:
                break
            obs = self.observe()
        else:
            logger.warning(
                "reconcile stopped after %s steps; the rest waits for the next event", MAX_STEPS
            )
        self.me = dataclasses.replace(self.me, member_state=core.member_state(obs))
        if isinstance(local, core.HoldData):  # the leader must not add this unit anew
            held = "an operator's decision on the data it holds (discard-data)"
            self.me = dataclasses.replace(self.me, waiting_for=held)
        self.publish_me(obs)
        if obs.is_leader:
            self.access.answer(obs)
        verdict = None
        if obs.app.cluster_id is not None and not recovery.has_quorum(obs.cluster):
            verdict = recovery.judge(self.me.unit, departure.survivors(self), self.reports())
        return Outcome(
            local=local,
            cluster=cluster,
            view=obs.cluster,
            me=self.me,
            verdict=verdict,
            restore=obs.app.restore,
            config_pending=rolling.pending(obs),
            tls=self.tls,
            tls_waits=self.tls_waits,
            access_waits=self.access.waits,
        )

    def reports(self) -> dict[str, str | None]:
        """What every unit with a member says of it through Juju, this one included."""
        units = (self.me, *self.peer_units())
        return {u.unit: u.member_state for u in units if u.member_id}

    def publish_me(self, obs: core.Observation | None = None) -> None:
        self.publish_view(obs.cluster if obs else None)

    def publish_view(self, view: core.ClusterView | None) -> None:
        """Mark the data with its member and cluster, and say who this unit is in peer data."""
        if view is not None and self.workload.is_running():
            member = view.find(self.me.member_name, self.me.peer_url)
            if member is not None and member.started:
                self._mark(member.id, view.cluster_id, view.index_of(member.id))
                if member.id != self.me.member_id:
                    self.me = dataclasses.replace(self.me, member_id=member.id)
        assert self.relation is not None
        peers.write_unit(self.relation.data[self.charm.unit], self.me)

    def _mark(self, member_id: str, cluster_id: str, raft_index: int | None) -> None:
        """Record beside the data whose member it is and how far its log got, to tell stale
        data apart on return (and data that is ahead of a cluster that dropped it)."""
        raw = self.workload.read_marker()
        old = _marker(raw)
        if old and (old.member_id, old.cluster_id) == (member_id, cluster_id) and not old.joining:
            raft_index = max(raft_index or 0, old.raft_index or 0) or None
        wanted: dict[str, object] = {"member-id": member_id, "cluster-id": cluster_id}
        if raft_index is not None:
            wanted["raft-index"] = raft_index
        if raw != wanted:
            self.workload.write_marker(wanted)

    def _new_token(self) -> str:
        return f"{self.charm.app.name}-{uuid.uuid4().hex[:16]}"

    # ---- carrying out steps ---------------------------------------------------------------------

    def _act_local(self, step: core.LocalStep, obs: core.Observation) -> bool:
        """Carry out `step`; False when it is a resting step (wait, idle, blocked)."""
        if isinstance(step, core.PlanBootstrap):
            logger.info("decision: plan-bootstrap member=%s token=%s", step.member, step.token)
            self.app_bag.update({"bootstrap-member": step.member, "cluster-token": step.token})
            return False  # the plan must be committed before anyone acts on it
        if isinstance(step, core.Bootstrap):
            logger.info("decision: bootstrap member=%s state=new", self.me.member_name)
            self._start("new", self.solo_cluster, step.token)
            self.await_started()
            return True
        if isinstance(step, core.StartMember):
            logger.info("decision: start-existing member=%s (data on disk)", self.me.member_name)
            self._start("existing", self.solo_cluster, "existing")
            return True
        if isinstance(step, core.Join):
            return self._join(step, obs)
        if isinstance(step, core.Promote):
            assert obs.cluster is not None
            return self._promote(self.leader_client(obs.cluster), step.member)
        if isinstance(step, core.WipeStaleData):
            logger.warning(
                "decision: wipe-stale-data member=%s (%s)", self.me.member_name, step.reason
            )
            self.workload.wipe_data()  # stops etcd first
            return True
        if isinstance(step, core.DropSuperseded):
            logger.warning(
                "decision: drop-superseded-data member=%s (%s)", self.me.member_name, step.reason
            )
            self.workload.stop()
            self.workload.wipe_data()
            self.me = dataclasses.replace(self.me, member_id=None)
            return True
        if isinstance(step, core.RemoveMember):
            assert obs.cluster is not None
            return self.remove_member(obs.cluster, step)
        return False

    def _join(self, step: core.Join, obs: core.Observation) -> bool:
        """Start as the learner the leader added. The marker says "joining" until the member
        has published itself: if etcd exits first (no peer reachable, say), what it left in
        the data dir is no member's log, so it goes, and the unit tries again next hook."""
        ticket = step.ticket
        logger.info(
            "decision: join-as-learner member=%s id=%s", self.me.member_name, ticket.member_id
        )
        self.workload.write_marker(
            {"member-id": ticket.member_id, "cluster-id": obs.app.cluster_id, "joining": True}
        )
        self._start("existing", ticket.initial_cluster, step.token)
        try:
            self.await_started()
        except MemberExited as error:
            logger.warning(
                "decision: abandon-join member=%s id=%s (%s)",
                self.me.member_name,
                ticket.member_id,
                error,
            )
            self.workload.wipe_data()
            self._rest = core.Wait(
                f"could not join as learner {ticket.member_id}: etcd exited right after it was "
                "started (is a voter reachable from this pod?); trying again on the next hook"
            )
            return False
        return True

    def _act_cluster(self, step: core.ClusterStep, obs: core.Observation) -> bool:
        if isinstance(step, core.RecordCluster):
            logger.info("decision: record-cluster id=%s", step.cluster_id)
            self.app_bag["cluster-id"] = step.cluster_id
            return True
        if isinstance(step, core.AddLearner):
            assert obs.cluster is not None
            logger.info(
                "decision: add-learner unit=%s peer-url=%s", step.unit.unit, step.unit.peer_url
            )
            member = self._add_learner(obs.cluster, step.unit)
            view = core.with_member_added(obs.cluster, member)
            ticket = core.ticket_for(step.unit, member.id, view)
            logger.info("decision: publish-ticket member=%s id=%s", ticket.member_name, member.id)
            peers.write_ticket(self.app_bag, ticket)
            return True
        if isinstance(step, core.PublishTicket):
            logger.info(
                "decision: publish-ticket member=%s id=%s",
                step.ticket.member_name,
                step.ticket.member_id,
            )
            peers.write_ticket(self.app_bag, step.ticket)
            return True
        if isinstance(step, core.ClearTicket):
            logger.info("decision: clear-ticket (no learner left)")
            peers.write_ticket(self.app_bag, None)
            return True
        if isinstance(step, core.Promote):
            assert obs.cluster is not None
            return self._promote(self.leader_client(obs.cluster), step.member)
        if isinstance(step, core.RemoveMember):
            assert obs.cluster is not None
            return self.remove_member(obs.cluster, step)
        return False

    def _act_restart(self, step: rolling.RestartStep, obs: core.Observation) -> bool:
        if isinstance(step, core.MoveLeader):
            assert obs.cluster is not None
            self.move_leader(obs.cluster, step.to, "restart")
            return True
        if isinstance(step, rolling.Restart):
            if step.peer_url is not None:
                assert obs.cluster is not None
                self._update_peer_url(obs.cluster, step.peer_url)
            logger.info("decision: restart member=%s config=%s", self.me.member_name, step.digest)
            self.write_config("existing", self.solo_cluster, "existing")
            self.restart_member()
            self.await_healthy_voter()
            return True
        return False

    def _act_turn(self, step: rolling.TurnStep) -> bool:
        if isinstance(step, rolling.GrantTurn):
            logger.info("decision: grant-restart-turn unit=%s", step.unit)
            self.app_bag["restart-turn"] = step.unit
            return True
        if isinstance(step, rolling.ReleaseTurn):
            logger.info("decision: release-restart-turn unit=%s", step.unit)
            self.app_bag["restart-turn"] = ""
            return True
        return False

    def _update_peer_url(self, view: core.ClusterView, url: str) -> None:
        """Peer TLS switches scheme: the others dial the new URL from now on; this member
        restarts with the matching listener right after (a follower's brief absence)."""
        member = view.find(self.me.member_name, self.me.peer_url)
        assert member is not None
        logger.info("decision: member-update id=%s peer-url=%s", member.id, url)
        client = self.leader_client(view)
        _patiently(lambda: client.member_update(member.id, url))

    def move_leader(self, view: core.ClusterView, to: core.Member, why: str) -> None:
        logger.info("decision: move-leader to=%s id=%s (%s)", to.name, to.id, why)
        urls = [m.client_urls[0] for m in view.voters if m.client_urls]
        voters = self.client(urls)
        _patiently(functools.partial(voters.move_leader, to.id))

    def await_healthy_voter(
        self, local_only: bool = False, patience: float = START_PATIENCE * 2
    ) -> core.ClusterView:
        """A restarted member counts again once it is a healthy voter with a leader in sight;
        the next unit's turn waits for that. `local_only`: judge by this member's own answers
        (right after a restore, when removed members of the old cluster may still answer)."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if not self.workload.is_running():
                raise RuntimeError("etcd exited right after it was started; see its log")
            view = self.live_view(local_only)
            member = view.find(self.me.member_name, self.me.peer_url) if view else None
            healthy = view and member and not member.is_learner and member.id in view.healthy_ids
            if healthy and view and view.leader_id:
                return view
            time.sleep(0.2)
        raise RuntimeError(f"{self.me.member_name} is not a healthy voter after {patience:.0f}s")

    def leader_client(self, view: core.ClusterView, without: str | None = None) -> Etcdctl:
        """Membership changes go to the raft leader itself: a follower forwards them over the
        peer API without the caller's credentials, which the leader refuses once auth is on
        (etcd 3.5.1 then retries until "context deadline exceeded"). `without`: never ask
        this member (it is being removed, and stops as it applies its own removal)."""
        leader = next(
            (
                m
                for m in view.voters
                if m.id == view.leader_id and m.client_urls and m.id != without
            ),
            None,
        )
        if leader is not None:
            return self.client([leader.client_urls[0]])
        others = dataclasses.replace(
            view, members=tuple(m for m in view.members if m.id != without)
        )
        return self.voters_client(others)

    def voters_client(self, view: core.ClusterView) -> Etcdctl:
        """Membership changes go to voters: a learner answers 'rpc not supported for learner'."""
        urls = [m.client_urls[0] for m in view.healthy_voters if m.client_urls]
        return self.client(urls or [m.client_urls[0] for m in view.voters if m.client_urls])

    def _start(self, state: str, initial_cluster: str, token: str) -> None:
        self.write_config(state, initial_cluster, token)
        self.start_member()

    def write_config(
        self, state: str, initial_cluster: str, token: str, force_new_cluster: bool = False
    ) -> None:
        client_url = identity(
            self.charm.app.name,
            self.me.unit,
            self.charm.model.name,
            client_scheme=tls.client_scheme(self.tls.client),
            domain=self.domain,
        ).client_url
        member = MemberConfig(
            name=self.me.member_name,
            data_dir=DATA_DIR,
            peer_url=self.me.peer_url,
            client_url=client_url,
            tls=self._tls_config(),
            initial_cluster=initial_cluster,
            initial_cluster_state="new" if state == "new" else "existing",
            initial_cluster_token=token,
            etcd_version=self.etcd_version(),
            force_new_cluster=force_new_cluster,
        )
        # The bundle the digest names, on disk before etcd reads it (the leader may have
        # changed the record earlier in this very hook).
        for kind in tls.KINDS:
            self.files.write_bundle(kind, self.tls.record(kind).bundle)
        text = f"{DIGEST_PREFIX}{options_digest(self.options, self.tls)}\n"
        self.workload.write_config(text + render_config(member, self.options))
        # etcd serves what the file says once (re)started, which follows right away.
        self.me = dataclasses.replace(self.me, client_url=client_url)

    def etcd_release(self) -> str:
        """Read from the image once per hook; it changes only with the pod."""
        if self._release is None:
            self._release = self.workload.etcd_release()
        return self._release

    def etcd_version(self) -> tuple[int, int]:
        major, minor = self.etcd_release().split(".")[:2]
        return int(major), int(minor)

    def await_started(self) -> None:
        """Wait until this member has published its name to the cluster (it has joined raft)."""
        deadline = time.monotonic() + START_PATIENCE
        while time.monotonic() < deadline:
            obs = self.observe()
            member = obs.cluster and obs.cluster.find(self.me.member_name, self.me.peer_url)
            if member and member.started:
                return
            if not obs.running:
                raise MemberExited("etcd exited right after it was started; see its log")
            time.sleep(0.2)
        logger.warning(
            "member %s has not published itself after %ss", self.me.member_name, START_PATIENCE
        )

    def remove_member(self, view: core.ClusterView, step: core.RemoveMember) -> bool:
        member = step.member
        logger.info(
            "decision: remove-member id=%s name=%s (%s)", member.id, member.name, step.reason
        )
        client = self.leader_client(view, without=member.id)
        try:
            _patiently(lambda: client.member_remove(member.id))
        except EtcdctlError as error:
            if not error.member_not_found:
                raise
        return True

    def _add_learner(self, view: core.ClusterView, unit: core.UnitInfo) -> core.Member:
        """etcd refuses a member add until its leader has seen every voter for 5 s (right
        after a promotion, say): that is worth waiting for here, not at the next hook. A try
        that timed out may have gone through: the retry then finds the peer URL taken, and
        the member is the one the list holds for it."""
        client = self.leader_client(view)
        added: list[core.Member] = []

        def add() -> None:
            try:
                added.append(client.member_add_learner(unit.member_name, unit.peer_url))
            except EtcdctlError as error:
                if not error.peer_url_exists:
                    raise
                found = [m for m in client.member_list().members if unit.peer_url in m.peer_urls]
                if not found:
                    raise
                added.append(found[0])

        _patiently(add)
        return added[-1]

    def _promote(self, client: Etcdctl, member: core.Member) -> bool:
        """Promote as soon as etcd accepts it: 'not in sync' means retry now, not next hook."""
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception,
            stop_after_delay,
            wait_exponential,
        )

        logger.info("decision: promote member=%s id=%s", member.name, member.id)
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_promote_retryable),
                wait=wait_exponential(multiplier=0.1, max=1.0),
                stop=stop_after_delay(PROMOTE_PATIENCE),
            ):
                with attempt:
                    client.member_promote(member.id)
        except RetryError:
            logger.warning("learner %s still not in sync after %ss", member.id, PROMOTE_PATIENCE)
            return False
        except EtcdctlError as error:
            if error.not_a_learner:
                return True  # someone else promoted it first
            raise
        logger.info("promoted member=%s id=%s", member.name, member.id)
        return True


def _busy(obs: core.Observation) -> str | None:
    """Why the application's TLS must not take its next step now."""
    if rolling.next_turn_step(obs) != core.Idle() or obs.app.restart_turn:
        return "TLS waits for the rolling restart in progress"
    behind = [u.unit for u in obs.units if u.config_digest and rolling.behind(obs, u)]
    if behind:
        return f"TLS waits for {', '.join(behind)} to restart"
    if obs.app.join is not None or (obs.cluster and obs.cluster.learners):
        return "TLS waits for the joining unit"
    if obs.cluster and len(obs.cluster.healthy_voters) < len(obs.cluster.voters):
        return "TLS waits: not every voter is healthy"
    return None


def _patiently(call: Callable[[], object]) -> None:
    """A membership change right after another meets etcd's 5 s connectivity rule
    ("unhealthy cluster"): wait it out within the hook."""
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

    for attempt in Retrying(
        retry=retry_if_exception(_cluster_unhealthy),
        wait=wait_fixed(0.5),
        stop=stop_after_delay(ADD_PATIENCE),
        reraise=True,
    ):
        with attempt:
            call()


def _cluster_unhealthy(error: BaseException) -> bool:
    """etcd's 5 s rule after a membership change, or a change that did not commit in time
    (seen right after a promotion with auth on): both pass, and a retry is safe."""
    return isinstance(error, EtcdctlError) and (error.cluster_unhealthy or error.timed_out)


class MemberExited(RuntimeError):
    """etcd stopped right after the charm started it."""


def _marker(raw: dict[str, object] | None) -> core.Marker | None:
    """The marker beside the data, or None when there is none or it does not parse."""
    if not raw:
        return None
    member_id, cluster_id = raw.get("member-id"), raw.get("cluster-id")
    if not (isinstance(member_id, str) and member_id and isinstance(cluster_id, str)):
        return None
    index = raw.get("raft-index")
    return core.Marker(
        member_id=member_id,
        cluster_id=cluster_id,
        joining=raw.get("joining") is True,
        raft_index=index if isinstance(index, int) and not isinstance(index, bool) else None,
    )


def _promote_retryable(error: BaseException) -> bool:
    """Not in sync yet, or the conf change did not commit in time (seen right after a
    leadership change, with auth on): both pass; any other answer is final."""
    return isinstance(error, EtcdctlError) and (error.learner_not_in_sync or error.timed_out)
