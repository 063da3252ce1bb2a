"""`make bench`: every speed and memory target, each measured as a ratio in one run.

1. `vyxops investigate` on the seed vs papermill running an empty notebook, in a lean venv (the package and
   the sandbox extra; ≤ 1.3×) and, reported beside it, in this venv: medians of 7 interleaved rounds
2. the timeline at 1,000,000 events, vs a bare concat + sort (≤ 2 s, ≤ 3×), peak memory,
   and `import vyxops` (≤ 0.35 s) — bench/bench_timeline.py
3. a busy day (2,000 to 20,000 provisioned machines) vs the seed, ≤ 2× / 4× / 8×, and a 20,000 replay ≤ 20 s —
   bench/bench_busy_day.py
4. live speed: sequential round trips of the seed at 200 ms per answer (<= 6), audit requests
   linear in apps, a 50-app audit against the bound the rate limits set — bench/bench_live.py
5. a busy day's machines table of 10,000 and 100,000 rows read whole through the direct PostgreSQL source vs
   PostgREST paging (>= 5x at 100,000) — bench/bench_direct.py
Prints every figure before judging; exits 1 if a target is missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_investigate  # noqa: E402

TARGET_INVESTIGATE_RATIO = 1.3
PAIRS = {"lean": "lean venv (package + sandbox extra)", "venv": f"this venv ({Path(sys.prefix).name})"}


def investigate_table() -> bool:
    """Measures and prints the investigate pairs; True when the lean pair meets its target."""
    pairs = bench_investigate.measure()
    print("== vyxops investigate (seed, sandbox) vs papermill on an empty notebook, interleaved rounds")
    print(f"{'venv':38} {'papermill empty':>24} {'investigate':>24} {'ratio':>18}  target")
    ok_inv = True
    for name, r in pairs.items():
        e_lo, e_hi = r["papermill_range_s"]
        i_lo, i_hi = r["investigate_range_s"]
        q_lo, q_hi = r["ratio_range"]
        empty = f"{r['papermill_empty_s']:.2f} s ({e_lo:.2f}-{e_hi:.2f})"
        inv = f"{r['investigate_s']:.2f} s ({i_lo:.2f}-{i_hi:.2f})"
        ratio = f"{r['ratio']:.2f}x ({q_lo:.2f}-{q_hi:.2f})"
        if name == "lean":
            met = r["ratio"] <= TARGET_INVESTIGATE_RATIO
            ok_inv = ok_inv and met
            verdict = f"<= {TARGET_INVESTIGATE_RATIO}x  {'MET' if met else 'MISSED'}"
        else:
            verdict = "(reported)"
        print(f"{PAIRS[name]:38} {empty:>24} {inv:>24} {ratio:>18}  {verdict}")
        e_cpu, i_cpu = r["papermill_cpu_range_s"], r["investigate_cpu_range_s"]
        cpu_empty = f"{r['papermill_cpu_s']:.2f} s ({e_cpu[0]:.2f}-{e_cpu[1]:.2f})"
        cpu_inv = f"{r['investigate_cpu_s']:.2f} s ({i_cpu[0]:.2f}-{i_cpu[1]:.2f})"
        print(f"{'  CPU (user+sys, with the kernel)':38} {cpu_empty:>24} {cpu_inv:>24}")
    runs = pairs["lean"]["runs"]
    print(f"medians of {runs} rounds (range of runs); the ratio's range is over the rounds' own ratios")
    print(f"load (1-min) after the rounds: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return ok_inv


def main() -> int:
    ok_inv = investigate_table()
    print()
    timeline = subprocess.run([sys.executable, str(HERE / "bench_timeline.py")])
    print()
    busy = subprocess.run([sys.executable, str(HERE / "bench_busy_day.py")])
    print()
    live = subprocess.run([sys.executable, str(HERE / "bench_live.py")])
    print()
    direct = subprocess.run([sys.executable, str(HERE / "bench_direct.py")])
    codes = (timeline.returncode, busy.returncode, live.returncode, direct.returncode)
    return 0 if ok_inv and not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
