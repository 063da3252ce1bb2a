"""`vyxops investigate` on the seed against papermill running an empty notebook, in one run.

Both are whole commands started the same way (a fresh process from this venv), so
the ratio measures what vyxops adds on top of papermill itself. Target: ≤ 1.5×.
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


def measure(runs: int = 7) -> dict[str, float]:
    import os

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "empty.ipynb").write_text(json.dumps(EMPTY))
        env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(t / "sandbox")}
        papermill = [
            str(BIN / "papermill"),
            "--log-level",
            "ERROR",
            "--no-progress-bar",
            str(t / "empty.ipynb"),
            str(t / "empty-out.ipynb"),
            "-p",
            "x",
            "2",
        ]
        investigate = [
            str(BIN / "vyxops"),
            "investigate",
            "--scenario",
            "stub-image",
            "--app",
            "vyx-app",
            "--out",
            str(t / "out"),
        ]
        timed(papermill, env)  # warm the OS caches for both before measuring
        timed(investigate, env)
        empty, inv = [], []
        for _ in range(runs):  # interleaved so drift hits both alike
            empty.append(timed(papermill, env))
            inv.append(timed(investigate, env))
    e, i = statistics.median(empty), statistics.median(inv)
    return {
        "papermill_empty_s": e,
        "investigate_s": i,
        "ratio": i / e,
        "runs": runs,
        "papermill_range_s": (min(empty), max(empty)),
        "investigate_range_s": (min(inv), max(inv)),
    }


if __name__ == "__main__":
    r = measure()
    print(json.dumps(r, indent=1))
