"""A busy day: investigating one app through 2,000 (and 10,000) provisioned machines and rows, against the seed.

Run: ``.venv/bin/python bench/bench_busy_day.py``. Two measures, each a ratio to the
seed incident measured the same way in the same run:

- ``vyxops investigate`` as a user runs it (the whole command: kernel, notebook,
  report), median of 3 runs each, seed and 2,000-machine day interleaved. Target: the
  busy day within 2x the seed. The 10,000-machine day is run once and reported.
- ``investigate(session, app)`` in-process on the same worlds (the package's own work,
  no kernel), where a cost growing with the square of the machines shows at once.

Each world is replayed and saved before it is timed (the replay is not timed).
"""

from __future__ import annotations

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

from vyxops.analysis.investigate import investigate  # noqa: E402
from vyxops.fetch.session import open_session  # noqa: E402
from vyxops.testing.fleet import generate_fleet  # noqa: E402
from vyxops_sandbox.world import World  # noqa: E402

TARGET = 2.0
APP = "fleet-app-1"


def cli_seconds(scenario: str | Path, app: str, directory: Path, out: Path) -> float:
    env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(directory), "VYXOPS_AUDIT_LOG": str(directory / "audit.jsonl")}
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "vyxops"), "investigate", "--scenario", str(scenario), "--app", app, "--out", str(out)],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    return time.perf_counter() - start


def in_process_seconds(scenario: str | Path, app: str, directory: Path) -> tuple[float, int, int]:
    with open_session("sandbox", scenario=scenario, sandbox_dir=directory) as s:
        start = time.perf_counter()
        inv = investigate(s, app)
        return time.perf_counter() - start, len(inv.evidence.machines), len(inv.findings)


def main() -> int:
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        worlds: dict[str, tuple[str | Path, str]] = {"seed": ("stub-image", "vyx-app")}
        for n in (2_000, 10_000):
            path = base / f"busy-{n}.yaml"
            path.write_text(generate_fleet(apps=1, machines_per_day=n, days=1, seed=1, failure_rate=0.1))
            worlds[f"{n:,}"] = (path, APP)
        for name, (scenario, _) in worlds.items():
            World.load(scenario, base / name).save()
        cli: dict[str, list[float]] = {"seed": [], "2,000": []}
        for _ in range(3):  # interleaved, so load on the machine falls on both
            for name in cli:
                scenario, app = worlds[name]
                cli[name].append(cli_seconds(scenario, app, base / name, base / f"out-{name}"))
        scenario, app = worlds["10,000"]
        big_cli = cli_seconds(scenario, app, base / "10,000", base / "out-10,000")
        local = {name: in_process_seconds(*worlds[name], base / name) for name in worlds}
    seed_cli, busy_cli = statistics.median(cli["seed"]), statistics.median(cli["2,000"])
    ok = busy_cli / seed_cli <= TARGET
    print("== investigate on a busy day vs the seed (sandbox; the CLI: median of 3, interleaved)")
    print(f"{'':<32}{'vyxops investigate':>20}{'in-process':>18}")
    for name, label in (("seed", "seed incident"), ("2,000", "busy day, 2,000 provisioned"),
                        ("10,000", "busy day, 10,000 provisioned")):  # fmt: skip
        whole = {"seed": seed_cli, "2,000": busy_cli, "10,000": big_cli}[name]
        seconds, machines, findings = local[name]
        print(
            f"{label:<32}{whole:7.2f} s {whole / seed_cli:5.2f}x   {seconds:6.2f} s {seconds / local['seed'][0]:6.1f}x"
            f"   ({machines:,} machines, {findings} findings)"
        )
    print(f"target: the 2,000-machine day within {TARGET}x the seed's command  {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
