"""Fixtures shared by the suites: the packed charm.

`packed_charm`: the .charm that `tools/pack` builds (real charmcraft, once per session), or the
one $ETCD_K8S_CHARM names (then nothing is packed). `unpacked_charm`: it, unzipped as Juju
does (modes kept), in a session temp dir; read-only by convention: a test that runs hooks in it
takes a copy (`charm_copy` in tests/artifact)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest

from tests.bench.artifact import pack, unpack


@pytest.fixture(scope="session")
def packed_charm(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    given = os.environ.get("ETCD_K8S_CHARM")
    if given:
        path = Path(given)
        if not path.is_file():
            pytest.fail(f"ETCD_K8S_CHARM={given}: no such file")
        return path.resolve()
    if worker_id == "master":  # one process: pack here
        return pack()
    # pytest-xdist workers share the session's temp root: the first packs, the others wait
    # for it and take the same .charm (one pack per run, not one per worker).
    shared = tmp_path_factory.getbasetemp().parent
    with open(shared / "pack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "packed-charm"
        if not done.exists():
            charm = pack()
            kept = shared / charm.name
            shutil.copy2(charm, kept)
            done.write_text(str(kept))
        return Path(done.read_text())


@pytest.fixture(scope="session")
def unpacked_charm(packed_charm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack(packed_charm, tmp_path_factory.mktemp("packed") / "etcd-k8s")
