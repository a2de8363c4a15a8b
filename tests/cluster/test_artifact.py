"""The packed charm on the bench: what `juju deploy ./etcd-k8s_amd64.charm` would run.

The units run the charm's code, templates and metadata/config/actions yaml from the unpacked
.charm (tests/conftest.py packs it with tools/pack, or takes $ETCD_K8S_CHARM), so a module,
template or dependency missing from the artifact fails here (see ArtifactCharm for what comes
from where). One etcd version (3.5) keeps it short: these check the artifact, the rest of the
suite checks the behaviour on both versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.checks import assert_formed, assert_keys, write_keys
from tests.bench.juju import REPO, Juju
from tests.cluster.test_clients import (
    test_clients_get_their_own_prefix_and_nothing_else as _clients_case,
)
from tests.cluster.test_tls import test_scaling_with_tls_on as _tls_case

pytestmark = [pytest.mark.artifact, pytest.mark.parametrize("version", ["3.5"], indirect=True)]


def test_bench_runs_the_artifact(bench: Juju, unpacked_charm: Path) -> None:
    assert bench.artifact is not None and bench.artifact.root == unpacked_charm.resolve()
    module = bench.charm_type.__module__
    assert module == "charm"
    with bench.artifact.active():
        import charm
        import etcd_config

        assert Path(charm.__file__).is_relative_to(unpacked_charm.resolve())
        assert Path(etcd_config.TEMPLATES).resolve() == unpacked_charm.resolve() / "templates"
    assert bench.charm_root == unpacked_charm.resolve()
    # Outside a hook the process's own modules of those names are the working tree's again.
    import charm

    assert Path(charm.__file__).resolve() == REPO / "src" / "charm.py"


def test_deploy_add_unit_scale_down(bench: Juju) -> None:
    bench.deploy(3, leader=0)
    bench.settle()
    assert_formed(bench, 3)
    assert bench.app_status.message.startswith("3/3 units are healthy voters")
    written = write_keys(bench, "artifact", 50)

    bench.add_unit(1)
    bench.settle()
    assert_formed(bench, 4)

    bench.remove_unit(1)
    bench.settle()
    listed = assert_formed(bench, 3)
    assert len(listed) == 3
    assert all(u.status.name == "active" for u in bench.units.values()), bench.log[-5:]
    assert_keys(bench, written)


def test_tls_on_the_packed_charm(bench: Juju) -> None:
    _tls_case(bench)


def test_client_relation_on_the_packed_charm(bench: Juju) -> None:
    _clients_case(bench)
