"""Driving this unit's member and the cluster's membership: start, restart, wait until it
serves, add, promote, remove, move leadership. Imperative, deciding nothing; every wait takes
its time from the hook's one deadline."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable

from core import model as m
from core import tls
from core.identity import identity
from core.steps import RemoveMember
from engine.context import UnitContext
from engine.observe import Observer, marker
from literals import DATA_DIR, DIGEST_PREFIX
from workload.etcdctl import Etcdctl, EtcdctlError
from workload.metrics import applied_a_snapshot, member_metrics, received_a_snapshot
from workload.pebble import ready_command
from workload.render import MemberConfig, TlsConfig, render_config
from workload.tls_files import client_cert, paths

logger = logging.getLogger(__name__)

PROMOTE_PATIENCE = 60.0  # seconds a learner may take to catch up within one hook
START_PATIENCE = 30.0  # seconds a started member may take to publish itself
ADD_PATIENCE = 20.0  # seconds to wait out etcd's "unhealthy cluster" after a membership change
HEALTHY_PATIENCE = 60.0  # seconds a restarted member may take to be a healthy voter again
CATCH_UP_PATIENCE = 30.0  # seconds a new learner may take to serve or apply a raft snapshot


class MemberExited(RuntimeError):
    """etcd stopped right after the charm started it."""


class MemberDriver:
    """This unit's member, and membership changes, for one hook."""

    def __init__(self, ctx: UnitContext, observer: Observer):
        self.ctx = ctx
        self.observer = observer

    # ---- this unit's member -----------------------------------------------------------------

    def start(self, state: str, initial_cluster: str, token: str) -> None:
        self.write_config(state, initial_cluster, token)
        self.ctx.workload.start(self.check_command())

    def restart(self) -> None:
        self.ctx.workload.restart(self.check_command())

    def check_command(self) -> list[str]:
        return ready_command(self.ctx.me.client_url, client_cert().args())

    def write_config(
        self, state: str, initial_cluster: str, token: str, force_new_cluster: bool = False
    ) -> None:
        ctx = self.ctx
        client_url = identity(
            ctx.app,
            ctx.me.unit,
            ctx.model,
            client_scheme=tls.client_scheme(ctx.settings.client),
            domain=ctx.domain,
        ).client_url
        member = MemberConfig(
            name=ctx.me.member_name,
            data_dir=DATA_DIR,
            peer_url=ctx.me.peer_url,
            client_url=client_url,
            tls=self._tls_config(),
            initial_cluster=initial_cluster,
            initial_cluster_state="new" if state == "new" else "existing",
            initial_cluster_token=token,
            etcd_version=ctx.etcd_version(),
            force_new_cluster=force_new_cluster,
        )
        # The bundle the digest names, on disk before etcd reads it (the leader may have
        # changed the record earlier in this very hook).
        for kind in m.KINDS:
            ctx.files.write_bundle(kind, ctx.settings.record(kind).bundle)
        text = f"{DIGEST_PREFIX}{ctx.wanted_digest}\n"
        ctx.workload.write_config(text + render_config(member, ctx.options))
        # etcd serves what the file says once (re)started, which follows right away.
        ctx.me = dataclasses.replace(ctx.me, client_url=client_url)

    def _tls_config(self) -> TlsConfig:
        peer, client = paths(m.PEER), paths(m.CLIENT)
        return TlsConfig(
            peer=tls.needs_material(self.ctx.settings.peer),
            client=tls.needs_material(self.ctx.settings.client),
            peer_cert=peer.cert,
            peer_key=peer.key,
            peer_ca=peer.bundle,
            client_cert=client.cert,
            client_key=client.key,
            client_ca=client.bundle,
        )

    def await_started(self) -> None:
        """Wait until this member has published its name to the cluster (it has joined raft)."""
        ctx = self.ctx
        deadline = time.monotonic() + ctx.deadline.budget(START_PATIENCE, "a start")
        while time.monotonic() < deadline:
            view = self.observer.live_view()
            member = view.find(ctx.me.member_name, ctx.me.peer_url) if view else None
            if member and member.started:
                return
            if not ctx.workload.is_running():
                raise MemberExited("etcd exited right after it was started; see its log")
            time.sleep(0.2)
        logger.warning("member %s has not published itself yet", ctx.me.member_name)

    def restart_after_snapshot(self) -> None:
        """A new learner that catches up from a raft snapshot (always so after a restore, and
        whenever the leader's log was compacted) serves clients only once its first publish
        times out, 7 s later with the default election timeout, on 3.4 and 3.5 alike
        (docs/explanation/restore-and-rebuild.md). Restarted once the snapshot is applied, it
        publishes at once. Wait until this member serves, or has applied a snapshot and
        restart it; a learner counts for no quorum."""
        ctx = self.ctx
        deadline = time.monotonic() + ctx.deadline.budget(CATCH_UP_PATIENCE, "a learner")
        own = ctx.client([ctx.me.client_url])
        while time.monotonic() < deadline:
            text = member_metrics(ctx.me.client_url, timeout=1.0)
            if text is not None and applied_a_snapshot(text):
                logger.info(
                    "decision: restart-learner member=%s (caught up from a raft snapshot)",
                    ctx.me.member_name,
                )
                self.restart()
                return
            if own.endpoint_status([ctx.me.client_url]):
                return  # it serves: it caught up from the log, or published in time
            if not ctx.workload.is_running():
                raise MemberExited("etcd exited while catching up; see its log")
            time.sleep(0.1)
        logger.warning("learner %s neither serves nor applied a snapshot", ctx.me.member_name)

    def may_lack_token_provider(self) -> bool:
        """This member's etcd process caught up from a raft snapshot, or cannot say: it then
        keeps the simple-token provider off until restarted, and every password login on it
        fails with "invalid auth token" (etcd-io/etcd#13134). A process that started on its own
        data, or caught up from the log, has it on."""
        text = member_metrics(self.ctx.me.client_url, timeout=1.0)
        return text is None or received_a_snapshot(text)

    def await_healthy_voter(
        self, local_only: bool = False, patience: float = HEALTHY_PATIENCE
    ) -> m.ClusterView:
        """A restarted member counts again once it is a healthy voter with a leader in sight;
        the next unit's turn waits for that. `local_only`: judge by this member's own answers
        (right after a restore, when removed members of the old cluster may still answer)."""
        ctx = self.ctx
        allowed = ctx.deadline.budget(patience, "a member becoming a healthy voter")
        deadline = time.monotonic() + allowed
        while time.monotonic() < deadline:
            if not ctx.workload.is_running():
                raise RuntimeError("etcd exited right after it was started; see its log")
            view = self.observer.live_view(local_only)
            member = view.find(ctx.me.member_name, ctx.me.peer_url) if view else None
            healthy = view and member and not member.is_learner and member.id in view.healthy_ids
            if healthy and view and view.leader_id:
                return view
            time.sleep(0.2)
        raise RuntimeError(f"{ctx.me.member_name} is not a healthy voter after {allowed:.0f}s")

    def publish_view(self, view: m.ClusterView | None) -> None:
        """Mark the data with its member and cluster, and say who this unit is in peer data."""
        ctx = self.ctx
        if view is not None and ctx.workload.is_running():
            member = view.find(ctx.me.member_name, ctx.me.peer_url)
            if member is not None and member.started:
                self._mark(member.id, view.cluster_id, view.index_of(member.id))
                if member.id != ctx.me.member_id:
                    ctx.me = dataclasses.replace(ctx.me, member_id=member.id)
        ctx.peers.publish(ctx.me)

    def _mark(self, member_id: str, cluster_id: str, raft_index: int | None) -> None:
        """Record beside the data whose member it is and how far its log got, to tell stale
        data apart on return (and data that is ahead of a cluster that dropped it)."""
        raw = self.ctx.workload.read_marker()
        old = marker(raw)
        if old and (old.member_id, old.cluster_id) == (member_id, cluster_id) and not old.joining:
            raft_index = max(raft_index or 0, old.raft_index or 0) or None
        wanted: dict[str, object] = {"member-id": member_id, "cluster-id": cluster_id}
        if raft_index is not None:
            wanted["raft-index"] = raft_index
        # Which etcd runs this data: a later image is judged against it (core/refresh.py).
        wanted["etcd-version"] = self.ctx.etcd_release()
        if raw != wanted:
            self.ctx.workload.write_marker(wanted)

    # ---- membership -------------------------------------------------------------------------

    def leader_client(self, view: m.ClusterView, without: str | None = None) -> Etcdctl:
        """Membership changes go to the raft leader itself: a follower forwards them over the
        peer API without the caller's credentials, which the leader refuses once auth is on
        (etcd 3.5.1 then retries until "context deadline exceeded"). `without`: never ask
        this member (it is being removed, and stops as it applies its own removal)."""
        leader = next(
            (
                v
                for v in view.voters
                if v.id == view.leader_id and v.client_urls and v.id != without
            ),
            None,
        )
        if leader is not None:
            return self.ctx.client([leader.client_urls[0]])
        others = dataclasses.replace(
            view, members=tuple(v for v in view.members if v.id != without)
        )
        return self.voters_client(others)

    def auth_client(self, view: m.ClusterView) -> Etcdctl:
        """User, role and auth changes go to one member, the raft leader: with etcd's simple
        tokens a token is known only to members that applied its login, and a client spread
        over several endpoints shows it to one that has not yet (a lagging new member), logs
        in again and retries. etcdctl 3.4/3.5 runs user and role commands without its
        command timeout, so under load that loop outlived the whole exec budget."""
        return self.leader_client(view)

    def voters_client(self, view: m.ClusterView) -> Etcdctl:
        """Membership changes go to voters: a learner answers 'rpc not supported for learner'."""
        urls = [v.client_urls[0] for v in view.healthy_voters if v.client_urls]
        return self.ctx.client(urls or [v.client_urls[0] for v in view.voters if v.client_urls])

    def add_learner(self, view: m.ClusterView, unit: m.UnitInfo) -> m.Member:
        """etcd refuses a member add until its leader has seen every voter for 5 s (right
        after a promotion, say): that is worth waiting for here, not at the next hook. A try
        that timed out may have gone through, or another unit's hook (an old leader's, still
        running) added the same joiner at the same time: the peer URL is then taken, and the
        member is the one the list holds for it, which this hook adopts."""
        added: list[m.Member] = []

        def add(client: Etcdctl) -> None:
            try:
                added.append(client.member_add_learner(unit.member_name, unit.peer_url))
            except EtcdctlError as error:
                if not error.peer_url_exists:
                    raise
                found = [x for x in client.member_list().members if unit.peer_url in x.peer_urls]
                if not found:
                    raise
                logger.info("decision: adopt-member id=%s (already added)", found[0].id)
                added.append(found[0])

        self.on_leader(view, add, "a member add")
        return added[-1]

    def remove(self, view: m.ClusterView, step: RemoveMember) -> bool:
        member = step.member
        logger.info(
            "decision: remove-member id=%s name=%s (%s)", member.id, member.name, step.reason
        )
        try:
            self.on_leader(view, lambda c: c.member_remove(member.id), "a member remove", member.id)
        except EtcdctlError as error:
            if not error.member_not_found:
                raise
        return True

    def on_leader(
        self,
        view: m.ClusterView,
        call: Callable[[Etcdctl], object],
        what: str,
        without: str | None = None,
    ) -> None:
        """A membership call to the raft leader, patiently; each retry lists the members
        again: the leader of the hook's first view may be a member another unit's hook has
        just removed (two units leaving at once), which then answers nothing or `raft:
        stopped`."""
        current, tries = [view], [0]

        def attempt() -> None:
            if tries[0]:
                current[0] = self.observer.live_view() or current[0]
            tries[0] += 1
            call(self.leader_client(current[0], without=without))

        self.patiently(attempt, what)

    def promote(self, view: m.ClusterView, member: m.Member) -> bool:
        """Promote as soon as etcd accepts it: 'not in sync' means retry now, not next hook."""
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception,
            stop_after_delay,
            wait_exponential,
        )

        logger.info("decision: promote member=%s id=%s", member.name, member.id)
        views = [view]
        patience = self.ctx.deadline.budget(PROMOTE_PATIENCE, "a promotion")
        try:
            for attempt in Retrying(
                retry=retry_if_exception(_promote_retryable),
                wait=wait_exponential(multiplier=0.1, max=1.0),
                stop=stop_after_delay(patience),
            ):
                with attempt:
                    if attempt.retry_state.attempt_number > 1:  # the leader may have moved
                        views.append(self.observer.live_view() or views[-1])
                    self.leader_client(views[-1]).member_promote(member.id)
        except RetryError:
            logger.warning("learner %s still not in sync after %.0fs", member.id, patience)
            return False
        except EtcdctlError as error:
            if error.not_a_learner:
                return True  # someone else promoted it first
            raise
        logger.info("promoted member=%s id=%s", member.name, member.id)
        return True

    def update_peer_url(self, view: m.ClusterView, url: str) -> None:
        """Peer TLS switches scheme: the others dial the new URL from now on; this member
        restarts with the matching listener right after (a follower's brief absence)."""
        member = view.find(self.ctx.me.member_name, self.ctx.me.peer_url)
        assert member is not None
        logger.info("decision: member-update id=%s peer-url=%s", member.id, url)
        self.on_leader(view, lambda c: c.member_update(member.id, url), "a member update")

    def move_leader(self, view: m.ClusterView, to: m.Member, why: str) -> None:
        logger.info("decision: move-leader to=%s id=%s (%s)", to.name, to.id, why)
        urls = [v.client_urls[0] for v in view.voters if v.client_urls]
        voters = self.ctx.client(urls)
        self.patiently(functools.partial(voters.move_leader, to.id), "a leader move")

    def patiently(self, call: Callable[[], object], what: str) -> None:
        """A membership change right after another meets etcd's 5 s connectivity rule
        ("unhealthy cluster"), or does not commit in time: wait it out within the hook."""
        from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

        for attempt in Retrying(
            retry=retry_if_exception(_cluster_unhealthy),
            wait=wait_fixed(0.5),
            stop=stop_after_delay(self.ctx.deadline.budget(ADD_PATIENCE, what)),
            reraise=True,
        ):
            with attempt:
                call()


def _cluster_unhealthy(error: BaseException) -> bool:
    """etcd's 5 s rule after a membership change, a change that did not commit in time (seen
    right after a promotion with auth on), or a member that is stopping as it answers (it has
    just been removed): all pass, and a retry, which lists the members again, is safe."""
    return isinstance(error, EtcdctlError) and (
        error.cluster_unhealthy or error.timed_out or error.member_stopping
    )


def _promote_retryable(error: BaseException) -> bool:
    """Not in sync yet, or the conf change did not commit in time (seen right after a
    leadership change, with auth on): both pass; any other answer is final."""
    return isinstance(error, EtcdctlError) and (
        error.learner_not_in_sync or error.timed_out or error.member_stopping
    )
