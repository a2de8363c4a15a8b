"""The alert rules in src/alert_rules/, proven with Debian's promtool: `promtool check rules` on
every file, and `promtool test rules` cases for every alert, one that fires it on a bad series
and one that stays quiet on a healthy one. The cases are data below; the test writes them out
as promtool's test file. promtool compares annotations as well, which are templates already
checked by `check rules`: the cases run against copies with the annotations left out, so each
case states only what the alert decides (which series, which labels, after how long)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

RULES = Path(__file__).resolve().parents[2] / "src" / "alert_rules"
TOPOLOGY = {
    "juju_model": "m",
    "juju_model_uuid": "00000000-0000-4000-8000-000000000001",
    "juju_application": "etcd",
}
KV = {"grpc_service": "etcdserverpb.KV", "grpc_type": "unary"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run tools/setup.sh (Debian's prometheus)")
    return path


def series(metric: str, values: str, unit: int = 0, **labels: str) -> dict[str, str]:
    all_labels = {**TOPOLOGY, "juju_charm": "etcd-k8s", "juju_unit": f"etcd/{unit}", **labels}
    text = ",".join(f'{k}="{v}"' for k, v in all_labels.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


def member(unit: int = 0, charm: bool = True, **labels: str) -> dict[str, str]:
    """An alert's labels for one member's series (the rule keeps its topology)."""
    found = {**TOPOLOGY, "juju_unit": f"etcd/{unit}", **labels}
    return {**found, "juju_charm": "etcd-k8s"} if charm else found


def buckets(metric: str, slow_from: float, **labels: str) -> list[dict[str, str]]:
    """A histogram whose every observation lands in the bucket above `slow_from`."""
    bounds = [0.01, slow_from, slow_from * 4]
    counts = {0.01: "0x20", slow_from: "0x20", slow_from * 4: "0+10x20"}
    out = [series(f"{metric}_bucket", counts[b], le=str(b), **labels) for b in bounds]
    return [*out, series(f"{metric}_bucket", "0+10x20", le="+Inf", **labels)]


def fast(metric: str, **labels: str) -> list[dict[str, str]]:
    """A histogram whose every observation is under 10 ms."""
    return [series(f"{metric}_bucket", "0+10x20", le=le, **labels) for le in ("0.01", "+Inf")]


UP = "up"
SIZE = "etcd_mvcc_db_total_size_in_bytes"
IN_USE = "etcd_mvcc_db_total_size_in_use_in_bytes"
QUOTA = "etcd_server_quota_backend_bytes"
HANDLED = "grpc_server_handled_total"
MIB = 1024 * 1024

# alert -> (eval time, firing series, the firing alerts' labels (severity added), quiet series)
CASES: dict[str, tuple[str, list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]] = {
    "EtcdNoLeader": (
        "3m",
        [series("etcd_server_has_leader", "0x5"), series("etcd_server_has_leader", "1x5", 1)],
        [member(0)],
        [series("etcd_server_has_leader", "1x5"), series("etcd_server_has_leader", "1x5", 1)],
    ),
    "EtcdInsufficientMembers": (
        "5m",
        [series(UP, "1x10"), series(UP, "0x10", 1), series(UP, "0x10", 2)],
        [TOPOLOGY],
        [series(UP, "1x10"), series(UP, "1x10", 1), series(UP, "0x10", 2)],
    ),
    "EtcdMembersDown": (
        "12m",
        [series(UP, "1x15"), series(UP, "1x15", 1), series(UP, "0x15", 2)],
        [TOPOLOGY],
        [
            series(UP, "1x15"),
            series(UP, "1x15", 1),
            series("etcd_network_peer_sent_failures_total", "0x15", To="abc"),
        ],
    ),
    "EtcdHighNumberOfLeaderChanges": (
        "12m",
        [series("etcd_server_leader_changes_seen_total", "0+1x20")],
        [TOPOLOGY],
        [series("etcd_server_leader_changes_seen_total", "1x20")],
    ),
    "EtcdHighNumberOfFailedProposals": (
        "35m",
        [series("etcd_server_proposals_failed_total", "0+600x40")],
        [member(0)],
        [series("etcd_server_proposals_failed_total", "0+6x40")],
    ),
    "EtcdLearnerStuck": (
        "35m",
        [series("etcd_server_is_learner", "1x40")],
        [member(0)],
        [series("etcd_server_is_learner", "1x10 0x30")],  # promoted after ten minutes
    ),
    "EtcdMemberDatabaseSizeOutlier": (
        "65m",
        [
            series(SIZE, f"{200 * MIB}x70"),
            series(SIZE, f"{200 * MIB}x70", 1),
            series(SIZE, f"{600 * MIB}x70", 2),
        ],
        [member(2)],
        [  # far apart, but small: a defrag's swing
            series(SIZE, f"{1 * MIB}x70"),
            series(SIZE, f"{1 * MIB}x70", 1),
            series(SIZE, f"{5 * MIB}x70", 2),
        ],
    ),
    "EtcdHighFsyncDurations": (
        "15m",
        buckets("etcd_disk_wal_fsync_duration_seconds", 0.5),
        [member(0)],
        fast("etcd_disk_wal_fsync_duration_seconds"),
    ),
    "EtcdHighFsyncDurationsCritical": (
        "15m",
        buckets("etcd_disk_wal_fsync_duration_seconds", 1),
        [member(0)],
        buckets("etcd_disk_wal_fsync_duration_seconds", 0.2),  # slow, under the timeout
    ),
    "EtcdHighCommitDurations": (
        "15m",
        buckets("etcd_disk_backend_commit_duration_seconds", 0.25),
        [member(0)],
        fast("etcd_disk_backend_commit_duration_seconds"),
    ),
    "EtcdDatabaseNearQuota": (
        "15m",
        [series(SIZE, "85x20"), series(QUOTA, "100x20")],
        [member(0)],
        [series(SIZE, "70x20"), series(QUOTA, "100x20")],
    ),
    "EtcdDatabaseQuotaLowSpace": (
        "15m",
        [series(SIZE, "97x20"), series(QUOTA, "100x20")],
        [member(0)],
        [series(SIZE, "85x20"), series(QUOTA, "100x20")],
    ),
    "EtcdNoSpaceAlarm": (
        "5m",
        [
            series(SIZE, "100x10"),
            series(QUOTA, "100x10"),
            # a member defragmented under its quota, the alarm still armed: Puts refused
            series(SIZE, "10x10", 1),
            series(QUOTA, "100x10", 1),
            series(HANDLED, "0+5x10", 1, grpc_method="Put", grpc_code="ResourceExhausted", **KV),
        ],
        [member(0), member(1, charm=False)],
        [
            series(SIZE, "97x10"),
            series(QUOTA, "100x10"),
            series(HANDLED, "0x10", grpc_method="Put", grpc_code="ResourceExhausted", **KV),
            series(HANDLED, "0+50x10", grpc_method="Put", grpc_code="OK", **KV),
        ],
    ),
    "EtcdExcessiveDatabaseGrowth": (
        "270m",
        [series(SIZE, "0+1000000x300"), series(QUOTA, "400000000x300")],
        [member(0)],
        [series(SIZE, "0+1000000x300"), series(QUOTA, "10000000000x300")],
    ),
    "EtcdDatabaseHighFragmentationRatio": (
        "15m",
        [series(IN_USE, f"{150 * MIB}x20"), series(SIZE, f"{400 * MIB}x20")],
        [member(0)],
        [series(IN_USE, f"{390 * MIB}x20"), series(SIZE, f"{400 * MIB}x20")],
    ),
    "EtcdHighNumberOfFailedGRPCRequests": (
        "15m",
        [
            series(HANDLED, "0+970x20", grpc_method="Range", grpc_code="OK", **KV),
            series(HANDLED, "0+30x20", grpc_method="Range", grpc_code="Unavailable", **KV),
        ],
        [member(0, charm=False, grpc_service="etcdserverpb.KV", grpc_method="Range")],
        [
            series(HANDLED, "0+1000x20", grpc_method="Range", grpc_code="OK", **KV),
            series(HANDLED, "0+30x20", grpc_method="Range", grpc_code="NotFound", **KV),
            series(HANDLED, "0x20", grpc_method="Range", grpc_code="Unavailable", **KV),
        ],
    ),
    "EtcdHighNumberOfFailedGRPCRequestsCritical": (
        "15m",
        [
            series(HANDLED, "0+900x20", grpc_method="Range", grpc_code="OK", **KV),
            series(HANDLED, "0+100x20", grpc_method="Range", grpc_code="Unavailable", **KV),
        ],
        [member(0, charm=False, grpc_service="etcdserverpb.KV", grpc_method="Range")],
        [
            series(HANDLED, "0+970x20", grpc_method="Range", grpc_code="OK", **KV),
            series(HANDLED, "0+30x20", grpc_method="Range", grpc_code="Unavailable", **KV),
        ],
    ),
    "EtcdGRPCRequestsSlow": (
        "15m",
        buckets("grpc_server_handling_seconds", 0.15, grpc_method="Range", **KV),
        [member(0, charm=False, grpc_method="Range")],
        [
            *fast("grpc_server_handling_seconds", grpc_method="Range", **KV),
            # Defragment takes as long as the file: not a slow request
            *buckets("grpc_server_handling_seconds", 0.15, grpc_method="Defragment", **KV),
        ],
    ),
    "EtcdMemberCommunicationSlow": (
        "15m",
        buckets("etcd_network_peer_round_trip_time_seconds", 0.15, To="abc"),
        [member(0, To="abc")],
        fast("etcd_network_peer_round_trip_time_seconds", To="abc"),
    ),
}


def rules_by_alert() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(RULES.glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found[rule["alert"]] = rule
    return found


def test_promtool_checks_every_rule_file() -> None:
    files = sorted(RULES.glob("*.yaml"))
    assert len(files) >= 3
    run = subprocess.run([promtool(), "check", "rules", *map(str, files)], capture_output=True)
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    assert set(CASES) == set(rules_by_alert())


def test_promtool_unit_tests(tmp_path: Path) -> None:
    rules = rules_by_alert()
    for path in sorted(RULES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for group in data["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        (tmp_path / path.name).write_text(yaml.safe_dump(data))
    tests = []
    for alert, (at, bad, labels, good) in CASES.items():
        severity = rules[alert]["labels"]["severity"]
        expected = [{"exp_labels": {**one, "severity": severity}} for one in labels]
        for inputs, alerts in ((bad, expected), (good, [])):
            check = {"eval_time": at, "alertname": alert, "exp_alerts": alerts}
            tests.append({"interval": "1m", "input_series": inputs, "alert_rule_test": [check]})
    spec = {
        "rule_files": sorted(p.name for p in tmp_path.glob("*.yaml")),
        "evaluation_interval": "1m",
        "tests": tests,
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(spec))
    run = subprocess.run(
        [promtool(), "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True
    )
    assert run.returncode == 0, run.stdout.decode()[-6000:] + run.stderr.decode()


def test_every_alert_is_documented() -> None:
    page = (RULES.parents[1] / "docs" / "reference" / "alerts.md").read_text()
    assert [a for a in rules_by_alert() if f"| `{a}` |" not in page] == []
