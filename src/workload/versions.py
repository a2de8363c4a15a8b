"""The cluster version a live member reports: `etcd_cluster_version` on its metrics listener,
which serves plain http whatever the client TLS (the client port's `/version` would need a
client certificate). Asked from the charm container, which resolves the pods' DNS names; the
workload image is distroless (no curl to exec)."""

from __future__ import annotations

import logging
import re
import urllib.request
from collections.abc import Iterable
from urllib.parse import urlparse

from literals import METRICS_PORT

logger = logging.getLogger(__name__)

# etcd sets the old version's gauge to 0 and the new one's to 1 when the cluster version moves:
# the one at 1 is the cluster version.
_CLUSTER_VERSION = re.compile(r'^etcd_cluster_version\{cluster_version="([^"]+)"\} 1$', re.M)
# No proxy: the members are in the cluster, whatever the model's proxy settings.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cluster_version(client_urls: Iterable[str], timeout: float = 2.0) -> str | None:
    """The first answer of the members behind `client_urls` (their metrics port), or None."""
    for url in client_urls:
        host = urlparse(url).hostname
        if not host:
            continue
        try:
            with _OPENER.open(f"http://{host}:{METRICS_PORT}/metrics", timeout=timeout) as answer:
                text = answer.read().decode(errors="replace")
        except (OSError, ValueError) as error:
            logger.debug("no cluster version from %s: %s", host, error)
            continue
        match = _CLUSTER_VERSION.search(text)
        if match:
            return match[1]
    return None
