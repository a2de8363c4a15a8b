"""The packed charm (.charm) as Juju gets it: unpack it, find the Python its venv was built for,
and run its `dispatch` as the Juju agent does, with stub hook tools that record every call.

Used by tests/artifact (contents, imports, hooks), by the bench (`Juju.start(charm_dir=...)`
loads the charm class from an unpacked .charm) and by benchmarks/coldstart.py.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import stat
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
APP = "etcd-k8s"

# A plain system PATH, as a charm container has; the hook tools' directory goes in front of it,
# as the Juju agent puts its own.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def pack() -> Path:
    """`tools/pack` (real charmcraft, pinned; see there), returning the .charm it left."""
    out = subprocess.run(
        [str(REPO / "tools" / "pack")], capture_output=True, text=True, timeout=1800
    )
    if out.returncode != 0:
        raise RuntimeError(f"tools/pack failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    charms = re.findall(r"^(\S+\.charm)\b", out.stdout, re.M)
    if not charms:
        raise RuntimeError(f"tools/pack named no .charm:\n{out.stdout}")
    return Path(charms[-1])


def unpack(charm: Path, dest: Path) -> Path:
    """Unzip a .charm as Juju does: file modes (dispatch and src/charm.py are executables) and
    symlinks kept. Returns `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(charm) as archive:
        for info in archive.infolist():
            target = dest / info.filename
            mode = info.external_attr >> 16
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                target.symlink_to(archive.read(info).decode())
                continue
            with archive.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            if mode & 0o777:
                target.chmod(mode & 0o777)
    return dest


def venv_python_version(charm_dir: Path) -> tuple[int, int] | None:
    """The CPython minor the venv's compiled extensions were built for (cpython-311-... -> 3.11);
    None when the venv holds only pure Python."""
    tags = {
        m.group(1)
        for p in (charm_dir / "venv").rglob("*.so")
        if (m := re.search(r"\.cpython-3(\d+)-", p.name))
    }
    if len(tags) > 1:
        raise RuntimeError(f"venv mixes extensions for several Pythons: {sorted(tags)}")
    return (3, int(tags.pop())) if tags else None


def interpreter_for(charm_dir: Path) -> str:
    """The interpreter that can run this charm's venv: `python3` on the system PATH when it is
    the venv's minor (a destructive-mode pack builds with the host's /usr/bin/python3), else a
    `python3.X` of that minor; else an error that says which Python the venv needs."""
    wanted = venv_python_version(charm_dir)
    found = shutil.which("python3", path=SYSTEM_PATH)
    if found and (wanted is None or _version_of(found) == wanted):
        return found
    assert wanted is not None
    exact = shutil.which(f"python{wanted[0]}.{wanted[1]}", path=SYSTEM_PATH)
    if exact:
        return exact
    raise RuntimeError(
        f"the charm's venv is built for Python {wanted[0]}.{wanted[1]} (its compiled wheels), "
        f"which this machine does not have (python3 is {found and _version_of(found)})"
    )


def _version_of(python: str) -> tuple[int, int]:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    major, minor = out.stdout.split()
    return int(major), int(minor)


# ---- what the charm imports ----------------------------------------------------------------------


def imported_modules(src: Path) -> set[str]:
    """Every module any file in `src` imports, anywhere (top level or deferred into a function),
    except under `if TYPE_CHECKING:`; relative imports left out."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for path in sorted(src.rglob("*.py")):
        visit(ast.parse(path.read_text(), str(path)))
    return names


def preload(src: Path) -> None:
    """Import now every third-party module the charm imports, deferred ones too. Hooks that run
    at once in threads (the parallel mode) and import a package for the first time together can
    meet half-initialized modules ("cannot import name ... partially initialized module", a
    KeyError in importlib): CPython's per-module import locks give a module in progress to a
    second thread rather than deadlock when package and submodule imports cross. One process
    per hook, as in Juju, never meets that."""
    src = src.resolve()
    own = {p.stem for p in src.glob("*.py")} | {
        p.name for p in src.iterdir() if (p / "__init__.py").exists()
    }
    for name in sorted(imported_modules(src)):
        if name.split(".", 1)[0] not in own:
            importlib.import_module(name)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_check(charm_dir: Path, modules: Iterable[str]) -> subprocess.CompletedProcess[str]:
    """Import `modules` with the artifact's own venv and src/ only: `python3 -S` (no site: none
    of this host's site- or dist-packages can stand in for a missing dependency). Prints, one
    JSON object, each module's file (or the error) and where every loaded module came from."""
    script = (
        "import importlib, json, sys\n"
        f"sys.path[:0] = [{str(charm_dir / 'venv')!r}, {str(charm_dir / 'src')!r}]\n"
        "errors = {}\n"
        f"for name in {sorted(modules)!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        errors[name] = f'{type(e).__name__}: {e}'\n"
        "files = {n: getattr(m, '__file__', None) for n, m in list(sys.modules.items())}\n"
        "print(json.dumps({'errors': errors, 'files': files, 'path': sys.path}))\n"
    )
    return subprocess.run(
        [interpreter_for(charm_dir), "-S", "-c", script],
        capture_output=True,
        text=True,
        cwd=charm_dir,
        env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
        timeout=120,
    )


# ---- the hook tools ------------------------------------------------------------------------------

# Juju 3.6's hook tools (`juju help-tool`). Each gets a stub that records its call; the ones in
# `answers` (a shell snippet each) answer, every other one fails loudly with its name.
JUJU_HOOK_TOOLS = (
    "action-fail",
    "action-get",
    "action-log",
    "action-set",
    "add-metric",
    "application-version-set",
    "close-port",
    "config-get",
    "credential-get",
    "goal-state",
    "is-leader",
    "juju-log",
    "juju-reboot",
    "k8s-raw-get",
    "k8s-raw-set",
    "k8s-spec-get",
    "k8s-spec-set",
    "leader-get",
    "leader-set",
    "network-get",
    "open-port",
    "opened-ports",
    "payload-register",
    "payload-status-set",
    "payload-unregister",
    "pod-spec-get",
    "pod-spec-set",
    "relation-get",
    "relation-ids",
    "relation-list",
    "relation-model-get",
    "relation-set",
    "resource-get",
    "secret-add",
    "secret-get",
    "secret-grant",
    "secret-ids",
    "secret-info-get",
    "secret-remove",
    "secret-revoke",
    "secret-set",
    "state-delete",
    "state-get",
    "state-set",
    "status-get",
    "status-set",
    "storage-add",
    "storage-get",
    "storage-list",
    "unit-get",
)

UNANSWERED_EXIT = 97  # a stub without an answer exits with this, and names itself on stderr


def _printf(text: str) -> str:
    return "printf '%s\\n' " + _sh_quote(text)


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def default_answers(
    charm_dir: Path, storage_dir: Path, leader: bool = True, address: str = "10.1.0.10"
) -> dict[str, str]:
    """Answers for a unit alone in its model with no relation but its peers (not yet joined),
    no secret, its `data` storage at `storage_dir`: config-get gives config.yaml's defaults."""
    config = yaml.safe_load((charm_dir / "config.yaml").read_text()) or {}
    defaults = {k: v["default"] for k, v in (config.get("options") or {}).items() if "default" in v}
    network = {
        "bind-addresses": [
            {
                "mac-address": "",
                "interface-name": "eth0",
                "addresses": [{"hostname": "", "value": address, "cidr": f"{address}/24"}],
                "macaddress": "",
                "interfacename": "eth0",
            }
        ],
        "egress-subnets": [f"{address}/32"],
        "ingress-addresses": [address],
    }
    storage = {"kind": "filesystem", "location": str(storage_dir)}
    return {
        "config-get": _printf(json.dumps(defaults)),
        "is-leader": _printf(json.dumps(leader)),
        "juju-log": ":",
        "status-set": ":",
        "status-get": _printf(json.dumps({"message": "", "status": "unknown", "status-data": {}})),
        "application-version-set": ":",
        "relation-ids": _printf("[]"),
        "relation-list": _printf("[]"),
        "goal-state": _printf(json.dumps({"units": {}, "relations": {}})),
        "network-get": _printf(json.dumps(network)),
        "storage-list": _printf(json.dumps(["data/0"])),
        # `storage-get -s data/0 location --format=json` or the whole dict
        "storage-get": 'case " $* " in *" location "*) '
        + _printf(json.dumps(str(storage_dir)))
        + ";; *) "
        + _printf(json.dumps(storage))
        + ";; esac",
        "opened-ports": _printf("[]"),
        "open-port": ":",
        "close-port": ":",
        "action-get": _printf("{}"),
        "secret-ids": _printf("[]"),
        "secret-get": "echo 'ERROR secret not found' >&2; exit 1",
        "secret-info-get": "echo 'ERROR secret not found' >&2; exit 1",
        "state-get": _printf("{}"),
        "state-set": ":",
        "state-delete": ":",
    }


@dataclass(frozen=True)
class ToolCall:
    tool: str
    args: tuple[str, ...]


def install_hook_tools(
    bin_dir: Path,
    log: Path,
    answers: Mapping[str, str],
    python: str | None = None,
    isolated: bool = True,
) -> None:
    """One /bin/sh stub per Juju hook tool in `bin_dir`, appending its argv to `log` (fields
    separated by US, calls by RS), then answering.

    `python`: the `python3` that the charm's shebang (`#!/usr/bin/env python3`) finds first on
    PATH, as the charm container's /usr/bin/python3 would be. `isolated`: it runs with -S, so
    this host's site- and dist-packages (a Debian python3-yaml, say) cannot stand in for a
    module missing from the charm's venv; that is the only way these runs differ from Juju's
    (the venv is on PYTHONPATH, which -S keeps). Timings (benchmarks/coldstart.py) use
    isolated=False."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in JUJU_HOOK_TOOLS:
        answer = answers.get(
            tool,
            f"echo {tool} >> {_sh_quote(str(_unanswered_log(log)))}\n"
            f'echo "stub hook tool {tool}: no answer in this test" >&2; exit {UNANSWERED_EXIT}',
        )
        script = (
            "#!/bin/sh\n"
            f"{{ printf '%s' {tool}; for a in \"$@\"; do printf '\\037%s' \"$a\"; done;"
            f" printf '\\036'; }} >> {_sh_quote(str(log))}\n"
            f"{answer}\n"
        )
        path = bin_dir / tool
        path.write_text(script)
        path.chmod(0o755)
    if python:
        shim = bin_dir / "python3"
        flags = " -S" if isolated else ""
        shim.write_text(f'#!/bin/sh\nexec {_sh_quote(python)}{flags} "$@"\n')
        shim.chmod(0o755)


def _unanswered_log(log: Path) -> Path:
    return log.with_name(log.name + ".unanswered")


def read_calls(log: Path) -> list[ToolCall]:
    if not log.exists():
        return []
    calls = []
    for record in log.read_text().split("\x1e"):
        if record:
            tool, *args = record.split("\x1f")
            calls.append(ToolCall(tool, tuple(args)))
    return calls


def juju_env(
    charm_dir: Path, bin_dir: Path, hook: str, unit: int = 0, **extra: str
) -> dict[str, str]:
    """The environment the Juju 3.6 agent gives a hook (the variables ops reads and a few it
    does not), with the hook tools first on PATH."""
    env = {
        "PATH": f"{bin_dir}:{SYSTEM_PATH}",
        "LANG": "C.UTF-8",
        "HOME": str(charm_dir.parent),
        "JUJU_CHARM_DIR": str(charm_dir),
        "JUJU_CONTEXT_ID": f"{APP}/{unit}-{hook}-1",
        "JUJU_DISPATCH_PATH": f"hooks/{hook}",
        "JUJU_HOOK_NAME": hook,
        "JUJU_UNIT_NAME": f"{APP}/{unit}",
        "JUJU_MODEL_NAME": "artifact",
        "JUJU_MODEL_UUID": "00000000-0000-4000-8000-0000000a7f1c",
        "JUJU_VERSION": "3.6.0",
        "JUJU_AGENT_SOCKET_ADDRESS": "@/var/lib/juju/agents/unit-etcd-k8s-0/agent.socket",
        "JUJU_AGENT_SOCKET_NETWORK": "unix",
        "JUJU_API_ADDRESSES": "10.152.183.1:17070",
        "JUJU_PRINCIPAL_UNIT": "",
        "JUJU_AVAILABILITY_ZONE": "",
        "JUJU_SLA": "unsupported",
        "CLOUD_API_VERSION": "1.31.0",
    }
    env.update(extra)
    return env


@dataclass(frozen=True)
class HookRun:
    returncode: int
    stdout: str
    stderr: str
    calls: list[ToolCall]
    unanswered: list[str]  # hook tools called that the stubs have no answer for

    def statuses(self) -> list[tuple[str, str]]:
        """(status, message) of every unit status-set, in order."""
        out = []
        for call in self.calls:
            if call.tool == "status-set" and "--application=False" in call.args:
                rest = [a for a in call.args if a != "--application=False"]
                status = rest[0]
                message = rest[2] if len(rest) > 2 and rest[1] == "--" else ""
                out.append((status, message))
        return out

    def logged(self, level: str | None = None) -> list[str]:
        """What the charm (and ops) sent to juju-log, at `level` if given."""
        return [
            c.args[-1]
            for c in self.calls
            if c.tool == "juju-log" and (level is None or c.args[1] == level)
        ]


def run_dispatch(
    charm_dir: Path,
    bin_dir: Path,
    log: Path,
    hook: str,
    timeout: float = 120,
    unit: int = 0,
    **env: str,
) -> HookRun:
    """`./dispatch` in the charm's directory, as the agent runs it for `hook`."""
    before = len(read_calls(log))
    missing = _unanswered_log(log)
    missing_before = len(missing.read_text().split()) if missing.exists() else 0
    out = subprocess.run(
        ["./dispatch"],
        cwd=charm_dir,
        env=juju_env(charm_dir, bin_dir, hook, unit, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    unanswered = missing.read_text().split()[missing_before:] if missing.exists() else []
    return HookRun(
        out.returncode, out.stdout, out.stderr, read_calls(log)[before:], sorted(set(unanswered))
    )


def charm_yaml(charm_dir: Path, name: str) -> dict[str, Any]:
    return yaml.safe_load((charm_dir / name).read_text()) or {}


# ---- the bench's charm from an unpacked .charm -----------------------------------------------


@dataclass
class ArtifactCharm:
    """The charm class of an unpacked .charm, for the bench, in this test process.

    While a hook runs (`active()`), the charm's own modules (every top-level name in its
    src/) are the artifact's, and its src/ then its venv/ come first on sys.path, as dispatch
    has them (the script's directory, then PYTHONPATH=lib:venv). Outside a hook the process's
    own modules of those names (the working tree's, which the unit tests import) are back.
    So the charm's code, its templates (found beside its modules) and, through `root`, its
    metadata/config/actions yaml all come from the artifact. Third-party packages are shared
    with the process: those it has already imported (ops, which ops.testing must share with the
    charm; pydantic, yaml, cryptography, ...) stay the dev venv's, the same versions since
    tools/setup.sh installs requirements.txt, but not the artifact's files; one first imported
    during a hook comes from the artifact's venv and stays loaded. That every module the charm
    imports exists in the artifact's venv is checked when it is loaded, in a separate
    `python3 -S` process that sees only the artifact (import_check)."""

    root: Path
    charm_type: type = object
    modules: dict[str, ModuleType] = field(default_factory=dict)
    users: int = 0  # hooks running its code now
    _saved: dict[str, ModuleType] = field(default_factory=dict)
    _saved_path: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> ArtifactCharm:
        root = root.resolve()
        for needed in ("dispatch", "src/charm.py", "venv", "metadata.yaml"):
            if not (root / needed).exists():
                raise RuntimeError(f"{root} is not an unpacked .charm: no {needed}")
        checked = import_check(root, imported_modules(root / "src") | {"charm"})
        if checked.returncode != 0:
            raise RuntimeError(f"importing the artifact's charm failed:\n{checked.stderr}")
        errors = json.loads(checked.stdout)["errors"]
        if errors:
            raise RuntimeError(f"the artifact cannot import what its charm imports: {errors}")
        artifact = cls(root)
        with artifact.active():
            module = importlib.import_module("charm")
            preload(root / "src")
        where = Path(module.__file__ or "").resolve()
        if where != root / "src" / "charm.py":
            raise RuntimeError(f"charm imported from {where}, not from the artifact")
        artifact.charm_type = module.EtcdK8sCharm
        return artifact

    def own_names(self) -> set[str]:
        src = self.root / "src"
        return {p.stem for p in src.glob("*.py")} | {
            p.name for p in src.iterdir() if (p / "__init__.py").exists()
        }

    @contextmanager
    def active(self) -> Iterator[None]:
        """The artifact's modules in place while any hook runs: in the bench's parallel mode
        several units' hooks overlap, so the first in swaps them in and the last out back."""
        with _ACTIVE_LOCK:
            if self.users == 0:
                self._swap_in()
            self.users += 1
        try:
            yield
        finally:
            with _ACTIVE_LOCK:
                self.users -= 1
                if self.users == 0:
                    self._swap_out()

    def _swap_in(self) -> None:
        names = self.own_names()
        self._saved = {n: sys.modules.pop(n) for n in list(sys.modules) if _own(n, names)}
        sys.modules.update(self.modules)
        self._saved_path = list(sys.path)
        sys.path[:0] = [str(self.root / "src"), str(self.root / "venv")]
        importlib.invalidate_caches()

    def _swap_out(self) -> None:
        names = self.own_names()
        for name in [n for n in sys.modules if _own(n, names)]:
            self.modules[name] = sys.modules.pop(name)
        sys.modules.update(self._saved)
        sys.path[:] = self._saved_path


_ACTIVE_LOCK = threading.Lock()


def _own(module: str, names: set[str]) -> bool:
    return module.split(".", 1)[0] in names
