"""The .charm itself, as `juju deploy` gets it: what is in it, that its own venv imports the
charm, and that its `dispatch` runs hooks as the Juju agent runs them.

The charm is packed once per session by real charmcraft (tools/pack; $ETCD_K8S_CHARM reuses a
.charm instead). Hooks run with stub hook tools (tests/bench/artifact.py) that record every
call; no Pebble exists, so the charm must say it waits for its container."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.bench.artifact import (
    UNANSWERED_EXIT,
    HookRun,
    default_answers,
    import_check,
    imported_modules,
    install_hook_tools,
    interpreter_for,
    run_dispatch,
    venv_python_version,
)

REPO = Path(__file__).resolve().parents[2]
TOP_LEVEL = {
    "dispatch",
    "src",
    "templates",
    "venv",
    "metadata.yaml",
    "config.yaml",
    "actions.yaml",
    "manifest.yaml",
}
# The distributions the charm needs at run time (import name -> where it lives in the venv).
RUNTIME = {
    "ops": "ops/__init__.py",
    "pydantic": "pydantic/__init__.py",
    "pydantic_core": "pydantic_core/__init__.py",
    "jinja2": "jinja2/__init__.py",
    "markupsafe": "markupsafe/__init__.py",
    "tenacity": "tenacity/__init__.py",
    "cryptography": "cryptography/__init__.py",
    "yaml": "yaml/__init__.py",
    "charmlibs.interfaces.tls_certificates": "charmlibs/interfaces/tls_certificates/__init__.py",
    "boto3": "boto3/__init__.py",
    "botocore": "botocore/__init__.py",
    "cosl": "cosl/__init__.py",
    "diskcache": "diskcache/__init__.py",
}
MAX_CHARM_MB = 20  # 15 MB with boto3: botocore's models for other services are left out


def tracked(path: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-s", "--", path], cwd=REPO, capture_output=True, text=True
    )
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return out.stdout.splitlines()


# ---- contents ----------------------------------------------------------------------------------


def packed_names(charm: Path) -> set[str]:
    """Every path in the .charm itself (the zip Juju gets, not an unpacked copy that the
    cluster tests run, and so write bytecode into)."""
    with zipfile.ZipFile(charm) as archive:
        names = {n.rstrip("/") for n in archive.namelist()}
    return names | {str(Path(n).parent) for n in names if "/" in n}


def test_top_level_is_the_charm_and_nothing_else(packed_charm: Path) -> None:
    expected = TOP_LEVEL | ({"LICENSE"} if (REPO / "LICENSE").exists() else set())
    assert {n.split("/", 1)[0] for n in packed_names(packed_charm)} == expected


def test_no_dev_files_anywhere(packed_charm: Path) -> None:
    names = packed_names(packed_charm)
    forbidden = re.compile(
        r"^(tests|benchmarks|tools|lib|\.git|\.ci|\.venv[^/]*|parts|stage|prime)(/|$)"
        r"|^(README[^/]*|run-tests|run-demo|requirements[^/]*|pyproject\.toml|charmcraft\.yaml)$"
        r"|^src/__pycache__|^venv/(pip|setuptools|pkg_resources|_distutils_hack)(/|$|-)"
    )
    assert sorted(n for n in names if forbidden.search(n)) == []


def test_dispatch_and_entrypoint_are_executable(unpacked_charm: Path) -> None:
    dispatch = unpacked_charm / "dispatch"
    assert dispatch.stat().st_mode & 0o111 == 0o111
    text = dispatch.read_text()
    assert text.startswith("#!/bin/sh")
    assert "PYTHONPATH=lib:venv" in text and "exec ./src/charm.py" in text, text
    entry = unpacked_charm / "src" / "charm.py"
    assert entry.stat().st_mode & 0o111 == 0o111
    assert entry.read_text().splitlines()[0] == "#!/usr/bin/env python3"
    # No hooks/: Juju 3 runs dispatch; packed hooks/install would be a copy of dispatch that
    # ops runs again as a legacy hook (a second process).
    assert not (unpacked_charm / "hooks").exists()


def test_git_keeps_the_entrypoint_executable() -> None:
    (line,) = tracked("src/charm.py")
    assert line.startswith("100755 "), line


def test_code_templates_and_yaml_are_the_working_tree(unpacked_charm: Path) -> None:
    def files(top: Path) -> list[str]:
        """Every file under `top`, subpackages too, but Python's caches."""
        return sorted(
            str(p.relative_to(top))
            for p in top.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )

    for folder in ("src", "templates"):
        mine = files(REPO / folder)
        assert files(unpacked_charm / folder) == mine, folder
        assert any("/" in name for name in mine) or folder == "templates"
        for name in mine:
            assert (unpacked_charm / folder / name).read_bytes() == (
                REPO / folder / name
            ).read_bytes(), f"{folder}/{name} differs from the working tree: pack again"
    for name in ("metadata.yaml", "config.yaml", "actions.yaml"):
        packed = yaml.safe_load((unpacked_charm / name).read_text())
        assert packed == yaml.safe_load((REPO / name).read_text()), name
    manifest = yaml.safe_load((unpacked_charm / "manifest.yaml").read_text())
    assert manifest["bases"][0]["name"] == "ubuntu" and manifest["bases"][0]["channel"] == "24.04"


def test_venv_holds_every_runtime_dependency(unpacked_charm: Path) -> None:
    venv = unpacked_charm / "venv"
    assert [name for name, where in RUNTIME.items() if not (venv / where).exists()] == []


def test_venv_versions_are_the_lock(unpacked_charm: Path) -> None:
    """Every distribution in the venv is pinned in requirements.txt, at that version, and every
    pin that applies to this venv's Python is there."""
    installed = {}
    for meta in (unpacked_charm / "venv").glob("*.dist-info/METADATA"):
        fields = dict(
            line.split(": ", 1) for line in meta.read_text().splitlines()[:10] if ": " in line
        )
        installed[_normal(fields["Name"])] = fields["Version"]
    python = venv_python_version(unpacked_charm) or sys.version_info[:2]
    pinned = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)(?: ; (.*?))?\s*\\?$", line):
            if m.group(3) and not _marker_holds(m.group(3), python):
                continue
            pinned[_normal(m.group(1))] = m.group(2)
    assert installed == pinned


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _marker_holds(marker: str, python: tuple[int, ...]) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate(
        {
            "python_version": f"{python[0]}.{python[1]}",
            "python_full_version": f"{python[0]}.{python[1]}.0",
            "platform_python_implementation": "CPython",
            "implementation_name": "cpython",
            "sys_platform": "linux",
        }
    )


# ---- imports with the artifact's own venv --------------------------------------------------------


def test_the_venv_is_for_the_python_that_runs_it(unpacked_charm: Path) -> None:
    """A destructive-mode pack builds the venv with the host's /usr/bin/python3 (a release build
    on ubuntu@24.04 with its 3.12): the compiled wheels must match the python3 dispatch runs."""
    wanted = venv_python_version(unpacked_charm)
    assert wanted is not None, "no compiled extension in the venv: pydantic-core is one"
    out = subprocess.run(
        [interpreter_for(unpacked_charm), "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert tuple(int(x) for x in out.stdout.split()) == wanted


def test_every_module_the_charm_imports_is_in_the_artifact(unpacked_charm: Path) -> None:
    """Every import anywhere in src/ (deferred ones too), with only the artifact's venv and src
    on the path and no site-packages (python3 -S)."""
    modules = imported_modules(unpacked_charm / "src") | {"charm"}
    assert {"ops", "pydantic", "jinja2", "tenacity"} <= modules
    out = import_check(unpacked_charm, modules)
    assert out.returncode == 0, out.stderr
    result = yaml.safe_load(out.stdout)
    assert result["errors"] == {}
    stdlib = Path(result["path"][-1]).parent  # .../lib/python3.X
    outside = {
        name: file
        for name, file in result["files"].items()
        if file
        and not Path(file).is_relative_to(unpacked_charm)
        and not Path(file).is_relative_to(stdlib)
    }
    assert outside == {}, "modules loaded from outside the artifact and the stdlib"


# ---- hooks through dispatch, as Juju runs them ---------------------------------------------------


@pytest.fixture
def charm_copy(unpacked_charm: Path, tmp_path: Path) -> Path:
    """A copy to run hooks in (ops keeps its state in the charm directory, as on a unit)."""
    return Path(shutil.copytree(unpacked_charm, tmp_path / "charm", symlinks=True))


def hook_tools(charm_dir: Path, answers: dict[str, str] | None = None) -> tuple[Path, Path]:
    storage = charm_dir.parent / "storage" / "data-0"
    storage.mkdir(parents=True, exist_ok=True)
    bin_dir, log = charm_dir.parent / "tools", charm_dir.parent / "calls.log"
    install_hook_tools(
        bin_dir,
        log,
        answers if answers is not None else default_answers(charm_dir, storage),
        python=interpreter_for(charm_dir),
    )
    return bin_dir, log


def assert_ran(run: HookRun) -> None:
    assert run.unanswered == [], f"hook tools the stubs do not answer: {run.unanswered}"
    assert run.logged("ERROR") == [], run.logged("ERROR")
    assert run.returncode == 0, run.stderr[-3000:]


def test_install_through_dispatch_waits_for_the_container(charm_copy: Path) -> None:
    bin_dir, log = hook_tools(charm_copy)
    run = run_dispatch(charm_copy, bin_dir, log, "install")
    assert_ran(run)
    assert "Emitting Juju event install." in run.logged(), run.logged()
    assert not [line for line in run.logged() if "legacy" in line.lower()], run.logged()
    assert run.statuses(), "the install hook set no unit status"
    status, message = run.statuses()[-1]
    assert status == "waiting" and "container" in message, run.statuses()
    used = {c.tool for c in run.calls}
    assert {"config-get", "status-set", "juju-log"} <= used, used


def test_update_status_after_install(charm_copy: Path) -> None:
    bin_dir, log = hook_tools(charm_copy)
    assert_ran(run_dispatch(charm_copy, bin_dir, log, "install"))
    run = run_dispatch(charm_copy, bin_dir, log, "update-status")
    assert_ran(run)
    assert "Emitting Juju event update_status." in run.logged(), run.logged()
    assert run.statuses()[-1][0] == "waiting", run.statuses()


def test_a_hook_tool_without_an_answer_is_named(charm_copy: Path) -> None:
    """The stubs' own check: a tool the test does not answer fails the hook, by name."""
    answers = default_answers(charm_copy, charm_copy.parent)
    del answers["config-get"]
    bin_dir, log = hook_tools(charm_copy, answers)
    run = run_dispatch(charm_copy, bin_dir, log, "install")
    assert run.unanswered == ["config-get"], run.logged()[-3:]
    assert run.returncode != 0
    assert any(f"exited with status {UNANSWERED_EXIT}" in line for line in run.logged("ERROR"))


# ---- S3: boto3 with botocore's trimmed models ----------------------------------------------------


def test_the_charm_stays_small(packed_charm: Path, unpacked_charm: Path) -> None:
    assert packed_charm.stat().st_size < MAX_CHARM_MB * 1e6, packed_charm.stat().st_size
    data = unpacked_charm / "venv" / "botocore" / "data"
    assert sorted(p.name for p in data.iterdir()) == [
        "_retry.json",
        "endpoints.json",
        "partitions.json",
        "s3",
        "sdk-default-configuration.json",
        "sts",
    ]


def test_boto3_makes_an_s3_client_from_the_trimmed_models(unpacked_charm: Path) -> None:
    """What workload/s3_client.py does before the first request, with only the artifact."""
    script = (
        "import sys\n"
        f"sys.path[:0] = [{str(unpacked_charm / 'venv')!r}, {str(unpacked_charm / 'src')!r}]\n"
        "from core.backups import S3Settings\n"
        "from pathlib import Path\n"
        "from workload.s3_client import s3_client\n"
        "s = S3Settings(bucket='b12', access_key='a', secret_key='s',"
        " endpoint='http://127.0.0.1:9', uri_style='path')\n"
        "c = s3_client(s, Path('/tmp'))\n"
        "print(c.meta.service_model.service_name, c.meta.endpoint_url)\n"
    )
    out = subprocess.run(
        [interpreter_for(unpacked_charm), "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["s3", "http://127.0.0.1:9"]
