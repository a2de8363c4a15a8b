"""The packed charm on the bench: what `juju deploy ./etcd-k8s_amd64.charm` would run.

The units run the charm's code, templates and metadata/config/actions yaml from the unpacked
.charm (tests/conftest.py packs it with tools/pack, or takes $ETCD_K8S_CHARM), so a module,
template or dependency missing from the artifact fails (see ArtifactCharm for what comes from
where). The whole cluster suite on etcd 3.5 runs the packed charm (conftest's PACKED): every
deploy, scale, TLS, client, restore and safety case there is a case on the artifact. This file
checks that the bench really runs the artifact's code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.juju import REPO, Juju

pytestmark = [pytest.mark.artifact, pytest.mark.parametrize("version", ["3.5"], indirect=True)]


def test_bench_runs_the_artifact(bench: Juju, unpacked_charm: Path) -> None:
    assert bench.artifact is not None and bench.artifact.root == unpacked_charm.resolve()
    module = bench.charm_type.__module__
    assert module == "charm"
    with bench.artifact.active():
        import charm
        from workload import render

        assert Path(charm.__file__).is_relative_to(unpacked_charm.resolve())
        assert Path(render.TEMPLATES).resolve() == unpacked_charm.resolve() / "templates"
    assert bench.charm_root == unpacked_charm.resolve()
    # Outside a hook the process's own modules of those names are the working tree's again.
    import charm

    assert Path(charm.__file__).resolve() == REPO / "src" / "charm.py"
