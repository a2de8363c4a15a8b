"""etcd's config file, rendered from `templates/etcd.conf.yml.j2` for the etcd version that
will read it: where this member lives and how it starts (MemberConfig), and the operator's
knobs (state/config.py's EtcdOptions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from literals import METRICS_PORT
from state.config import EtcdOptions

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"


@dataclass(frozen=True)
class TlsConfig:
    """Which transports use TLS, and where the files are (in the container)."""

    peer: bool = False
    client: bool = False
    peer_cert: str = ""
    peer_key: str = ""
    peer_ca: str = ""
    client_cert: str = ""
    client_key: str = ""
    client_ca: str = ""


@dataclass(frozen=True)
class MemberConfig:
    """Where this member lives and how it starts: everything the options do not cover."""

    name: str
    data_dir: str
    peer_url: str
    client_url: str
    initial_cluster: str
    initial_cluster_state: Literal["new", "existing"]
    initial_cluster_token: str
    etcd_version: tuple[int, int] = (3, 5)
    force_new_cluster: bool = False
    tls: TlsConfig = TlsConfig()

    @property
    def peer_scheme(self) -> str:
        return self.peer_url.split("://", 1)[0]

    @property
    def client_scheme(self) -> str:
        return self.client_url.split("://", 1)[0]


def render_config(member: MemberConfig, options: EtcdOptions) -> str:
    import jinja2  # only where a member is (re)started

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    template = env.get_template("etcd.conf.yml.j2")
    return template.render(
        member=member, options=options, version=member.etcd_version, metrics_port=METRICS_PORT
    )
