"""What one hook (or action) knows of this unit, and the one deadline all its waiting shares.
The reconcile's handlers and the actions get a `UnitContext`, never the reconciler."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass, field

from core import tls
from core.identity import config_digest, identity
from core.model import Settings, UnitInfo
from relations.certificates import Offers
from state.config import EtcdOptions
from state.peers import PeerData
from state.secrets import RootSecret
from workload.etcdctl import Etcdctl
from workload.pebble import Workload
from workload.tls_files import TlsFiles, client_cert

logger = logging.getLogger(__name__)

HOOK_BUDGET = 240.0  # seconds of waiting (starts, promotions, etcd's 5 s rule) one hook may do
ACTION_BUDGET = 900.0  # an action waits longer: a restore loads a whole database


class Deadline:
    """One budget of waiting per hook: every in-hook wait takes its time from it, so waits in
    one hook never stack past it; a wait it cuts short is logged."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def budget(self, wanted: float, what: str) -> float:
        """How long `what` may wait: what it wants, or what is left of the hook's budget."""
        left = max(0.0, self.end - time.monotonic())
        if left < wanted:
            logger.warning(
                "the hook's %.0f s of waiting is nearly spent: %s waits %.1f s, not %.0f s",
                self.seconds,
                what,
                left,
                wanted,
            )
            return left
        return wanted


@dataclass
class UnitContext:
    """This unit during one hook: who it is, its state in Juju, its container, its options."""

    app: str
    unit: str
    model: str
    domain: str
    workload: Workload
    peers: PeerData
    root: RootSecret
    options: EtcdOptions
    deadline: Deadline
    is_leader: bool
    offers: Offers = field(default_factory=Offers.none)
    me: UnitInfo = field(init=False)
    settings: Settings = field(init=False)
    files: TlsFiles = field(init=False)
    _release: str | None = field(default=None, init=False)
    _root_auth: tuple[str, str] | None | bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.settings = self.peers.app().tls
        published = self.peers.published()
        self.me = self.identity(published.member_id if published else None)
        if published is not None:
            self.me = dataclasses.replace(
                self.me,
                config_digest=published.config_digest,
                member_state=published.member_state,
            )
        self.files = TlsFiles(self.workload)

    def identity(self, member_id: str | None = None) -> UnitInfo:
        """This unit's URLs as its member serves them: the peer scheme from the application's
        record, the client scheme from the config file once written (mid-roll they differ)."""
        return identity(
            self.app,
            self.unit,
            self.model,
            member_id,
            peer_scheme=tls.peer_scheme(self.settings.peer),
            client_scheme=self._serving_client_scheme(),
            domain=self.domain,
        )

    def _serving_client_scheme(self) -> str:
        text = self.workload.config_text() if self.workload.ready else None
        if text is None:
            return tls.client_scheme(self.settings.client)
        return "https" if 'advertise-client-urls: "https://' in text else "http"

    def reread_settings(self) -> None:
        """The leader changed a TLS record: this unit's peer URL follows its scheme."""
        self.settings = self.peers.app().tls
        peer_url = identity(
            self.app,
            self.unit,
            self.model,
            peer_scheme=tls.peer_scheme(self.settings.peer),
            domain=self.domain,
        ).peer_url
        self.me = dataclasses.replace(self.me, peer_url=peer_url)

    @property
    def wanted_digest(self) -> str:
        return config_digest(self.options.etcd_json(), self.settings)

    @property
    def solo_cluster(self) -> str:
        """`--initial-cluster` naming only this member: etcd ignores it when data exists."""
        return f"{self.me.member_name}={self.me.peer_url}"

    def new_token(self) -> str:
        return f"{self.app}-{uuid.uuid4().hex[:16]}"

    # ---- reaching etcd ----------------------------------------------------------------------

    def client(self, endpoints: list[str], timeout: float = 5.0) -> Etcdctl:
        """etcdctl against `endpoints`, with this unit's client certificate for https ones."""
        return Etcdctl(
            self.workload.run, endpoints, timeout=timeout, cert=client_cert(), auth=self.root_auth()
        )

    def root_auth(self) -> tuple[str, str] | None:
        """Root's credentials once the secret exists: etcdctl sends them whether or not auth is
        on (etcd ignores them while it is off), so a cluster restored with auth on is reached."""
        if self._root_auth is False:
            password = self.root.password()
            self._root_auth = ("root", password) if password else None
        return self._root_auth  # type: ignore[return-value]

    def remember_root(self, password: str) -> None:
        self._root_auth = ("root", password)

    def etcd_release(self) -> str:
        """Read from the image once per hook; it changes only with the pod."""
        if self._release is None:
            self._release = self.workload.etcd_release()
        return self._release

    def etcd_version(self) -> tuple[int, int]:
        major, minor = self.etcd_release().split(".")[:2]
        return int(major), int(minor)
