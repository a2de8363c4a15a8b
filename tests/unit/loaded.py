"""What a fresh interpreter has loaded after importing some of the charm's modules: for the
tests that keep a hook cheap to start (boto3, croniter load only where they are needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def loaded(code: str, roots: tuple[str, ...]) -> list[str]:
    """The modules under the top-level packages `roots` that `code` leaves loaded."""
    script = (
        f"import sys; sys.path.insert(0, {str(SRC)!r})\n{code}\n"
        "import json\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {roots!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    names: list[str] = json.loads(out.stdout)
    return names
