"""The bench's parallel mode next to its serial mode, measured on real etcd (a script, not a
test): the wall time of `juju deploy -n 3`, `juju add-unit` (3 -> 4) and a scale-down (4 -> 3),
each until the model is quiet again, in serial mode (one hook at a time across the model) and in
parallel mode (every unit's hooks at once, as Juju runs them), with the ratio parallel/serial.

    sudo .venv/bin/python -m benchmarks.parallel [--versions 3.5] [--repeat 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src")]

from tests.bench.binaries import installed  # noqa: E402
from tests.bench.checks import assert_formed  # noqa: E402
from tests.bench.juju import Juju  # noqa: E402

STEPS = ("deploy -n 3", "add-unit", "scale-down")


def timed(j: Juju, step: str) -> float:
    started = time.monotonic()
    if step == "deploy -n 3":
        j.deploy(3, leader=0)
    elif step == "add-unit":
        j.add_unit(1)
    else:
        j.remove_unit(1)
    j.settle()
    return time.monotonic() - started


def one_run(version: str, mode: str, seed: int) -> dict[str, float]:
    """Seconds per step, in one model; the cluster must be formed after each step."""
    with Juju.start(version, mode=mode, seed=seed) as j:
        times = {}
        for step, units in zip(STEPS, (3, 4, 3), strict=True):
            times[step] = timed(j, step)
            assert_formed(j, units)
            assert not j.failures(), j.failures()
        return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", default="3.5", help="etcd versions, comma separated")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode (median shown)")
    parser.add_argument("--seed", type=int, default=1, help="the parallel scheduler's seed")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    for noisy in ("ops", "scenario"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    for version in [v.strip() for v in args.versions.split(",") if v.strip()]:
        if installed(version) is None:
            print(f"etcd {version} is not installed: run tools/setup.sh", file=sys.stderr)
            return 1
        runs: dict[str, list[dict[str, float]]] = {"serial": [], "parallel": []}
        for i in range(args.repeat):
            for mode in ("serial", "parallel"):  # alternated: load changes hit both alike
                runs[mode].append(one_run(version, mode, args.seed + i))
        print(f"\netcd {version}: median of {args.repeat} runs, seconds until the model is quiet")
        print(f"{'step':<14}{'serial':>9}{'parallel':>10}{'parallel/serial':>17}")
        for step in STEPS:
            serial = statistics.median(r[step] for r in runs["serial"])
            parallel = statistics.median(r[step] for r in runs["parallel"])
            print(f"{step:<14}{serial:>9.1f}{parallel:>10.1f}{parallel / serial:>17.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
