"""Cold start of a hook from a real process (a script, not a test): the packed charm's
`./dispatch` running a no-op update-status as the Juju agent runs it (stub hook tools that
record each call, no Pebble, so the charm only says it waits for its container), N times,
each a fresh process; next to bare `python3 -c "import ops"` with the artifact's own venv,
interleaved in the same run so both see the same machine load; and the ratio of the medians.

    .venv/bin/python -m benchmarks.coldstart [--charm etcd-k8s_amd64.charm] [-n 20]

Without --charm (or $ETCD_K8S_CHARM) it packs first (tools/pack: real charmcraft, as root).
The python3 is the one the charm's venv was built for (the host's /usr/bin/python3 after a
destructive-mode pack), run plainly as Juju would (no -S). Before timing, one install and one
update-status run, as on a live unit: ops's state database exists, and the bytecode is fresh
(src/ has none in the .charm; the venv's, compiled at build time, is stale once unzipped, since
unzipping gives the sources new mtimes: Python rewrites both on the first hook).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.artifact import (
    SYSTEM_PATH,
    default_answers,
    install_hook_tools,
    interpreter_for,
    juju_env,
    pack,
    run_dispatch,
    unpack,
)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system) of the process and its children: the
    hook tools too. CPU time is what a loaded machine distorts least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"{argv} failed ({out.returncode}): {out.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def measure(charm: Path, runs: int) -> dict[str, list[float]]:
    work = Path(tempfile.mkdtemp(prefix="etcd-k8s-coldstart-"))
    try:
        charm_dir = unpack(charm, work / "charm")
        storage = work / "storage"
        storage.mkdir()
        python = interpreter_for(charm_dir)
        on_path = shutil.which("python3", path=SYSTEM_PATH)
        bin_dir, log = work / "tools", work / "calls.log"
        install_hook_tools(
            bin_dir,
            log,
            default_answers(charm_dir, storage),
            python=None if python == on_path else python,
            isolated=False,
        )
        for hook in ("install", "update-status"):  # warm: state db, src/__pycache__
            run = run_dispatch(charm_dir, bin_dir, log, hook)
            if run.returncode != 0 or run.unanswered:
                raise RuntimeError(f"{hook} failed: {run.unanswered} {run.logged('ERROR')}")
        env = juju_env(charm_dir, bin_dir, "update-status")
        bare_env = dict(env, PYTHONPATH="venv")
        times: dict[str, list[float]] = {}
        commands = {
            "dispatch": (["./dispatch"], env),
            "ops": ([python, "-c", "import ops"], bare_env),
            "python": ([python, "-c", "pass"], bare_env),
        }
        for _ in range(runs):
            for key, (argv, run_env) in commands.items():
                wall, cpu = timed(argv, charm_dir, run_env)
                times.setdefault(key, []).append(wall)
                times.setdefault(f"{key}-cpu", []).append(cpu)
        calls = run_dispatch(charm_dir, bin_dir, log, "update-status").calls
        times["tool-calls"] = [float(len(calls))]
        return times
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coldstart")
    parser.add_argument("--charm", help="a packed .charm (default $ETCD_K8S_CHARM, else pack)")
    parser.add_argument("-n", "--runs", type=int, default=20)
    args = parser.parse_args()
    given = args.charm or os.environ.get("ETCD_K8S_CHARM")
    charm = Path(given) if given else pack()
    times = measure(charm, args.runs)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"== cold start, {charm.name} ({charm.stat().st_size / 1e6:.1f} MB), n={args.runs}")
    for key, label in (
        ("dispatch", "./dispatch update-status (no-op, stub tools)"),
        ("ops", 'python3 -c "import ops" (the venv)'),
        ("python", 'python3 -c "pass"'),
    ):
        values = sorted(times[key])
        print(
            f"  {label:<46} median {median[key] * 1000:6.0f} ms"
            f"  min {values[0] * 1000:5.0f}  max {values[-1] * 1000:5.0f}"
            f"  (cpu median {median[key + '-cpu'] * 1000:4.0f} ms)"
        )
    print(
        f"  ratio dispatch / bare import ops: {median['dispatch'] / median['ops']:.2f}x wall, "
        f"{median['dispatch-cpu'] / median['ops-cpu']:.2f}x cpu"
    )
    print(f"  load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"  hook tool calls per update-status: {times['tool-calls'][0]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
