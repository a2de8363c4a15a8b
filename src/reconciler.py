"""One idempotent reconcile path: observe, ask the core for a step, carry it out, repeat.

Any event may run it; it assumes no order of events. Each decision is logged on one line that
starts with `decision:` so an operator can grep for it.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass

import ops
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
    wait_fixed,
)

import membership as core
import peers
from etcd_config import EtcdOptions, MemberConfig, render_config
from etcdctl import Etcdctl, EtcdctlError
from workload import CLIENT_PORT, DATA_DIR, PEER_PORT, Workload

logger = logging.getLogger(__name__)

PEER_RELATION = "etcd-peers"
MAX_STEPS = 8  # a hook never loops forever; anything left waits for the next event
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


def identity(app: str, unit: str, model: str, member_id: str | None = None) -> core.UnitInfo:
    """A unit's member name and URLs: the pod's stable DNS name, never its IP."""
    member_name = unit.replace("/", "-")
    host = f"{member_name}.{app}-endpoints.{model}.svc.cluster.local"
    return core.UnitInfo(
        unit=unit,
        member_name=member_name,
        peer_url=f"http://{host}:{PEER_PORT}",
        client_url=f"http://{host}:{CLIENT_PORT}",
        member_id=member_id,
    )


def options_digest(options: EtcdOptions) -> str:
    return hashlib.sha256(options.model_dump_json().encode()).hexdigest()[:16]


class Reconciler:
    def __init__(self, charm: ops.CharmBase, workload: Workload, options: EtcdOptions):
        self.charm = charm
        self.workload = workload
        self.options = options
        self.relation = charm.model.get_relation(PEER_RELATION)
        assert self.relation is not None
        unit_bag = self.relation.data[charm.unit]
        published = peers.read_unit(charm.unit.name, unit_bag)
        self.me = identity(
            charm.app.name,
            charm.unit.name,
            charm.model.name,
            published.member_id if published else None,
        )
        self._version: tuple[int, int] | None = None

    # ---- observing ------------------------------------------------------------------------------

    @property
    def app_bag(self) -> ops.RelationDataContent:
        assert self.relation is not None
        return self.relation.data[self.charm.app]

    def peer_units(self) -> tuple[core.UnitInfo, ...]:
        assert self.relation is not None
        found = (peers.read_unit(u.name, self.relation.data[u]) for u in self.relation.units)
        return tuple(sorted((u for u in found if u), key=lambda u: u.number))

    def etcdctl(self, others: tuple[core.UnitInfo, ...], running: bool) -> Etcdctl | None:
        endpoints = [self.me.client_url] if running else []
        endpoints += [u.client_url for u in others if u.member_id]
        return Etcdctl(self.workload.run, endpoints) if endpoints else None

    def observe(self) -> tuple[core.Observation, Etcdctl | None]:
        others = self.peer_units()
        running = self.workload.is_running()
        client = self.etcdctl(others, running)
        view = None
        if client is not None:
            try:
                view = client.view()
            except EtcdctlError as error:
                logger.info("no member answered a member list: %s", error.reason)
        obs = core.Observation(
            me=self.me,
            is_leader=self.charm.unit.is_leader(),
            app=peers.read_app(self.app_bag),
            peers=others,
            disk=core.Disk(has_member_data=self.workload.has_member_data()),
            running=running,
            cluster=view,
        )
        return obs, client

    # ---- the loop -------------------------------------------------------------------------------

    def reconcile(self) -> Outcome:
        """Act until the core says wait, idle or blocked, at most MAX_STEPS times."""
        self.publish_me()
        obs, client = self.observe()
        local: core.LocalStep = core.Idle()
        cluster: core.ClusterStep = core.Idle()
        for _ in range(MAX_STEPS):
            local = core.next_local_step(obs, new_token=self._new_token())
            if not self._act_local(local, obs, client):
                cluster = core.next_cluster_step(obs)
                if not self._act_cluster(cluster, obs, client):
                    break
            obs, client = self.observe()
        self.publish_me(obs.cluster)
        return Outcome(local=local, cluster=cluster, view=obs.cluster, me=self.me)

    def publish_me(self, view: core.ClusterView | None = None) -> None:
        if view is not None:
            member = view.find(self.me.member_name, self.me.peer_url)
            if member is not None and member.started and member.id != self.me.member_id:
                self.me = core.UnitInfo(**{**self.me.__dict__, "member_id": member.id})
        assert self.relation is not None
        peers.write_unit(self.relation.data[self.charm.unit], self.me)

    def _new_token(self) -> str:
        return f"{self.charm.app.name}-{uuid.uuid4().hex[:16]}"

    # ---- carrying out steps ---------------------------------------------------------------------

    def _act_local(
        self, step: core.LocalStep, obs: core.Observation, client: Etcdctl | None
    ) -> bool:
        """Carry out `step`; False when it is a resting step (wait, idle, blocked)."""
        if isinstance(step, core.PlanBootstrap):
            logger.info("decision: plan-bootstrap member=%s token=%s", step.member, step.token)
            self.app_bag.update({"bootstrap-member": step.member, "cluster-token": step.token})
            return False  # the plan must be committed before anyone acts on it
        if isinstance(step, core.Bootstrap):
            logger.info("decision: bootstrap member=%s state=new", self.me.member_name)
            self._start("new", f"{self.me.member_name}={self.me.peer_url}", step.token)
            self._await_started()
            return True
        if isinstance(step, core.StartMember):
            logger.info("decision: start-existing member=%s (data on disk)", self.me.member_name)
            self._start("existing", f"{self.me.member_name}={self.me.peer_url}", "existing")
            return True
        if isinstance(step, core.Join):
            logger.info(
                "decision: join-as-learner member=%s id=%s",
                self.me.member_name,
                step.ticket.member_id,
            )
            self._start("existing", step.ticket.initial_cluster, step.token)
            self._await_started()
            return True
        if isinstance(step, core.Promote):
            assert obs.cluster is not None
            return self._promote(self.voters_client(obs.cluster), step.member)
        return False

    def _act_cluster(
        self, step: core.ClusterStep, obs: core.Observation, client: Etcdctl | None
    ) -> bool:
        if isinstance(step, core.RecordCluster):
            logger.info("decision: record-cluster id=%s", step.cluster_id)
            self.app_bag["cluster-id"] = step.cluster_id
            return True
        if isinstance(step, core.AddLearner):
            assert obs.cluster is not None
            logger.info(
                "decision: add-learner unit=%s peer-url=%s", step.unit.unit, step.unit.peer_url
            )
            member = self._add_learner(self.voters_client(obs.cluster), step.unit)
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
            return self._promote(self.voters_client(obs.cluster), step.member)
        return False

    def voters_client(self, view: core.ClusterView) -> Etcdctl:
        """Membership changes go to voters: a learner answers 'rpc not supported for learner'."""
        urls = [m.client_urls[0] for m in view.healthy_voters if m.client_urls]
        return Etcdctl(
            self.workload.run, urls or [m.client_urls[0] for m in view.voters if m.client_urls]
        )

    def _start(self, state: str, initial_cluster: str, token: str) -> None:
        member = MemberConfig(
            name=self.me.member_name,
            data_dir=DATA_DIR,
            peer_url=self.me.peer_url,
            client_url=self.me.client_url,
            initial_cluster=initial_cluster,
            initial_cluster_state="new" if state == "new" else "existing",
            initial_cluster_token=token,
            etcd_version=self.etcd_version(),
        )
        text = f"# options-digest: {options_digest(self.options)}\n"
        self.workload.write_config(text + render_config(member, self.options))
        self.workload.start()

    def etcd_version(self) -> tuple[int, int]:
        if self._version is None:
            self._version = self.workload.etcd_version()
        return self._version

    def _await_started(self) -> None:
        """Wait until this member has published its name to the cluster (it has joined raft)."""
        deadline = time.monotonic() + START_PATIENCE
        while time.monotonic() < deadline:
            obs, _ = self.observe()
            member = obs.cluster and obs.cluster.find(self.me.member_name, self.me.peer_url)
            if member and member.started:
                return
            if not obs.running:
                raise RuntimeError("etcd exited right after it was started; see its log")
            time.sleep(0.2)
        logger.warning(
            "member %s has not published itself after %ss", self.me.member_name, START_PATIENCE
        )

    def _add_learner(self, client: Etcdctl, unit: core.UnitInfo) -> core.Member:
        """etcd refuses a member add until its leader has seen every voter for 5 s (right
        after a promotion, say): that is worth waiting for here, not at the next hook."""
        for attempt in Retrying(
            retry=retry_if_exception(_cluster_unhealthy),
            wait=wait_fixed(0.5),
            stop=stop_after_delay(ADD_PATIENCE),
            reraise=True,
        ):
            with attempt:
                return client.member_add_learner(unit.member_name, unit.peer_url)
        raise AssertionError("unreachable")

    def _promote(self, client: Etcdctl, member: core.Member) -> bool:
        """Promote as soon as etcd accepts it: 'not in sync' means retry now, not next hook."""
        logger.info("decision: promote member=%s id=%s", member.name, member.id)
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_not_in_sync),
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


def _cluster_unhealthy(error: BaseException) -> bool:
    return isinstance(error, EtcdctlError) and error.cluster_unhealthy


def _not_in_sync(error: BaseException) -> bool:
    return isinstance(error, EtcdctlError) and error.learner_not_in_sync
