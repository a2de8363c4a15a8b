"""A member's Prometheus text on its metrics listener, which serves plain http whatever the
client TLS (the client port would need a client certificate) and answers before the member
serves clients. Read from the charm container, which resolves the pods' DNS names; the
workload image is distroless (no curl to exec)."""

from __future__ import annotations

import logging
import re
import urllib.request
from urllib.parse import urlparse

from literals import METRICS_PORT

logger = logging.getLogger(__name__)

# No proxy: the members are in the cluster, whatever the model's proxy settings.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_SNAPSHOTS_RECEIVED = re.compile(r"^etcd_network_snapshot_receive_success\{[^}]*\} (\S+)$", re.M)
_SNAPSHOTS_APPLYING = re.compile(r"^etcd_server_snapshot_apply_in_progress_total (\S+)$", re.M)


def member_metrics(client_url: str, timeout: float = 2.0) -> str | None:
    """The metrics text of the member behind `client_url`, or None when it does not answer."""
    host = urlparse(client_url).hostname
    if not host:
        return None
    try:
        with _OPENER.open(f"http://{host}:{METRICS_PORT}/metrics", timeout=timeout) as answer:
            return str(answer.read().decode(errors="replace"))
    except (OSError, ValueError) as error:
        logger.debug("no metrics from %s: %s", host, error)
        return None


def received_a_snapshot(text: str) -> bool:
    """This etcd process received a raft snapshot (the counters start at zero with each
    process: a restart clears it)."""
    return sum(float(v) for v in _SNAPSHOTS_RECEIVED.findall(text)) > 0


def applied_a_snapshot(text: str) -> bool:
    """This process received a raft snapshot and is not applying one now."""
    applying = sum(float(v) for v in _SNAPSHOTS_APPLYING.findall(text))
    return received_a_snapshot(text) and applying == 0
