#!/usr/bin/env python3
"""etcd-k8s: a Kubernetes sidecar charm for etcd. Wires Juju's events to the reconcile
(engine/), the actions to their registry (actions/), and sets the status once per hook."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import ops

from actions import registry
from core import schedule
from core.actions import ActionRefused, PartialFailure
from core.messages import say
from core.recovery import RebuildRefused
from core.status import Outcome, Status, app_status, unit_status, with_failing_checks
from engine import departure
from engine.context import ACTION_BUDGET, HOOK_BUDGET, Deadline, UnitContext
from engine.reconciler import Reconciler
from engine.tools import Tools
from literals import (
    CERTIFICATES_RELATIONS,
    CLIENT_PORT,
    CLIENT_RELATION,
    CONTAINER,
    LOGGING_RELATION,
    METRICS_PORT,
    OBSERVABILITY_RELATIONS,
    PEER_RELATION,
    S3_RELATION,
    STORAGE,
)
from relations.certificates import Certificates, Offers
from relations.etcd_client import ClientRelations
from relations.observability import Observability
from state import config
from state.peers import PeerData
from state.secrets import RootSecret
from workload import clock
from workload.etcdctl import EtcdctlError
from workload.k8s import cluster_domain
from workload.pebble import Workload

if TYPE_CHECKING:
    from relations.s3 import S3Relation

logger = logging.getLogger(__name__)

RECONCILE_EVENTS = (
    "install",
    "upgrade_charm",
    "config_changed",
    "start",
    "leader_elected",
    "update_status",
    "etcd_pebble_ready",
    # A health check went down or came back: look again at once (and say so in the status).
    "etcd_pebble_check_failed",
    "etcd_pebble_check_recovered",
    "data_storage_attached",
    "secret_changed",  # a client charm's new certificate comes as a new revision of its secret
)
RELATION_EVENTS = ("relation_created", "relation_changed", "relation_broken")
# What is left of the hook's waiting budget for a scheduled backup to start in it (a snapshot
# waits for etcd; else the backup waits for the next hook, 5 minutes later at most).
BACKUP_BUDGET = 60.0


class EtcdK8sCharm(ops.CharmBase):
    """The charm: events in, one reconcile out; actions through their registry."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.workload = Workload(self.unit.get_container(CONTAINER))
        # The library re-sends a request whose SANs changed (a recreated pod has a new IP).
        self.certificates = Certificates(
            self, refresh=[self.on.config_changed, self.on.upgrade_charm, self.on.update_status]
        )
        self._unit_said: Status | None = None
        self._outcome: Outcome | None = None
        self._cos_refused: list[str] = []
        for name in RECONCILE_EVENTS:
            framework.observe(getattr(self.on, name), self._reconcile)
        peer = self.on[PEER_RELATION]
        for event in (peer.relation_created, peer.relation_joined, peer.relation_changed):
            framework.observe(event, self._reconcile)
        framework.observe(peer.relation_departed, self._on_peer_departed)
        # The library observes these first (it was set up above): by the time the reconcile
        # runs, whatever the provider sent is in the library's secrets.
        for relation in (*CERTIFICATES_RELATIONS.values(), CLIENT_RELATION):
            for name in RELATION_EVENTS:
                framework.observe(getattr(self.on[relation], name), self._reconcile)
        for name in (*RELATION_EVENTS, "relation_joined"):
            framework.observe(getattr(self.on[S3_RELATION], name), self._on_s3)
        for relation in OBSERVABILITY_RELATIONS:
            for name in RELATION_EVENTS:
                framework.observe(getattr(self.on[relation], name), self._reconcile)
        # A Loki unit that leaves takes its push URL with it.
        framework.observe(self.on[LOGGING_RELATION].relation_departed, self._reconcile)
        framework.observe(self.on.data_storage_detaching, self._on_leaving)
        for name in registry.MODULES:
            framework.observe(getattr(self.on, f"{name.replace('-', '_')}_action"), self._on_action)
        framework.observe(self.on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(self.on.collect_app_status, self._on_collect_app_status)

    # ---- the reconcile ----------------------------------------------------------------------

    def _reconcile(self, event: ops.EventBase) -> None:
        if isinstance(event, ops.InstallEvent | ops.UpgradeCharmEvent | ops.ConfigChangedEvent):
            # Juju's <app> Service exposes the opened ports: clients reach etcd through it.
            # Prometheus scrapes each pod by its DNS name; the port is opened all the same.
            self.unit.set_ports(CLIENT_PORT, METRICS_PORT)
        self._observe(event)
        ctx = self._context(HOOK_BUDGET, self.certificates.offers())
        if ctx is None:
            return
        broken = None
        if isinstance(event, ops.RelationBrokenEvent) and event.relation.name == CLIENT_RELATION:
            broken = event.relation.id
        self._outcome = Reconciler(ctx, ClientRelations(self, broken_id=broken)).reconcile()
        self._unit_said = unit_status(self._outcome)
        # `juju status` shows the image's etcd release as the workload version.
        with contextlib.suppress(RuntimeError):
            self.unit.set_workload_version(ctx.etcd_release())
        if ctx.is_leader and ctx.options.backup_schedule:
            self._scheduled_backup(ctx)

    def _scheduled_backup(self, ctx: UnitContext) -> None:
        """After the reconcile, on the leader: the backup `backup-schedule` says is due, if
        any (imported here: boto3 loads only when S3 matters)."""
        from actions.backup_schedule import run_if_due

        s3 = self._s3()
        if s3.relation is None:
            return  # no store: the schedule waits for the relation
        if ctx.deadline.budget(BACKUP_BUDGET, "a scheduled backup") < BACKUP_BUDGET:
            logger.info("decision: scheduled backup waits for a hook with time left")
            return
        kit = registry.Kit(Tools.of(ctx), self._storage(), app=self.app.name, is_leader=True, s3=s3)
        options = ctx.options
        run_if_due(
            kit, ctx.peers, options.backup_schedule, options.backup_retention, self.unit.is_leader
        )

    def _on_s3(self, event: ops.EventBase) -> None:
        """The s3-credentials relation: the leader asks for the keys in a secret (v1); what
        the provider sends is read when a backup action runs, and checked for the status."""
        if self.unit.is_leader() and not isinstance(event, ops.RelationBrokenEvent):
            self._s3().request()
        self._reconcile(event)

    def _observe(self, event: ops.EventBase) -> None:
        """COS: scrape jobs, alert rules, dashboards and log targets; whatever etcd's state."""
        broken = event.relation.id if isinstance(event, ops.RelationBrokenEvent) else None
        cos = Observability(self, self.workload, cluster_domain(), broken_id=broken)
        self._cos_refused = [str(refusal) for refusal in cos.reconcile()]

    def _s3(self) -> S3Relation:
        """The s3-credentials relation's reader, imported only where S3 matters: most hooks
        of most deployments never need it."""
        from relations.s3 import S3Relation

        return S3Relation(self.model, self.app)

    def _context(self, budget: float, offers: Offers | None = None) -> UnitContext | None:
        """This unit's context, or None with the status that says why there is none yet."""
        try:
            options = config.load(self)
        except config.InvalidConfig as error:
            # Touch nothing: the running member keeps the config it was started with.
            logger.warning("decision: hold (invalid config: %s)", error)
            self._unit_said = Status("blocked", say("unit.invalid-config", why=error))
            return None
        return self._unit_context(options, budget, offers)

    def _unit_context(
        self, options: config.EtcdOptions, budget: float, offers: Offers | None = None
    ) -> UnitContext | None:
        relation = self.model.get_relation(PEER_RELATION)
        if not self.workload.ready:
            self._unit_said = Status("waiting", say("unit.no-container"))
            return None
        if relation is None:
            self._unit_said = Status("waiting", say("unit.no-peers"))
            return None
        peers = PeerData(self.unit, self.app, relation)
        return UnitContext(
            app=self.app.name,
            unit=self.unit.name,
            model=self.model.name,
            domain=cluster_domain(),
            workload=self.workload,
            peers=peers,
            root=RootSecret(self.model, peers),
            options=options,
            deadline=Deadline(budget),
            is_leader=self.unit.is_leader(),
            offers=offers or Offers.none(),
        )

    def _on_peer_departed(self, event: ops.RelationDepartedEvent) -> None:
        if event.departing_unit == self.unit:
            self._on_leaving(event)
        else:
            self._reconcile(event)

    def _on_leaving(self, _: ops.EventBase) -> None:
        """This unit is being removed (scale down): its member leaves before its pod goes."""
        options = config.EtcdOptions.model_construct()  # leaving starts nothing
        ctx = self._unit_context(options, HOOK_BUDGET)
        if ctx is None:
            self._unit_said = None  # nothing to leave yet: the unit goes as it is
            return
        departure.leave(Tools.of(ctx))
        self._unit_said = Status("maintenance", say("unit.leaving"))

    # ---- actions ----------------------------------------------------------------------------

    def _on_action(self, event: ops.ActionEvent) -> None:
        """Fail with a reason, never with a traceback, and change nothing when refusing."""
        name = event.handle.kind.removesuffix("_action").replace("_", "-")
        act = registry.get(name)
        try:
            if act.leader_only and not self.unit.is_leader():
                raise ActionRefused(
                    f"run {name} on the leader unit: juju run {self.app.name}/leader {name}"
                )
            try:
                params: object = event.load_params(act.params)
            except ValueError as error:
                raise ActionRefused(str(error)) from error
            kit = registry.Kit(
                self._action_tools() if act.needs_etcd else None,
                self._storage(),
                app=self.app.name,
                is_leader=self.unit.is_leader(),
                s3=self._s3(),
                log=event.log,
            )
            results = act.handler(kit, params)
        except PartialFailure as error:
            event.set_results(error.results)
            event.fail(str(error))
            return
        except (ActionRefused, RebuildRefused) as error:
            event.fail(str(error))
            return
        except EtcdctlError as error:
            event.fail(f"etcdctl failed: {error.reason}")
            return
        event.set_results(results)
        if act.reconcile_after:
            self._reconcile(event)

    def _action_tools(self) -> Tools:
        ctx = self._context(ACTION_BUDGET)
        if ctx is None:
            said = self._unit_said
            self._unit_said = None  # an action changes no status when it refuses
            if said is not None and said.message.startswith("invalid config: "):
                raise ActionRefused(f"fix the config first: {said.message[16:]}")
            raise ActionRefused("the etcd container or the peer relation is not ready on this unit")
        return Tools.of(ctx)

    def _storage(self) -> Path | None:
        storages = self.model.storages.get(STORAGE) or []
        return Path(storages[0].location) if storages else None

    # ---- status, once per hook ------------------------------------------------------------

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        if self._unit_said is not None:
            said = with_failing_checks(self._unit_said, self.workload.failing_checks())
            message = said.message
            if self._cos_refused:
                message += "; " + say("cos.refused", which=", ".join(self._cos_refused))
            event.add_status(ops.StatusBase.from_name(said.name, message))

    def _on_collect_app_status(self, event: ops.CollectStatusEvent) -> None:
        relation = self.model.get_relation(PEER_RELATION)
        if self._outcome is None or relation is None:
            return
        related = self.unit.is_leader() and self.model.get_relation(S3_RELATION) is not None
        refused = self._s3().problem() if related else None
        history = PeerData(self.unit, self.app, relation).backups()
        backups = schedule.note(history, clock.now()) if related else None
        said = app_status(
            self._outcome, 1 + len(relation.units), backups_refused=refused, backups=backups
        )
        event.add_status(ops.StatusBase.from_name(said.name, said.message))


if __name__ == "__main__":  # pragma: nocover
    ops.main(EtcdK8sCharm)
