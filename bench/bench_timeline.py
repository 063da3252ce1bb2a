"""Timeline speed and memory at a million events, and the cost of ``import vyxops``.

Run: ``.venv/bin/python bench/bench_timeline.py [--events N]``. Prints a table, then
exits 1 if a target is missed:

- ``build_timeline`` on 1,000,000 events in <= 2 s (median of interleaved rounds);
- <= 3x a bare ``pd.concat`` + ``sort_values("time")`` of the same source frames
  (each frame's own time column renamed ``time``; median of interleaved rounds);
- ``import vyxops`` in a fresh interpreter <= 0.35 s (median of 7 runs of
  ``python -c "import vyxops"`` minus the median of ``python -c "pass"``).

The events come from :func:`vyxops.testing.fleet.generate_fleet_frames` (synthetic
frames in the real schemas, vectorised): replaying a world of that size through
``World.from_scenario`` takes far too long (its cost grows faster than linearly),
so the replay of the default ``generate_fleet()`` is timed too, for scale.
Peak memory is the growth of the peak RSS during one build, in a fresh child
process (Arrow's allocator keeps freed memory for reuse, so a warm process
under-reports); Linux ``/proc/self/clear_refs`` resets the peak first. Elsewhere
tracemalloc, which misses Arrow's buffers, is used and said so.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vyxops.analysis.sources import build_timeline  # noqa: E402
from vyxops.testing.fleet import fleet_frames, generate_fleet, generate_fleet_frames  # noqa: E402
from vyxops_sandbox.scenario import parse_scenario  # noqa: E402
from vyxops_sandbox.world import World  # noqa: E402

TARGET_BUILD_S = 2.0
TARGET_RATIO = 3.0
TARGET_IMPORT_S = 0.35
REPEATS = 5

# each source frame's own time column, renamed "time" for the bare baseline
TIME_COLUMNS = {
    "machines": "created_at",
    "machine_events": "time",
    "releases": "created_at",
    "fly_logs": "time",
    "machine_rows": "created_at",
    "secrets": "updated_at",
    "functions": "created_at",
    "function_logs": "time",
}


def bare_concat_sort(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The floor to compare with: the same frames stacked and sorted by time, no events made."""
    parts = [frames[name].rename(columns={column: "time"}) for name, column in TIME_COLUMNS.items()]
    return pd.concat(parts, ignore_index=True).sort_values("time", kind="stable")


def interleaved(
    build: Callable[[], Any], bare: Callable[[], Any], repeats: int = REPEATS
) -> tuple[list[float], list[float], Any]:
    """``build`` and ``bare`` run in turn, ``repeats`` rounds (a GC before each run): each one's times in
    seconds, and ``build``'s last result. Interleaved, so load on the machine falls on both alike."""
    build_times: list[float] = []
    bare_times: list[float] = []
    result = None
    for _ in range(repeats):
        for fn, times in ((build, build_times), (bare, bare_times)):
            gc.collect()
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
            if fn is build:
                result = out
    return build_times, bare_times, result


def peak_memory(fn: Callable[[], Any]) -> tuple[float, str]:
    """MiB the process's peak grew by while ``fn`` ran, and how it was measured."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        before = _status_kib("VmRSS")
        fn()
        return (_status_kib("VmHWM") - before) / 1024, "peak RSS growth, fresh process"
    except OSError:
        import tracemalloc

        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak / 2**20, "tracemalloc peak (misses Arrow buffers)"


def peak_memory_in_child(events: int, seed: int) -> tuple[float, str]:
    """:func:`peak_memory` of the first build in a fresh interpreter (see the module docstring)."""
    out = (
        subprocess.run(
            [sys.executable, __file__, "--memory-child", "--events", str(events), "--seed", str(seed)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    mib, _, how = out.partition(" ")
    return float(mib), how


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(field)


def import_seconds(runs: int = 7) -> tuple[float, float]:
    """``import vyxops`` in fresh interpreters: (median ``-X importtime`` cumulative, median wall minus start-up)."""

    def wall(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        return time.perf_counter() - t

    def importtime() -> float:
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import vyxops"],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stderr
        top = [line for line in err.splitlines() if line.rstrip().endswith("| vyxops")]
        return int(top[-1].split("|")[1]) / 1e6  # cumulative µs of the package and all it imports

    cumulative = statistics.median(importtime() for _ in range(runs))
    walls = statistics.median(wall("import vyxops") for _ in range(runs)) - statistics.median(
        wall("pass") for _ in range(runs)
    )
    return cumulative, max(0.0, walls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        frames = generate_fleet_frames(args.events, args.seed)
        mib, how = peak_memory(lambda: build_timeline(**frames))
        print(f"{mib:.1f} {how}")
        return 0

    t = time.perf_counter()
    text = generate_fleet()
    world = World.from_scenario(parse_scenario(text))
    replay_s = time.perf_counter() - t
    replay_events = len(build_timeline(**fleet_frames(world)))

    t = time.perf_counter()
    frames = generate_fleet_frames(args.events, args.seed)
    synth_s = time.perf_counter() - t
    rows_in = sum(len(f) for f in frames.values())

    gc.collect()
    t = time.perf_counter()
    build_timeline(**frames)  # the first call also pays for fresh memory (page faults); shown, not gated
    cold_s = time.perf_counter() - t
    builds, bares, tl = interleaved(lambda: build_timeline(**frames), lambda: bare_concat_sort(frames))
    build_s, bare_s = statistics.median(builds), statistics.median(bares)
    ratios = [x / y for x, y in zip(builds, bares)]
    ratio = statistics.median(ratios)
    mem_mib, mem_how = peak_memory_in_child(args.events, args.seed)
    out_mib = tl.memory_usage(deep=True).sum() / 2**20
    imp_s, imp_wall_s = import_seconds()

    rows = [
        ("events in the timeline", f"{len(tl):,}", ""),
        ("source rows (8 frames)", f"{rows_in:,}", ""),
        ("synthesize frames (generate_fleet_frames)", f"{synth_s:.2f} s", ""),
        (f"replay generate_fleet() ({replay_events:,} events)", f"{replay_s:.2f} s", "World.from_scenario, for scale"),
        ("build_timeline, first call in the process", f"{cold_s:.3f} s", ""),
        (
            f"build_timeline (median of {REPEATS} more)",
            f"{build_s:.3f} s",
            f"({min(builds):.3f}-{max(builds):.3f}) target <= {TARGET_BUILD_S} s",
        ),
        (
            f"bare pd.concat + sort_values (median of {REPEATS})",
            f"{bare_s:.3f} s",
            f"({min(bares):.3f}-{max(bares):.3f})",
        ),
        (
            "ratio build / bare (median of the rounds)",
            f"{ratio:.2f}x",
            f"({min(ratios):.2f}-{max(ratios):.2f}) target <= {TARGET_RATIO}x",
        ),
        ("peak memory of one build", f"{mem_mib:,.0f} MiB", mem_how),
        ("size of the timeline it returns", f"{out_mib:,.0f} MiB", ""),
        ("import vyxops (-X importtime, cumulative)", f"{imp_s:.3f} s", f"target <= {TARGET_IMPORT_S} s"),
        ("import vyxops (wall, minus `python -c pass`)", f"{imp_wall_s:.3f} s", f"target <= {TARGET_IMPORT_S} s"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")

    missed = []
    if build_s > TARGET_BUILD_S:
        missed.append(f"build_timeline took {build_s:.2f} s > {TARGET_BUILD_S} s")
    if ratio > TARGET_RATIO:
        missed.append(f"build/bare ratio {ratio:.2f} > {TARGET_RATIO}")
    if max(imp_s, imp_wall_s) > TARGET_IMPORT_S:
        missed.append(f"import vyxops took {max(imp_s, imp_wall_s):.3f} s > {TARGET_IMPORT_S} s")
    if len(tl) != args.events:
        missed.append(f"the timeline holds {len(tl):,} events, not {args.events:,}")
    for line in missed:
        print(f"MISSED: {line}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
