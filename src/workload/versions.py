"""The cluster version a live member reports: `etcd_cluster_version` on its metrics listener
(workload/metrics.py; the client port's `/version` would need a client certificate)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from workload.metrics import member_metrics

# etcd sets the old version's gauge to 0 and the new one's to 1 when the cluster version moves:
# the one at 1 is the cluster version.
_CLUSTER_VERSION = re.compile(r'^etcd_cluster_version\{cluster_version="([^"]+)"\} 1$', re.M)


def cluster_version(client_urls: Iterable[str], timeout: float = 2.0) -> str | None:
    """The first answer of the members behind `client_urls` (their metrics port), or None."""
    for url in client_urls:
        text = member_metrics(url, timeout)
        match = _CLUSTER_VERSION.search(text) if text else None
        if match:
            return match[1]
    return None
