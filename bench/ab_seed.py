"""A/B of the seed investigation between a git revision and this tree: interleaved runs, median and range.

Run: ``.venv/bin/python bench/ab_seed.py REV [N]`` (default N 7). REV is checked out into a temporary git
worktree; both trees run with this venv, each through PYTHONPATH (the kernel inherits it), alternating
which goes first, on fresh sandboxes. Prints the load, each tree's median and range, and the ratio.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(tree: Path) -> float:
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        env.update(VYXOPS_SANDBOX_DIR=f"{d}/sb", VYXOPS_AUDIT_LOG=f"{d}/a.jsonl")
        args = ["investigate", "--scenario", "stub-image", "--app", "vyx-app", "--out", f"{d}/out"]
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "vyxops.shell.cli", *args], env=env, cwd=d, check=True, capture_output=True
        )
        return time.perf_counter() - started


def main() -> int:
    rev, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7
    with tempfile.TemporaryDirectory() as d:
        base = Path(d) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base), rev], check=True)
        try:
            trees = [("base", base), ("this", ROOT)]
            times: dict[str, list[float]] = {name: [] for name, _ in trees}
            for i in range(n):
                for name, tree in trees if i % 2 == 0 else trees[::-1]:
                    times[name].append(run_once(tree))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)
    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; {n} interleaved runs each")
    for name, values in times.items():
        print(f"{name:<5} median {statistics.median(values):.2f} s (range {min(values):.2f}-{max(values):.2f})")
    print(f"ratio this/base {statistics.median(times['this']) / statistics.median(times['base']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
