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


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


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


def summary(empty: list[float], inv: list[float]) -> dict[str, object]:
    """Medians, their ratio, and the spread: each side's range and the range of the per-round ratios."""
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
    }


def measure(runs: int = 7, venv_too: bool = True) -> dict[str, dict[str, object]]:
    """Both pairs, ``lean`` and ``venv`` (this venv's, when ``venv_too``), interleaved: each round runs every
    command once, in an order rotated round by round, so drift and the machine's load hit all alike."""
    import os

    from lean_venv import lean_python

    bins = {"lean": lean_python().parent}
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
        for r in range(runs):
            k = r % len(jobs)
            for name, kind, cmd in jobs[k:] + jobs[:k]:
                times[(name, kind)].append(timed(cmd, env))
    return {name: summary(times[(name, "empty")], times[(name, "inv")]) for name in bins}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
