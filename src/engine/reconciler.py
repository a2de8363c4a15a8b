"""One idempotent reconcile: observe, ask the core's flow for the next step, carry it out with
the handler for its type, observe again; until every pass rests. Any event may run it; it
assumes no order of events. Each decision is logged on one line that starts with `decision:`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from core import flow, membership, recovery, rolling
from core import model as m
from core import steps as s
from core.messages import say
from core.status import Outcome
from engine import tls as tls_engine
from engine.access import Access
from engine.context import UnitContext
from engine.member import MemberDriver, MemberExited
from engine.observe import Observer
from relations.etcd_client import ClientRelations

logger = logging.getLogger(__name__)

# A hook never loops forever; anything left waits for the next event. A leader's own writes
# wake no hook of its own, so one hook carries a whole restart turn plus the TLS step after it.
MAX_STEPS = 24

Handler = Callable[[Any, m.Observation], "bool | s.Wait"]


class Reconciler:
    """Runs the flow for one hook and says where it ended."""

    def __init__(self, ctx: UnitContext, relations: ClientRelations | None = None):
        self.ctx = ctx
        self.observer = Observer(ctx, relations if ctx.is_leader else None)
        self.driver = MemberDriver(ctx, self.observer)
        self.access = Access(ctx, self.driver, relations)
        self.handlers: dict[type, Handler] = {
            s.PlanBootstrap: self._plan_bootstrap,
            s.Bootstrap: self._bootstrap,
            s.StartMember: self._start_existing,
            s.Join: self._join,
            s.Promote: self._promote,
            s.WipeStaleData: self._wipe,
            s.DropSuperseded: self._drop,
            s.RemoveMember: self._remove,
            s.RecordCluster: self._record_cluster,
            s.AddLearner: self._add_learner,
            s.PublishTicket: self._publish_ticket,
            s.ClearTicket: self._clear_ticket,
            s.MoveLeader: self._move_leader,
            s.Restart: self._restart,
            s.GrantTurn: self._grant_turn,
            s.ReleaseTurn: self._release_turn,
            s.TlsStep: lambda step, obs: tls_engine.apply_records(self.ctx, step),
            s.EnableAuth: self.access.switch_auth,
            s.DisableAuth: self.access.switch_auth,
            s.SettleRootPassword: self.access.settle_root,
            s.ApplyClients: self.access.apply_clients,
        }

    def reconcile(self) -> Outcome:
        """Act until every pass of the flow rests, at most MAX_STEPS times."""
        tls_engine.sync_certificates(self.ctx)
        self.driver.publish_view(None)
        obs = self.observer.observe()
        said: dict[str, s.Step] = {}
        tried: set[str] = set()  # passes that acted without effect this round
        for _ in range(MAX_STEPS):
            decision = flow.next_step(obs, skip=frozenset(tried))
            said = decision.said
            if decision.acting is None:
                break
            done = self.handlers[type(decision.step)](decision.step, obs)
            if isinstance(done, s.Wait):  # the step could not go on: the unit waits for it
                said[decision.acting] = done
                break
            if not done:
                tried.add(decision.acting)
                continue
            tried.clear()
            obs = self.observer.observe()
        else:
            logger.warning(
                "reconcile stopped after %s steps; the rest waits for the next event", MAX_STEPS
            )
        return self._finish(obs, said)

    def _finish(self, obs: m.Observation, said: dict[str, s.Step]) -> Outcome:
        ctx = self.ctx
        local: s.LocalStep = said.get("local", s.Idle())  # type: ignore[assignment]
        ctx.me = dataclasses.replace(ctx.me, member_state=membership.member_state(obs))
        if isinstance(local, s.Blocked) and local.reason.startswith("refresh refused"):
            logger.warning("decision: refuse-start (%s): %s", _versions_said(obs), local.reason)
            ctx.workload.hold_unready(self.driver.check_command())
        if isinstance(local, s.HoldData):  # the leader must not add this unit anew
            held = "an operator's decision on the data it holds (discard-data)"
            ctx.me = dataclasses.replace(ctx.me, waiting_for=held)
        self.driver.publish_view(obs.cluster)
        if obs.is_leader:
            self.access.answer(obs)
        verdict = None
        if obs.app.cluster_id is not None and not recovery.has_quorum(obs.cluster):
            verdict = recovery.judge(
                ctx.me.unit, self.observer.survivors(), self.observer.reports()
            )
        tls_said = said.get("tls")
        notes = [self.access.refused_note(obs), *self.access.notes]
        return Outcome(
            local=local,
            cluster=said.get("cluster", s.Idle()),  # type: ignore[arg-type]
            view=obs.cluster,
            me=ctx.me,
            verdict=verdict,
            restore=obs.app.restore,
            config_pending=rolling.pending(obs),
            tls=ctx.settings,
            tls_waits=tls_said.reason if isinstance(tls_said, s.Wait) and tls_said.reason else None,
            access_waits="; ".join(n for n in notes if n) or None,
            versions=obs.versions,
        )

    # ---- handlers: each carries one step out; False: it could not, the next pass may --------

    def _plan_bootstrap(self, step: s.PlanBootstrap, obs: m.Observation) -> bool:
        logger.info("decision: plan-bootstrap member=%s token=%s", step.member, step.token)
        self.ctx.peers.plan_bootstrap(step.member, step.token)
        return False  # the plan must be committed before anyone acts on it

    def _bootstrap(self, step: s.Bootstrap, obs: m.Observation) -> bool:
        logger.info("decision: bootstrap member=%s state=new", self.ctx.me.member_name)
        self.driver.start("new", self.ctx.solo_cluster, step.token)
        self.driver.await_started()
        return True

    def _start_existing(self, step: s.StartMember, obs: m.Observation) -> bool:
        logger.info(
            "decision: start-existing member=%s (data on disk; %s)",
            self.ctx.me.member_name,
            _versions_said(obs),
        )
        self.driver.start("existing", self.ctx.solo_cluster, "existing")
        return True

    def _join(self, step: s.Join, obs: m.Observation) -> bool | s.Wait:
        """Start as the learner the leader added. The marker says "joining" until the member
        has published itself: if etcd exits first (no peer reachable, say), what it left in
        the data dir is no member's log, so it goes, and the unit tries again next hook."""
        ticket, ctx = step.ticket, self.ctx
        logger.info(
            "decision: join-as-learner member=%s id=%s", ctx.me.member_name, ticket.member_id
        )
        ctx.workload.write_marker(
            {"member-id": ticket.member_id, "cluster-id": obs.app.cluster_id, "joining": True}
        )
        self.driver.start("existing", ticket.initial_cluster, step.token)
        try:
            self.driver.await_started()
            self.driver.restart_after_snapshot()
        except MemberExited as error:
            logger.warning(
                "decision: abandon-join member=%s id=%s (%s)",
                ctx.me.member_name,
                ticket.member_id,
                error,
            )
            ctx.workload.wipe_data()
            return s.Wait(say("unit.join-failed", member_id=ticket.member_id))
        return True

    def _promote(self, step: s.Promote, obs: m.Observation) -> bool:
        assert obs.cluster is not None
        mine = step.member.name == self.ctx.me.member_name
        if mine and obs.app.auth_on and self.driver.may_lack_token_provider():
            # Restarted while still a learner, it counts for no quorum. _join's restart after
            # the snapshot usually did it already: the new process received none.
            logger.info("decision: restart-learner member=%s (auth on)", step.member.name)
            self.driver.restart()
            self.driver.await_started()
        return self.driver.promote(obs.cluster, step.member)

    def _remove(self, step: s.RemoveMember, obs: m.Observation) -> bool:
        assert obs.cluster is not None
        return self.driver.remove(obs.cluster, step)

    def _wipe(self, step: s.WipeStaleData, obs: m.Observation) -> bool:
        logger.warning(
            "decision: wipe-stale-data member=%s (%s)", self.ctx.me.member_name, step.reason
        )
        self.ctx.workload.wipe_data()  # stops etcd first
        # No member's data is left here: the old id must not count in anyone's quorum verdict.
        self.ctx.me = dataclasses.replace(self.ctx.me, member_id=None)
        return True

    def _drop(self, step: s.DropSuperseded, obs: m.Observation) -> bool:
        logger.warning(
            "decision: drop-superseded-data member=%s (%s)", self.ctx.me.member_name, step.reason
        )
        self.ctx.workload.wipe_data()  # stops etcd first
        self.ctx.me = dataclasses.replace(self.ctx.me, member_id=None)
        return True

    def _record_cluster(self, step: s.RecordCluster, obs: m.Observation) -> bool:
        logger.info("decision: record-cluster id=%s", step.cluster_id)
        self.ctx.peers.record_cluster(step.cluster_id)
        return True

    def _add_learner(self, step: s.AddLearner, obs: m.Observation) -> bool:
        assert obs.cluster is not None
        logger.info("decision: add-learner unit=%s peer-url=%s", step.unit.unit, step.unit.peer_url)
        member = self.driver.add_learner(obs.cluster, step.unit)
        view = membership.with_member_added(obs.cluster, member)
        ticket = membership.ticket_for(step.unit, member.id, view)
        logger.info("decision: publish-ticket member=%s id=%s", ticket.member_name, member.id)
        self.ctx.peers.publish_ticket(ticket)
        return True

    def _publish_ticket(self, step: s.PublishTicket, obs: m.Observation) -> bool:
        ticket = step.ticket
        logger.info(
            "decision: publish-ticket member=%s id=%s", ticket.member_name, ticket.member_id
        )
        self.ctx.peers.publish_ticket(ticket)
        return True

    def _clear_ticket(self, step: s.ClearTicket, obs: m.Observation) -> bool:
        logger.info("decision: clear-ticket (no learner left)")
        self.ctx.peers.publish_ticket(None)
        return True

    def _move_leader(self, step: s.MoveLeader, obs: m.Observation) -> bool:
        assert obs.cluster is not None
        self.driver.move_leader(obs.cluster, step.to, "restart")
        return True

    def _restart(self, step: s.Restart, obs: m.Observation) -> bool:
        if step.peer_url is not None:
            assert obs.cluster is not None
            self.driver.update_peer_url(obs.cluster, step.peer_url)
        logger.info("decision: restart member=%s config=%s", self.ctx.me.member_name, step.digest)
        self.driver.write_config("existing", self.ctx.solo_cluster, "existing")
        self.driver.restart()
        self.driver.await_healthy_voter()
        return True

    def _grant_turn(self, step: s.GrantTurn, obs: m.Observation) -> bool:
        logger.info("decision: grant-restart-turn unit=%s", step.unit)
        self.ctx.peers.grant_turn(step.unit)
        return True

    def _release_turn(self, step: s.ReleaseTurn, obs: m.Observation) -> bool:
        logger.info("decision: release-restart-turn unit=%s", step.unit)
        self.ctx.peers.release_turn()
        return True


def _versions_said(obs: m.Observation) -> str:
    """The versions the refresh guard weighed, for a decision line."""
    v = obs.versions
    if v is None:
        return "versions not compared"
    return f"image={v.image} cluster-version={v.cluster or '?'} data-ran={v.disk or '?'}"
