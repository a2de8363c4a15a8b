"""What a learner's metrics say of the raft snapshot it caught up from (text as etcd 3.4.23
and 3.5.1 print it)."""

from __future__ import annotations

import pytest

from workload.metrics import applied_a_snapshot, received_a_snapshot

RECEIVED = 'etcd_network_snapshot_receive_success{From="f319d1338b69dda7"} 1\n'
APPLIED = "etcd_server_snapshot_apply_in_progress_total 0\n"
APPLYING = "etcd_server_snapshot_apply_in_progress_total 1\n"


@pytest.mark.parametrize(
    ("text", "applied"),
    [
        ("# HELP etcd_server_has_leader ...\netcd_server_has_leader 1\n" + APPLIED, False),
        (RECEIVED + APPLIED, True),
        (RECEIVED + APPLYING, False),
        (RECEIVED.replace("} 1", "} 0") + APPLIED, False),
        (RECEIVED + RECEIVED.replace("f319", "aaaa") + APPLIED, True),
        ("", False),
    ],
    ids=["none-received", "received-applied", "still-applying", "zero", "two-senders", "empty"],
)
def test_applied_a_snapshot(text: str, applied: bool) -> None:
    assert applied_a_snapshot(text) is applied


@pytest.mark.parametrize(
    ("text", "received"),
    [
        (APPLIED, False),
        (RECEIVED + APPLYING, True),
        (RECEIVED.replace("} 1", "} 0") + APPLIED, False),
        ("", False),
    ],
    ids=["none-received", "received", "zero", "empty"],
)
def test_received_a_snapshot(text: str, received: bool) -> None:
    assert received_a_snapshot(text) is received
