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
from state.secrets import new_password

logger = logging.getLogger(__name__)


@action("get-root-password", NoParams)
def show_root_password(kit: Kit, _: NoParams) -> dict[str, Any]:
    password = kit.etcd.ctx.root.password()
    if password is None:
        raise ActionRefused(
            "no root password yet: etcd auth is turned on (and root made) once client TLS is on"
        )
    return {"username": clients.ROOT_USER, "password": password}


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
    new = new_password()
    tools.driver.voters_client(view).user_passwd(clients.ROOT_USER, new)
    try:
        ctx.root.set(new)
    except (ops.SecretNotFoundError, ops.ModelError):
        ctx.remember_root(new)
        tools.driver.voters_client(view).user_passwd(clients.ROOT_USER, old)
        raise
    logger.info("decision: root password rotated")
    return {"result": "root password rotated; read it with get-root-password"}
