#!/usr/bin/env python3
"""etcd-k8s: a Kubernetes sidecar charm for etcd. Wires events to the reconcile path."""

from __future__ import annotations

import logging

import ops

import membership as core
from etcd_config import EtcdOptions, InvalidConfig
from reconciler import PEER_RELATION, Outcome, Reconciler, options_digest
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
            peer.relation_departed,
        ):
            framework.observe(event, self._reconcile)

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
        return f"# options-digest: {options_digest(options)}\n" not in text


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
        message += "; config change applies at next restart"
    return ops.ActiveStatus(message)


def app_status(outcome: Outcome, units: int) -> ops.StatusBase:
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
        return ops.ActiveStatus(message)
    return ops.WaitingStatus(message)


if __name__ == "__main__":  # pragma: nocover
    ops.main(EtcdK8sCharm)
