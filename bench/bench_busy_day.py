"""A busy day: investigating one app through 2,000 to 20,000 provisioned machines and rows, against the seed.

Run: ``.venv/bin/python bench/bench_busy_day.py [--runs N] [--big-runs M]``. Two measures:

- ``vyxops investigate`` as a user runs it (the whole command: kernel, notebook, the
  sandbox it hosts, report), on the seed incident and on a one-app day of 2,000, 5,000,
  10,000 and 20,000 provisioned machines. Runs are interleaved, in rounds whose order
  rotates, so that load on the machine falls on every size; each size's median and
  spread (min–max) are printed with its ratio to the seed's median. The seed and the
  2,000 day run ``--runs`` times (5), the larger days ``--big-runs`` times (3).
  Targets (issue 23): 2,000 within 2× the seed, 10,000 within 4×, 20,000 within 8×.
- The replay of the 20,000-machine scenario (the YAML read and checked, then replayed
  into a world: what ``World.load`` does before it saves), ``--big-runs`` times, one per
  round. Target: ≤ 20 s. Its save (the whole state written once) is printed beside it.

Each world is replayed and saved before the command is timed (that replay is not timed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from vyxops.testing.fleet import generate_fleet  # noqa: E402
from vyxops_sandbox.scenario import load_scenario  # noqa: E402
from vyxops_sandbox.world import World  # noqa: E402

APP = "fleet-app-1"
SIZES = (2_000, 5_000, 10_000, 20_000)
TARGETS = {2_000: 2.0, 10_000: 4.0, 20_000: 8.0}  # × the seed's command
REPLAY_TARGET_S = 20.0


def cli_seconds(scenario: str | Path, app: str, directory: Path, out: Path) -> float:
    env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(directory), "VYXOPS_AUDIT_LOG": str(directory / "audit.jsonl")}
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "vyxops"), "investigate", "--scenario", str(scenario), "--app", app, "--out", str(out)],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    return time.perf_counter() - start


def replay_seconds(path: Path) -> tuple[float, float]:
    """(parse and replay, one save) of ``path``'s scenario into a fresh directory."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        world = World.from_scenario(load_scenario(path), Path(tmp))
        replayed = time.perf_counter()
        world.save()
        return replayed - start, time.perf_counter() - replayed


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}" if len(values) > 1 else "one run"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of the seed and the 2,000 day (default 5)")
    parser.add_argument("--big-runs", type=int, default=3, help="runs of the larger days and the replay (default 3)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        worlds: dict[str, tuple[str | Path, str]] = {"seed": ("stub-image", "vyx-app")}
        for n in SIZES:
            path = base / f"busy-{n}.yaml"
            path.write_text(generate_fleet(apps=1, machines_per_day=n, days=1, seed=1, failure_rate=0.1))
            worlds[f"{n:,}"] = (path, APP)
        for name, (scenario, _) in worlds.items():
            World.load(scenario, base / name).save()
        runs = {name: args.runs if name in ("seed", "2,000") else args.big_runs for name in worlds}
        cli: dict[str, list[float]] = {name: [] for name in worlds}
        replay: list[tuple[float, float]] = []
        names = list(worlds)
        for round_ in range(max(runs.values())):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]  # rotated: no size always first
            for name in order:
                if len(cli[name]) < runs[name]:
                    scenario, app = worlds[name]
                    cli[name].append(cli_seconds(scenario, app, base / name, base / f"out-{name}"))
            if len(replay) < args.big_runs:
                replay.append(replay_seconds(base / "busy-20000.yaml"))
    load = os.getloadavg()
    seed = statistics.median(cli["seed"])
    print(f"== vyxops investigate on a busy day vs the seed (sandbox; interleaved runs; load {load[0]:.1f})")
    print(f"{'':<30}{'runs':>5}{'median':>10}{'spread (s)':>14}{'× seed':>9}   target")
    ok = True
    for name in names:
        median = statistics.median(cli[name])
        n = int(name.replace(",", "")) if name != "seed" else 0
        target = TARGETS.get(n)
        verdict = ""
        if target is not None:
            met = median / seed <= target
            ok &= met
            verdict = f"≤ {target:.0f}×  {'MET' if met else 'MISSED'}"
        label = "seed incident" if name == "seed" else f"busy day, {name} provisioned"
        ratio = median / seed
        print(f"{label:<30}{len(cli[name]):>5}{median:>8.2f} s{spread(cli[name]):>14}{ratio:>8.2f}×   {verdict}")
    replayed = [r for r, _ in replay]
    met = statistics.median(replayed) <= REPLAY_TARGET_S
    ok &= met
    print(
        f"{'replay, 20,000 provisioned':<30}{len(replayed):>5}{statistics.median(replayed):>8.2f} s"
        f"{spread(replayed):>14}{'':>9}   ≤ {REPLAY_TARGET_S:.0f} s  {'MET' if met else 'MISSED'}"
    )
    saves = [s for _, s in replay]
    print(f"{'  its save (state.json, once)':<30}{len(saves):>5}{statistics.median(saves):>8.2f} s{spread(saves):>14}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
