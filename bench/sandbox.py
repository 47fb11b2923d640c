#!/usr/bin/env python
"""Cost per call of the code sandbox (`agent_rl.envs.tools.sandbox.run_python`): a fresh bwrap sandbox and
interpreter per call, against a plain ``subprocess.run([python, "-I", "-c", code])`` of the same
interpreter, over ``--calls`` calls of ``print(1)`` (and, with ``--numpy``, of a call that imports numpy
and sympy). Prints the wall time (median) and CPU time (mean, all processes of the call) per call and the
ratios sandbox / plain.

    python bench/sandbox.py               # 30 calls of print(1)
    python bench/sandbox.py --numpy       # also: import numpy, sympy

Numbers depend on the machine and its load; compare runs made in one invocation only.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent_rl.envs.tools.sandbox import DEFAULT_PYTHON, Limits, run_python, sandbox_missing  # noqa: E402


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished children and their descendants so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(calls: int, *functions) -> list[tuple[float, float]]:
    """Per function, the median wall seconds and the mean CPU seconds of a call, over ``calls`` calls. The
    functions take turns (so that a change in the machine's load touches both alike), after one warm-up
    call each. CPU time is the steadier number on a busy machine: wall time there includes each process's
    wait for a free core, and a sandboxed call hands over between more processes."""
    for function in functions:
        function()
    walls: list[list[float]] = [[] for _ in functions]
    cpus = [0.0 for _ in functions]
    for _ in range(calls):
        for i, function in enumerate(functions):
            cpu, start = children_cpu_s(), time.perf_counter()
            function()
            walls[i].append(time.perf_counter() - start)
            cpus[i] += children_cpu_s() - cpu
    return [(statistics.median(wall), cpu / calls) for wall, cpu in zip(walls, cpus, strict=True)]


def compare(code: str, expected: str, calls: int) -> None:
    """Print the sandboxed and the plain cost of ``code`` and their ratios."""

    def sandboxed() -> None:
        text = run_python(code, Limits()).text()
        assert text == expected, text

    def plain() -> None:
        done = subprocess.run([DEFAULT_PYTHON, "-I", "-c", code], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == expected, done.stdout

    (sandbox_wall, sandbox_cpu), (plain_wall, plain_cpu) = measure(calls, sandboxed, plain)
    print(f"{code!r}, {calls} calls each, per call:")
    for what, sandbox, plain_ in (
        ("wall (median)", sandbox_wall, plain_wall),
        ("CPU (mean)", sandbox_cpu, plain_cpu),
    ):
        print(
            f"  {what:13s} sandbox {sandbox * 1000:6.1f} ms, plain {plain_ * 1000:6.1f} ms: "
            f"ratio {sandbox / plain_:.2f}, +{(sandbox - plain_) * 1000:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=30, help="calls per measurement (default 30)")
    parser.add_argument("--numpy", action="store_true", help="also time a call that imports numpy and sympy")
    args = parser.parse_args()
    missing = sandbox_missing()
    if missing:
        sys.exit(missing)
    compare("print(1)", "1", args.calls)
    if args.numpy:
        compare("import numpy, sympy; print(2)", "2", max(3, args.calls // 3))


if __name__ == "__main__":
    main()
