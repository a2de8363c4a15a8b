"""The README's commands, run as a user runs them from a fresh clone: as subprocesses, with no
PYTHONPATH (pytest's `pythonpath` setting does not reach them), from the repository's top."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.network import can_run

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted(
    p.stem
    for p in (REPO / "benchmarks").glob("*.py")
    if 'if __name__ == "__main__"' in p.read_text()
)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    return env


def test_every_benchmark_is_found() -> None:
    expected = {
        "foundation",
        "availability",
        "operations",
        "tls",
        "clients",
        "parallel",
        "backups",
        "refresh",
    }
    assert expected <= set(BENCHMARKS)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_help(name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--help"],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "usage:" in out.stdout


def test_bench_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.bench", "demo", "--help"],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]


MEMBER_ROW = re.compile(r"^([0-9a-f]{1,16})\s+(etcd-k8s-\d+)\s+(leader|voter|learner)\s", re.M)


@pytest.mark.cluster
def test_run_demo() -> None:
    """`./run-demo`: 3 units, grown to 5; the last member table lists 5 voters (one leader)."""
    why = can_run()
    if why:
        pytest.fail(why)
    out = subprocess.run(
        ["./run-demo"], cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    tables = out.stdout.split("ID                NAME")
    assert len(tables) == 3, out.stdout  # before and after the growth
    last = MEMBER_ROW.findall(tables[-1])
    assert len(last) == 5, tables[-1]
    assert len({name for _, name, _ in last}) == 5
    assert [role for _, _, role in last].count("leader") == 1, last
    assert "learner" not in {role for _, _, role in last}
    assert "5/5 units are healthy voters" in tables[-1]
    assert "cleaned up" in out.stdout
