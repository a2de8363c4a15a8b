#!/usr/bin/env python3
"""etcd-k8s: a Kubernetes sidecar charm for etcd. Wires events to the reconcile path."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ops

import access
import departure
import membership as core
import tls
from certificates import RELATIONS, Certificates
from client_relations import RELATION as CLIENT_RELATION
from client_relations import ClientRelations
from etcd_config import EtcdOptions, InvalidConfig
from etcdctl import EtcdctlError
from reconciler import PEER_RELATION, Outcome, Reconciler
from recovery import RebuildRefused
from toolbox import ActionRefused, PartialFailure
from workload import CLIENT_PORT, STORAGE_ROOT, Workload

if TYPE_CHECKING:
    from backups import Backups

logger = logging.getLogger(__name__)


def _operations() -> Any:
    """The actions' module, loaded only when an action runs: hooks never need it."""
    import operations

    return operations


class EtcdK8sCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.workload = Workload(self.unit.get_container("etcd"))
        # The library re-sends a request whose SANs changed (a recreated pod has a new IP).
        self.certificates = Certificates(
            self, refresh=[self.on.config_changed, self.on.upgrade_charm, self.on.update_status]
        )
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
        # The library observes these first (it was set up above): by the time the reconcile
        # runs, whatever the provider sent is in the library's secrets.
        for relation in RELATIONS.values():
            for event in ("relation_created", "relation_changed", "relation_broken"):
                framework.observe(getattr(self.on[relation], event), self._reconcile)
        for event in ("relation_created", "relation_changed", "relation_broken"):
            framework.observe(getattr(self.on[CLIENT_RELATION], event), self._reconcile)
        # A client charm's new certificate comes as a new revision of its secret.
        framework.observe(self.on.secret_changed, self._reconcile)
        framework.observe(peer.relation_departed, self._on_peer_departed)
        framework.observe(self.on.get_root_password_action, self._on_get_root_password)
        framework.observe(self.on.rotate_root_password_action, self._on_rotate_root_password)
        framework.observe(self.on.rebuild_cluster_action, self._on_rebuild_cluster)
        framework.observe(self.on.discard_data_action, self._on_discard_data)
        framework.observe(self.on.snapshot_action, self._on_snapshot)
        framework.observe(self.on.list_snapshots_action, self._on_list_snapshots)
        framework.observe(self.on.remove_snapshot_action, self._on_remove_snapshot)
        framework.observe(self.on.restore_action, self._on_restore)
        framework.observe(self.on.defrag_action, self._on_defrag)
        framework.observe(self.on.promote_action, self._on_promote)
        framework.observe(self.on.move_leader_action, self._on_move_leader)
        framework.observe(self.on.compact_action, self._on_compact)
        framework.observe(self.on.alarm_list_action, self._on_alarm_list)
        framework.observe(self.on.alarm_disarm_action, self._on_alarm_disarm)
        framework.observe(self.on.cluster_status_action, self._on_cluster_status)
        framework.observe(self.on.data_storage_detaching, self._on_leaving)

    def _on_rebuild_cluster(self, event: ops.ActionEvent) -> None:
        self._run_action(
            event,
            lambda rec: departure.rebuild(rec, _bool(event, "force")),
            then=lambda _: self._reconcile(event),
        )

    def _on_discard_data(self, event: ops.ActionEvent) -> None:
        self._run_action(
            event,
            lambda rec: departure.discard(rec, self._backups().root),
            then=lambda _: self._reconcile(event),
        )

    # ---- the operator's actions: see actions.yaml; the work is in operations and restore -------

    def _on_get_root_password(self, event: ops.ActionEvent) -> None:
        self._run_action(event, access.show_root_password)

    def _on_rotate_root_password(self, event: ops.ActionEvent) -> None:
        self._run_action(event, access.rotate_root_password, leader_only=True)

    def _on_snapshot(self, event: ops.ActionEvent) -> None:
        def work(rec: Reconciler) -> dict[str, Any]:
            name, keep = _text(event, "name"), _int(event, "keep", 0) or 0
            return _operations().snapshot(rec, self._backups(), name, keep)

        self._run_action(event, work)

    def _on_list_snapshots(self, event: ops.ActionEvent) -> None:
        self._run_action(event, lambda _: _operations().list_snapshots(self._backups()), etcd=False)

    def _on_remove_snapshot(self, event: ops.ActionEvent) -> None:
        def work(_: Reconciler) -> dict[str, Any]:
            name = _required(event, "name")
            return _operations().remove_snapshot(self._backups(), name)

        self._run_action(event, work, etcd=False)

    def _on_restore(self, event: ops.ActionEvent) -> None:
        def work(rec: Reconciler) -> dict[str, Any]:
            name, force = _required(event, "name"), _bool(event, "force")
            from restore import restore

            return restore(rec, self._backups(), name, force)

        self._run_action(
            event,
            work,
            leader_only=True,
            then=lambda _: self._reconcile(event),
        )

    def _on_defrag(self, event: ops.ActionEvent) -> None:
        self._run_action(
            event,
            lambda rec: _operations().defrag(
                rec, _text(event, "member"), _int(event, "threshold", 0) or 0
            ),
            leader_only=True,
        )

    def _on_promote(self, event: ops.ActionEvent) -> None:
        self._run_action(
            event, lambda rec: _operations().promote(rec, _text(event, "member")), leader_only=True
        )

    def _on_move_leader(self, event: ops.ActionEvent) -> None:
        self._run_action(
            event,
            lambda rec: _operations().move_leader(rec, _required(event, "to")),
            leader_only=True,
        )

    def _on_compact(self, event: ops.ActionEvent) -> None:
        self._run_action(
            event,
            lambda rec: _operations().compact(
                rec, _int(event, "revision", None), _int(event, "keep", 0) or 0
            ),
            leader_only=True,
        )

    def _on_alarm_list(self, event: ops.ActionEvent) -> None:
        self._run_action(event, _operations().alarm_list)

    def _on_alarm_disarm(self, event: ops.ActionEvent) -> None:
        self._run_action(event, _operations().alarm_disarm, leader_only=True)

    def _on_cluster_status(self, event: ops.ActionEvent) -> None:
        self._run_action(event, _operations().cluster_status)

    def _backups(self) -> Backups:
        from backups import Backups

        storages = self.model.storages.get("data") or []
        if not storages:
            raise ActionRefused("the data storage is not attached to this unit yet")
        return Backups(Path(storages[0].location), STORAGE_ROOT)

    def _run_action(
        self,
        event: ops.ActionEvent,
        work: Callable[[Reconciler], dict[str, Any]],
        leader_only: bool = False,
        etcd: bool = True,
        then: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Fail with a reason, never with a traceback, and change nothing when refusing."""
        action = event.handle.kind.removesuffix("_action").replace("_", "-")
        try:
            if leader_only and not self.unit.is_leader():
                raise ActionRefused(
                    f"run {action} on the leader unit: juju run {self.app.name}/leader {action}"
                )
            rec = self._action_reconciler() if etcd else None
            results = work(rec)  # type: ignore[arg-type]
        except PartialFailure as error:
            event.set_results(error.results)  # type: ignore[arg-type]
            event.fail(str(error))
            return
        except (ActionRefused, RebuildRefused) as error:
            event.fail(str(error))
            return
        except EtcdctlError as error:
            event.fail(f"etcdctl failed: {error.reason}")
            return
        event.set_results(results)
        if then is not None:
            then(results)

    def _action_reconciler(self) -> Reconciler:
        if not self.workload.ready or self.model.get_relation(PEER_RELATION) is None:
            raise ActionRefused("the etcd container or the peer relation is not ready on this unit")
        try:
            options = EtcdOptions.from_charm_config(dict(self.config))
        except InvalidConfig as error:
            raise ActionRefused(f"fix the config first: {error}") from error
        return Reconciler(self, self.workload, options)

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

    def _reconcile(self, event: ops.EventBase) -> None:
        if isinstance(event, ops.InstallEvent | ops.UpgradeCharmEvent | ops.ConfigChangedEvent):
            # Juju's <app> Service exposes the opened ports: clients reach etcd through it.
            self.unit.set_ports(CLIENT_PORT)
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
        offers = self.certificates.offers()
        broken = None
        if isinstance(event, ops.RelationBrokenEvent) and event.relation.name == CLIENT_RELATION:
            broken = event.relation.id
        relations = ClientRelations(self, broken_id=broken)
        outcome = Reconciler(self, self.workload, options, offers, relations).reconcile()
        self._set_status(outcome)

    def _set_status(self, outcome: Outcome) -> None:
        self.unit.status = unit_status(outcome, outcome.config_pending)
        if self.unit.is_leader():
            units = 1 + len(self.model.get_relation(PEER_RELATION).units)  # type: ignore[union-attr]
            self.app.status = app_status(outcome, units)


def _text(event: ops.ActionEvent, key: str) -> str | None:
    value = event.params.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ActionRefused(f"{key} must be a string, not {value!r}")
    return value


def _required(event: ops.ActionEvent, key: str) -> str:
    value = _text(event, key)
    if value is None:
        raise ActionRefused(f"{key}= is required")
    return value


def _int(event: ops.ActionEvent, key: str, default: int | None) -> int | None:
    value = event.params.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ActionRefused(f"{key} must be a whole number, 0 or more, not {value!r}")
    return value


def _bool(event: ops.ActionEvent, key: str) -> bool:
    value = event.params.get(key, False)
    if not isinstance(value, bool):
        raise ActionRefused(f"{key} must be true or false, not {value!r}")
    return value


def unit_status(outcome: Outcome, config_pending: bool) -> ops.StatusBase:
    step = outcome.local
    if isinstance(step, core.Blocked):
        return ops.BlockedStatus(step.reason)
    if isinstance(step, core.Idle) and outcome.verdict and outcome.verdict.kind == "cut-off":
        return ops.WaitingStatus(outcome.verdict.message)  # 3.4 answers from its own state
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
    if outcome.tls != tls.Settings():
        message += f"; {tls.describe(outcome.tls.peer, outcome.tls.client)}"
    if config_pending:
        message += "; config change waits for a rolling restart"
    return ops.ActiveStatus(message)


def app_status(outcome: Outcome, units: int) -> ops.StatusBase:
    verdict = outcome.verdict
    if verdict is not None and verdict.kind == "cut-off":
        return ops.WaitingStatus(verdict.message)
    if verdict is not None and verdict.kind != "quorum":
        return ops.BlockedStatus(verdict.message)
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
    if outcome.tls != tls.Settings():
        message += f"; {tls.describe(outcome.tls.peer, outcome.tls.client)}"
    if outcome.tls_waits:
        message += f"; {outcome.tls_waits}"
    if outcome.access_waits:
        message += f"; {outcome.access_waits}"
    if outcome.restore is not None and healthy < units:
        message += f"; restored from {outcome.restore.snapshot}, the other units rejoin as learners"
    if healthy == units and not view.learners:
        if units == 2:
            message += "; 2 members tolerate no failure: add a unit"
        elif units == 1:
            message += "; a single member tolerates no failure"
        return ops.ActiveStatus(message)
    return ops.WaitingStatus(message)


if __name__ == "__main__":  # pragma: nocover
    ops.main(EtcdK8sCharm)
