"""The etcd root user's password: shown from the application's secret, and rotated (set in
etcd first, authenticated with the old one, then in the secret)."""

from __future__ import annotations

import logging
from typing import Any

import ops

from actions.registry import Kit, NoParams, action
from core import clients
from core.actions import ActionRefused
from core.recovery import has_quorum
from engine.access import settle_root_password
from state.secrets import new_password
from workload.etcdctl import EtcdctlError

logger = logging.getLogger(__name__)


@action("get-root-password", NoParams)
def show_root_password(kit: Kit, _: NoParams) -> dict[str, Any]:
    password = kit.etcd.ctx.root.password()
    if password is None:
        raise ActionRefused(
            "no root password yet: etcd auth is turned on (and root made) once client TLS is on"
        )
    results = {"username": clients.ROOT_USER, "password": password}
    if not kit.etcd.ctx.peers.app().auth_on:
        # The secret outlives auth (client TLS was turned off): say the password is idle now.
        results["auth"] = "off: etcd asks for no password now; this one is used once auth is on"
    pending = kit.etcd.ctx.root.pending()
    if pending:
        results["unsettled"] = (
            f"a rotation was cut short: etcd has this password or {pending}; the leader keeps"
            " the one etcd accepts once the cluster answers"
        )
    return results


@action("rotate-root-password", NoParams, leader_only=True)
def rotate_root_password(kit: Kit, _: NoParams) -> dict[str, Any]:
    """If the secret cannot take the new password, etcd gets the old one back."""
    tools = kit.etcd
    ctx = tools.ctx
    old = ctx.root.password()
    if old is None or not ctx.peers.app().auth_on:
        raise ActionRefused(
            "etcd auth is off (it is on while client TLS is on): no root password to rotate"
        )
    view = tools.observer.live_view()
    if view is None or not has_quorum(view):
        raise ActionRefused("no quorum: a password change needs a healthy cluster")
    leader = tools.driver.auth_client(view)
    if ctx.root.pending():  # an earlier rotation was cut short: settle it first
        settled = settle_root_password(ctx, leader.endpoints)
        if settled is None:
            raise ActionRefused("an earlier rotation is unsettled: etcd does not say which")
        old = settled
    new = new_password()
    ctx.root.begin_rotation(old, new)  # kept before etcd has it: a timeout cannot lose it
    try:
        leader.user_passwd(clients.ROOT_USER, new)
    except EtcdctlError as error:
        _settle_after(kit, leader.endpoints, new, error)
    try:
        ctx.root.set(new)
    except (ops.SecretNotFoundError, ops.ModelError) as error:
        # etcd has the new one, the secret cannot say so: put the old one back in etcd. If
        # that fails too, the secret still holds both and the leader settles on etcd's.
        ctx.remember_root(new)
        leader.user_passwd(clients.ROOT_USER, old)
        raise ActionRefused(
            f"cannot write the root password secret ({error}); etcd keeps the old password"
        ) from error
    ctx.remember_root(new)
    logger.info("decision: root password rotated")
    return {"result": "root password rotated; read it with get-root-password"}


def _settle_after(kit: Kit, endpoints: list[str], new: str, error: EtcdctlError) -> None:
    """`user passwd` failed, or timed out after etcd applied it: ask etcd which password it
    has and keep that one. Returns only when etcd took the new one."""
    settled = settle_root_password(kit.etcd.ctx, endpoints)
    if settled == new:
        logger.warning("root password change reported %r but etcd has the new one", error.reason)
        return
    if settled is not None:
        raise ActionRefused(f"root password unchanged: {error.reason}")
    raise ActionRefused(
        f"cannot tell whether etcd took the new root password ({error.reason}); both are kept"
        " in the secret, and the leader keeps the one etcd accepts once the cluster answers"
    )
