"""The status message catalogue: the one source of what `juju status` can say. Every message
the core makes comes from it, every entry is used, and the reference page is generated from it."""

from __future__ import annotations

import ast
import random
import re
from pathlib import Path

from core import membership, messages
from tests.unit.test_membership import random_observation

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
SAYERS = {"Wait", "Blocked", "HoldData", "Status", "Verdict"}


def test_the_reference_page_is_the_catalogue() -> None:
    page = (REPO / "docs" / "reference" / "statuses.md").read_text()
    assert page == messages.reference(), "regenerate: cd src && python -m core.messages"


def test_no_status_text_is_written_outside_the_catalogue() -> None:
    """A Wait/Blocked/Status/Verdict made with a literal text would bypass the catalogue."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "messages.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in SAYERS:
                continue
            texts = [a for a in node.args if isinstance(a, ast.Constant | ast.JoinedStr)]
            texts = [
                a for a in texts if not (isinstance(a, ast.Constant) and len(str(a.value)) < 12)
            ]
            if texts:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, offenders


def test_every_entry_is_said_somewhere() -> None:
    code = "\n".join(p.read_text() for p in SRC.rglob("*.py") if p.name != "messages.py")
    unused = [m.key for m in messages.CATALOGUE if not re.search(f"[\"']{m.key}[\"']", code)]
    assert not unused, unused


def test_keys_are_unique_and_texts_distinct() -> None:
    keys = [m.key for m in messages.CATALOGUE]
    assert len(keys) == len(set(keys))
    assert all(re.fullmatch(r"[a-z]+\.[a-z0-9-]+", k) for k in keys)


def test_what_the_core_says_is_in_the_catalogue() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        obs = random_observation(rng)
        for step in (
            membership.next_local_step(obs, "token"),
            membership.next_cluster_step(obs),
            membership.next_departure_step(obs),
        ):
            reason = getattr(step, "reason", None)
            if reason and type(step).__name__ in {"Wait", "Blocked", "HoldData"}:
                assert messages.known(reason) is not None, reason
