"""The time the charm reads for backups: the host's clock in UTC. A test may set
$ETCD_K8S_TEST_NOW (literals.CLOCK_ENV) to an ISO 8601 time to run the schedule and the
retention over a simulated day without waiting for it; Juju never sets it, and the charm's
decisions take `now` as a parameter (core/schedule.py, core/retention.py) all the same."""

from __future__ import annotations

import datetime
import os

from literals import CLOCK_ENV


def now() -> datetime.datetime:
    fake = os.environ.get(CLOCK_ENV, "")
    if fake:
        moment = datetime.datetime.fromisoformat(fake.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
    return datetime.datetime.now(datetime.UTC)
