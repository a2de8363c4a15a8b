"""The application's own Juju secrets: the etcd root user's password. The password lives only
here; etcdctl gets it in its environment (never argv, never a log line)."""

from __future__ import annotations

import logging
import secrets

import ops

import literals as k
from state.peers import PeerData

logger = logging.getLogger(__name__)


class RootSecret:
    """The root password's secret, found through the id the leader keeps in peer app data."""

    def __init__(self, model: ops.Model, peers: PeerData):
        self.model = model
        self.peers = peers

    def password(self) -> str | None:
        secret_id = self.peers.root_secret_id()
        if not secret_id:
            return None
        try:
            content = self.model.get_secret(id=secret_id).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError) as error:
            logger.warning("cannot read the root password secret: %s", error)
            return None
        return content.get("password")

    def ensure(self) -> str:
        """Leader: the root password, made (and kept in an app-owned secret) on first use."""
        password = self.password()
        if password:
            return password
        password = new_password()
        secret = self.model.app.add_secret(
            {"password": password},
            label=k.ROOT_SECRET_LABEL,
            description="etcd root user's password (juju run etcd-k8s/leader get-root-password)",
        )
        assert secret.id is not None
        self.peers.set_root_secret(secret.id)
        return password

    def set(self, password: str) -> None:
        """Leader: a new password in the existing secret (a new revision)."""
        secret_id = self.peers.root_secret_id()
        assert secret_id is not None
        self.model.get_secret(id=secret_id).set_content({"password": password})


def new_password() -> str:
    return secrets.token_urlsafe(24)
