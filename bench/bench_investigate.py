"""`vyxops investigate` on the seed against papermill running an empty notebook, in one run.

Both are whole commands started the same way (a fresh process), so the ratio measures what vyxops
adds on top of papermill itself. The target pair runs in a lean venv (the package and the sandbox
extra only, bench/lean_venv.py): in a venv with more installed, papermill's own imports can grow
by what the extras bring (jsonschema imports rfc3987_syntax, which builds a parser, when the lab's
dependencies are installed), which slows both sides and flattens the ratio. The same pair in the
venv the bench runs from is reported beside it. Target (lean): ≤ 1.3×.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EMPTY = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {"tags": ["parameters"]},
            "outputs": [],
            "source": ["x = 1"],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds of ``cmd``, and the CPU seconds (user + sys) of it and every process it waited for (the
    kernel, which both commands reap): on a shared machine the CPU varies less with the load than the wall."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def commands(bin_dir: Path, t: Path, tag: str) -> tuple[list[str], list[str]]:
    """The empty papermill run and the seed investigation, with ``bin_dir``'s scripts, writing under ``t``."""
    papermill = [
        str(bin_dir / "papermill"),
        "--log-level",
        "ERROR",
        "--no-progress-bar",
        str(t / "empty.ipynb"),
        str(t / f"empty-out-{tag}.ipynb"),
        "-p",
        "x",
        "2",
    ]
    investigate = [
        str(bin_dir / "vyxops"),
        "investigate",
        "--scenario",
        "stub-image",
        "--app",
        "vyx-app",
        "--out",
        str(t / f"out-{tag}"),
    ]
    return papermill, investigate


def summary(empty: list[float], inv: list[float], empty_cpu: list[float], inv_cpu: list[float]) -> dict[str, object]:
    """Medians, their ratio, and the spread: each side's range and the range of the per-round ratios; the CPU
    seconds' medians and ranges beside them."""
    e, i = statistics.median(empty), statistics.median(inv)
    rounds = [b / a for a, b in zip(empty, inv, strict=True)]
    return {
        "papermill_empty_s": e,
        "investigate_s": i,
        "ratio": i / e,
        "ratio_range": (min(rounds), max(rounds)),
        "runs": len(inv),
        "papermill_range_s": (min(empty), max(empty)),
        "investigate_range_s": (min(inv), max(inv)),
        "papermill_cpu_s": statistics.median(empty_cpu),
        "investigate_cpu_s": statistics.median(inv_cpu),
        "papermill_cpu_range_s": (min(empty_cpu), max(empty_cpu)),
        "investigate_cpu_range_s": (min(inv_cpu), max(inv_cpu)),
    }


def measure(runs: int = 7, venv_too: bool = True) -> dict[str, dict[str, object]]:
    """Both pairs, ``lean`` and ``venv`` (this venv's, when ``venv_too``), interleaved: each round runs every
    command once, in an order rotated round by round, so drift and the machine's load hit all alike."""
    import os

    from lean_venv import compile_checkout, lean_python

    lean = lean_python()
    compile_checkout(lean)
    bins = {"lean": lean.parent}
    if venv_too:
        bins["venv"] = BIN
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "empty.ipynb").write_text(json.dumps(EMPTY))
        env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(t / "sandbox")}
        env.pop("VIRTUAL_ENV", None)
        jobs = [
            (name, kind, cmd) for name, b in bins.items() for kind, cmd in zip(("empty", "inv"), commands(b, t, name))
        ]
        for _, _, cmd in jobs:  # warm the OS caches for every command before measuring
            timed(cmd, env)
        times: dict[tuple[str, str], list[float]] = {(name, kind): [] for name, kind, _ in jobs}
        cpu: dict[tuple[str, str], list[float]] = {(name, kind): [] for name, kind, _ in jobs}
        for r in range(runs):
            k = r % len(jobs)
            for name, kind, cmd in jobs[k:] + jobs[:k]:
                wall, used = timed(cmd, env)
                times[(name, kind)].append(wall)
                cpu[(name, kind)].append(used)
    return {
        name: summary(times[(name, "empty")], times[(name, "inv")], cpu[(name, "empty")], cpu[(name, "inv")])
        for name in bins
    }


if __name__ == "__main__":
    # --lean: the target pair alone; --runs=N: rounds (default 7). Quicker before/after comparisons.
    rounds = next((int(a.removeprefix("--runs=")) for a in sys.argv if a.startswith("--runs=")), 7)
    print(json.dumps(measure(runs=rounds, venv_too="--lean" not in sys.argv), indent=1))
