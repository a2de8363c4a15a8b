#!/usr/bin/env python3
"""etcd-k8s: a Kubernetes sidecar charm for etcd. Wires events to the reconcile path."""

from __future__ import annotations

import logging

import ops

import departure
import membership as core
from etcd_config import EtcdOptions, InvalidConfig
from reconciler import DIGEST_PREFIX, PEER_RELATION, Outcome, Reconciler, options_digest
from recovery import RebuildRefused
from workload import Workload

logger = logging.getLogger(__name__)


class EtcdK8sCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.workload = Workload(self.unit.get_container("etcd"))
        peer = self.on[PEER_RELATION]
        for event in (
            self.on.install,
            self.on.upgrade_charm,
            self.on.config_changed,
            self.on.start,
            self.on.leader_elected,
            self.on.update_status,
            self.on.etcd_pebble_ready,
            self.on.data_storage_attached,
            peer.relation_created,
            peer.relation_joined,
            peer.relation_changed,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(peer.relation_departed, self._on_peer_departed)
        framework.observe(self.on.rebuild_cluster_action, self._on_rebuild_cluster)
        framework.observe(self.on.data_storage_detaching, self._on_leaving)

    def _on_rebuild_cluster(self, event: ops.ActionEvent) -> None:
        force = event.params.get("force", False)
        if not isinstance(force, bool):
            event.fail(f"force must be true or false, not {force!r}")
            return
        if not self.workload.ready or self.model.get_relation(PEER_RELATION) is None:
            event.fail("the etcd container or the peer relation is not ready on this unit")
            return
        try:
            options = EtcdOptions.from_charm_config(dict(self.config))
        except InvalidConfig as error:
            event.fail(f"fix the config first: {error}")
            return
        try:
            results = departure.rebuild(Reconciler(self, self.workload, options), force)
        except RebuildRefused as error:
            event.fail(str(error))
            return
        event.set_results(results)
        self._reconcile(event)

    def _on_peer_departed(self, event: ops.RelationDepartedEvent) -> None:
        if event.departing_unit == self.unit:
            self._on_leaving(event)
        else:
            self._reconcile(event)

    def _on_leaving(self, _: ops.EventBase) -> None:
        """This unit is being removed (scale down): its member leaves before its pod goes."""
        if not self.workload.ready or self.model.get_relation(PEER_RELATION) is None:
            return
        self.unit.status = ops.MaintenanceStatus("leaving the etcd cluster")
        options = EtcdOptions.model_construct()  # leaving starts nothing: options are not used
        departure.leave(Reconciler(self, self.workload, options))
        self.unit.status = ops.MaintenanceStatus("left the etcd cluster; unit is being removed")

    def _reconcile(self, _: ops.EventBase) -> None:
        try:
            options = EtcdOptions.from_charm_config(dict(self.config))
        except InvalidConfig as error:
            # Touch nothing: the running member keeps the config it was started with.
            logger.warning("decision: hold (invalid config: %s)", error)
            self.unit.status = ops.BlockedStatus(f"invalid config: {error}")
            return
        if not self.workload.ready:
            self.unit.status = ops.WaitingStatus("waiting for the etcd container (Pebble)")
            return
        if self.model.get_relation(PEER_RELATION) is None:
            self.unit.status = ops.WaitingStatus("waiting for the peer relation")
            return
        outcome = Reconciler(self, self.workload, options).reconcile()
        self._set_status(outcome, options)

    def _set_status(self, outcome: Outcome, options: EtcdOptions) -> None:
        self.unit.status = unit_status(outcome, self._config_pending(options))
        if self.unit.is_leader():
            units = 1 + len(self.model.get_relation(PEER_RELATION).units)  # type: ignore[union-attr]
            self.app.status = app_status(outcome, units)

    def _config_pending(self, options: EtcdOptions) -> bool:
        if not self.workload.is_running():
            return False
        text = self.workload.config_text() or ""
        return not text.startswith(f"{DIGEST_PREFIX}{options_digest(options)}\n")


def unit_status(outcome: Outcome, config_pending: bool) -> ops.StatusBase:
    step = outcome.local
    if isinstance(step, core.Blocked):
        return ops.BlockedStatus(step.reason)
    if isinstance(step, core.Wait):
        return ops.WaitingStatus(step.reason)
    if isinstance(step, core.PlanBootstrap):
        return ops.MaintenanceStatus("bootstrap planned: this unit starts the cluster next hook")
    view = outcome.view
    member = view.find(outcome.me.member_name, outcome.me.peer_url) if view else None
    if member is None or view is None:
        return ops.WaitingStatus("etcd member not yet listed")
    if member.is_learner:
        role = "learner (catching up)"
    elif member.id == view.leader_id:
        role = "leader"
    else:
        role = "follower"
    message = f"{role}, member {member.id}"
    if config_pending:
        message += "; config change waits for a rolling restart"
    return ops.ActiveStatus(message)


def app_status(outcome: Outcome, units: int) -> ops.StatusBase:
    if outcome.quorum_lost:
        return ops.BlockedStatus(outcome.quorum_lost)
    step = outcome.cluster
    if isinstance(step, core.Blocked):
        return ops.BlockedStatus(step.reason)
    view = outcome.view
    if view is None:
        if isinstance(outcome.local, core.Wait | core.Blocked):
            return ops.WaitingStatus(outcome.local.reason)
        return ops.WaitingStatus("no etcd member answers")
    healthy = len(view.healthy_voters)
    message = f"{healthy}/{units} units are healthy voters"
    if view.learners:
        message += f"; learner {view.learners[0].name or view.learners[0].id} joining"
    if isinstance(step, core.Wait):
        message += f"; {step.reason}"
    if healthy == units and not view.learners:
        if units == 2:
            message += "; 2 members tolerate no failure: add a unit"
        elif units == 1:
            message += "; a single member tolerates no failure"
        return ops.ActiveStatus(message)
    return ops.WaitingStatus(message)


if __name__ == "__main__":  # pragma: nocover
    ops.main(EtcdK8sCharm)
