"""What the action families share: the cluster view an action needs, member URLs, statuses."""

from __future__ import annotations

import time

from core import actions as toolbox
from core.actions import ActionRefused
from core.model import ClusterView, Member
from engine.tools import Tools
from workload.etcdctl import EndpointStatus, Etcdctl


def seconds(started: float) -> str:
    return f"{time.monotonic() - started:.2f}s"


def view_with_quorum(tools: Tools, action: str) -> ClusterView:
    return toolbox.require_quorum(tools.observer.live_view(), action)


def url(member: Member) -> str:
    if not member.client_urls:
        raise ActionRefused(f"member {toolbox.label(member)} has not started: it has no client URL")
    return member.client_urls[0]


def statuses(client: Etcdctl, view: ClusterView) -> dict[str, EndpointStatus]:
    urls = [m.client_urls[0] for m in view.members if m.client_urls]
    return {s.member_id: s for s in client.endpoint_status(urls)}
