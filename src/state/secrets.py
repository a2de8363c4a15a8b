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
        return self._content().get("password")

    def pending(self) -> str | None:
        """A rotation's new password, kept until etcd is known to have taken it or not."""
        return self._content().get("next")

    def _content(self) -> dict[str, str]:
        secret_id = self.peers.root_secret_id()
        if not secret_id:
            return {}
        try:
            return self.model.get_secret(id=secret_id).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError) as error:
            logger.warning("cannot read the root password secret: %s", error)
            return {}

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
        """Leader: the password etcd has, alone in the secret (a new revision)."""
        self._write({"password": password})

    def begin_rotation(self, current: str, new: str) -> None:
        """Leader: keep the new password beside the current one before etcd gets it, so a
        change that times out (applied or not) never leaves etcd with a password nobody has."""
        self._write({"password": current, "next": new})

    def _write(self, content: dict[str, str]) -> None:
        secret_id = self.peers.root_secret_id()
        assert secret_id is not None
        self.model.get_secret(id=secret_id).set_content(content)


def new_password() -> str:
    return secrets.token_urlsafe(24)
