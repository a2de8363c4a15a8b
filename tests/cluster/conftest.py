"""The cluster suite: the charm on the bench, real etcd of each version under test.

ETCD_VERSIONS (default "3.4,3.5") picks the versions. BENCH_MODE=parallel runs every unit's hooks
at once, as Juju does (tests/bench/scheduler.py); BENCH_SEEDS=1,2 then runs each test once per
seed (ids like `[etcd3.5-par1]`), BENCH_SEED one seed. A failing parallel test prints its
interleaving: which unit ran which hook when. A missing prerequisite fails the test
rather than skipping it: the README's test command installs everything, so a skip would hide a
broken setup."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from tests.bench.binaries import installed
from tests.bench.juju import Juju
from tests.bench.network import can_run
from tests.bench.s3 import SeaweedS3

VERSIONS = [v.strip() for v in os.environ.get("ETCD_VERSIONS", "3.4,3.5").split(",") if v.strip()]

for noisy in ("ops", "scenario"):
    logging.getLogger(noisy).setLevel(logging.ERROR)


PARALLEL = os.environ.get("BENCH_MODE") == "parallel"
SEEDS = [
    int(s)
    for s in (os.environ.get("BENCH_SEEDS") or os.environ.get("BENCH_SEED") or "0").split(",")
    if s.strip()
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if PARALLEL and "bench_seed" in metafunc.fixturenames:
        metafunc.parametrize("bench_seed", SEEDS, ids=lambda s: f"par{s}", indirect=True)


@pytest.fixture
def bench_seed(request: pytest.FixtureRequest) -> int | None:
    """The parallel scheduler's seed (None: serial mode)."""
    return getattr(request, "param", None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call":
        item.stash[_FAILED] = report.failed  # type: ignore[attr-defined]
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(params=VERSIONS, ids=lambda v: f"etcd{v}")
def version(request: pytest.FixtureRequest) -> str:
    why = can_run()
    if why:
        pytest.fail(why)
    if installed(request.param) is None:
        pytest.fail(f"etcd {request.param} is not installed: run the README's test command")
    return request.param


# The etcd versions whose tests run the packed charm (what `juju deploy` gets) rather than the
# working tree: the whole suite on one version proves the artifact as much as the behaviour.
PACKED = [v.strip() for v in os.environ.get("ETCD_K8S_PACKED", "3.5").split(",") if v.strip()]


@pytest.fixture
def bench(version: str, bench_seed: int | None, request: pytest.FixtureRequest) -> Iterator[Juju]:
    """The model. On the versions in $ETCD_K8S_PACKED (default 3.5), and for tests marked
    `artifact`, the units run the packed charm (unpacked; see ArtifactCharm); else the working
    tree, unless $ETCD_K8S_CHARM_DIR says otherwise."""
    charm_dir = None
    if version in PACKED or request.node.get_closest_marker("artifact"):
        charm_dir = request.getfixturevalue("unpacked_charm")
    model = Juju.start(version, charm_dir=charm_dir, seed=bench_seed)
    try:
        yield model
    finally:
        failed = request.node.stash.get(_FAILED, False)
        if model.parallel is not None and failed:
            print(f"\n== interleaving (parallel mode, seed {bench_seed}):")
            print("\n".join(model.interleaving))
        if failed:  # CI keeps the output of a failed run, not the bench's files
            print_etcd_logs(model)
        model.close()


def print_etcd_logs(model: Juju, lines: int = 40) -> None:
    """The last lines of each unit's etcd log (every pod incarnation writes to the same file)."""
    for name, unit in sorted(model.units.items()):
        path = unit.pod.log_path
        if not path.exists():
            continue
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        print(f"\n== {name}: the last {len(tail)} lines of {path}")
        print("\n".join(tail))


@pytest.fixture
def s3() -> Iterator[SeaweedS3]:
    """A real S3 server (SeaweedFS, signatures checked) for one test."""
    server = SeaweedS3().start()
    try:
        yield server
    finally:
        server.close()
