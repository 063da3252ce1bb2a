"""`make bench`: every speed and memory target, each measured as a ratio in one run.

1. `vyxops investigate` on the seed vs papermill running an empty notebook (≤ 1.5×), median of 7
2. the timeline at 1,000,000 events, vs a bare concat + sort (≤ 2 s, ≤ 3×), peak memory,
   and `import vyxops` (≤ 0.35 s) — bench/bench_timeline.py
3. a busy day (2,000 provisioned machines and rows) vs the seed, ≤ 2×; 10,000 reported —
   bench/bench_busy_day.py
4. live speed: sequential round trips of the seed at 200 ms per answer (<= 6), audit requests
   linear in apps, a 50-app audit against the bound the rate limits set — bench/bench_live.py
Prints every figure before judging; exits 1 if a target is missed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_investigate  # noqa: E402

TARGET_INVESTIGATE_RATIO = 1.5


def main() -> int:
    r = bench_investigate.measure()
    print(
        f"== vyxops investigate (seed, sandbox) vs papermill on an empty notebook, median of {r['runs']}, interleaved"
    )
    ok_inv = r["ratio"] <= TARGET_INVESTIGATE_RATIO
    lo, hi = r["papermill_range_s"]
    print(f"papermill empty notebook   {r['papermill_empty_s']:.2f} s   (runs {lo:.2f}-{hi:.2f} s)")
    lo, hi = r["investigate_range_s"]
    print(f"vyxops investigate         {r['investigate_s']:.2f} s   (runs {lo:.2f}-{hi:.2f} s)")
    verdict = "ok" if ok_inv else "MISSED"
    print(f"ratio                      {r['ratio']:.2f}x   (target <= {TARGET_INVESTIGATE_RATIO}x)  {verdict}")
    print()
    timeline = subprocess.run([sys.executable, str(HERE / "bench_timeline.py")])
    print()
    busy = subprocess.run([sys.executable, str(HERE / "bench_busy_day.py")])
    print()
    live = subprocess.run([sys.executable, str(HERE / "bench_live.py")])
    codes = (timeline.returncode, busy.returncode, live.returncode)
    return 0 if ok_inv and not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
