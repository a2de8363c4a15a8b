"""The bench: a small Juju that runs the charm's code on real etcd (see juju.py).

Importing it puts the working tree's src/ (the charm) and lib/ (the published charm library,
which the bench's client charm uses) on sys.path, as pyproject.toml's pytest `pythonpath`
does under pytest, so `python -m tests.bench` and `python -m benchmarks.<name>` run from a
fresh clone."""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
for _path in reversed([str(_REPO / "src"), str(_REPO / "lib")]):
    if _path not in sys.path:
        sys.path.insert(0, _path)
