"""The lock files against their sources, without packing or the network: a dependency added to
requirements.in (or tools/charmcraft.in) but not locked with tools/lock fails here, before a
pack would build a charm without it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def sources(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def pins(path: Path) -> dict[str, list[str]]:
    """name -> pinned versions (several when markers split them), and every pin has hashes."""
    text = path.read_text()
    found: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if m := re.match(r"([A-Za-z0-9_.-]+)==([^ ;\\\n]+)", block):
            assert "--hash=sha256:" in block, f"{m.group(1)} is pinned without a hash"
            found.setdefault(_normal(m.group(1)), []).append(m.group(2))
    return found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize(
    "source, lock",
    [("requirements.in", "requirements.txt"), ("tools/charmcraft.in", "tools/charmcraft.txt")],
)
def test_every_source_requirement_is_locked_within_its_range(source: str, lock: str) -> None:
    locked = pins(REPO / lock)
    for req in sources(REPO / source):
        versions = locked.get(_normal(req.name))
        assert versions, f"{req.name} is in {source} but not in {lock}: run tools/lock"
        assert all(req.specifier.contains(v) for v in versions), (req, versions)


def test_the_lock_was_made_by_tools_lock() -> None:
    for lock in ("requirements.txt", "tools/charmcraft.txt"):
        head = (REPO / lock).read_text().splitlines()[:2]
        assert head[1].strip() == "#    tools/lock", head


def test_binary_packages_are_locked() -> None:
    part = yaml.safe_load((REPO / "charmcraft.yaml").read_text())["parts"]["charm"]
    assert part["charm-strict-dependencies"] is True
    locked = pins(REPO / "requirements.txt")
    assert [p for p in part["charm-binary-python-packages"] if _normal(p) not in locked] == []
    for needs_a_compiler in ("pydantic-core", "cryptography", "cffi"):
        assert needs_a_compiler in part["charm-binary-python-packages"]
