"""The raw tools' side of the backup benchmark: what an operator would script without the charm.

- `download_and_restore`: one boto3 `download_file` of the backup object and one raw
  `snapshot restore` of it into a scratch data dir (the goal's "one download + one raw restore");
- `documented_procedure`: etcd's own disaster-recovery procedure (etcd.io, "Restoring a
  cluster"): every member restores the same file with the same `--initial-cluster` and token,
  all at once, then all start; seconds until all three answer as healthy voters. Plain etcd
  processes on loopback ports, no charm and no bench pods: the floor that procedure could reach.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.bench.binaries import source_dir

TOKEN = "bench-documented-restore"


def restore_tool(version: str) -> list[str]:
    folder = source_dir(version)
    utl = folder / "etcdutl"
    return [str(utl)] if utl.exists() else [str(folder / "etcdctl")]


def restore_into(version: str, snapshot: Path, data_dir: Path, name: str, cluster: str) -> None:
    peer = dict(pair.split("=", 1) for pair in cluster.split(","))[name]
    subprocess.run(
        [
            *restore_tool(version),
            "snapshot",
            "restore",
            str(snapshot),
            f"--data-dir={data_dir}",
            f"--name={name}",
            f"--initial-cluster={cluster}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster-token={TOKEN}",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "ETCDCTL_API": "3"},
        timeout=1800,
    )


def download_and_restore(
    s3_client: object, bucket: str, key: str, version: str, scratch: Path
) -> tuple[float, float]:
    """(download seconds, restore seconds) of the raw tools."""
    target = scratch / "raw-download.db"
    started = time.monotonic()
    s3_client.download_file(bucket, key, str(target))  # type: ignore[attr-defined]
    downloaded = time.monotonic() - started
    cluster = "solo=http://127.0.0.1:12380"
    started = time.monotonic()
    restore_into(version, target, scratch / "raw-restore", "solo", cluster)
    restored = time.monotonic() - started
    target.unlink()
    shutil.rmtree(scratch / "raw-restore", ignore_errors=True)
    return downloaded, restored


def documented_procedure(version: str, snapshot: Path, scratch: Path) -> tuple[float, float]:
    """(restore seconds, seconds from start until 3 healthy voters) of etcd's own procedure."""
    names = [f"m{i}" for i in range(3)]
    peers = {n: f"http://127.0.0.1:{22380 + 10 * i}" for i, n in enumerate(names)}
    clients = {n: f"http://127.0.0.1:{22379 + 10 * i}" for i, n in enumerate(names)}
    cluster = ",".join(f"{n}={peers[n]}" for n in names)
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        for f in [
            pool.submit(restore_into, version, snapshot, scratch / n, n, cluster) for n in names
        ]:
            f.result()
    restored = time.monotonic() - started
    procs = [
        subprocess.Popen(
            [
                str(source_dir(version) / "etcd"),
                f"--name={n}",
                f"--data-dir={scratch / n}",
                f"--listen-peer-urls={peers[n]}",
                f"--listen-client-urls={clients[n]}",
                f"--advertise-client-urls={clients[n]}",
                f"--initial-advertise-peer-urls={peers[n]}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in names
    ]
    try:
        started = time.monotonic()
        _await_healthy(version, list(clients.values()))
        return restored, time.monotonic() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        for n in names:
            shutil.rmtree(scratch / n, ignore_errors=True)


def _await_healthy(version: str, endpoints: list[str], patience: float = 600.0) -> None:
    etcdctl = str(source_dir(version) / "etcdctl")
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        answer = subprocess.run(
            [etcdctl, f"--endpoints={','.join(endpoints)}", "endpoint", "health"],
            capture_output=True,
            env={**os.environ, "ETCDCTL_API": "3"},
            timeout=30,
        )
        if answer.returncode == 0:
            return
        time.sleep(0.05)
    raise TimeoutError("the documented procedure's members did not become healthy")
