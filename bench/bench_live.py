"""Live speed: round trips, not CPU. Latency is added to a served sandbox and the requests are counted.

Run: ``.venv/bin/python bench/bench_live.py`` (``… bench_live.py targets``: section 3 only).
Each sandbox is ``vyxops sandbox serve`` in its
own process (real time, the documented rate limits in force: Fly's per action per machine or
app, the Management API's 120 a minute per endpoint), with a latency fault adding the same
delay to every answer, as a far-away API would. Three measures:

1. **Latency added**: the seed investigation (``investigate(session, app)``, the package's whole
   evidence → findings path) at 0 ms and at 200 ms per answer. The added wall time divided by
   200 ms is the number of sequential round trips: target <= 2.5 (the floor is 2). The request count is
   printed next to the fewest round trips the reads' dependency graph allows for what was asked.
2. **Audit scaling**: ``run_audit`` over generated fleets of 10, 20 and 40 apps, at 0 and 200 ms:
   requests and wall time. Target: requests grow linearly with the apps (per-app cost flat).
3. **Audit targets** (issue 23), from ROUNDS interleaved rounds, each run against a fresh server;
   every figure is the median with its spread (lowest-highest), never a best run:

   - a 50-app audit at 200 ms against the bound the limits and the latency set (the busiest
     rate-limit key, and one app's round trips): within 1.5x, zero unhandled 429s;
   - the client CPU per app of the 50-app audit at 0 ms (this process's CPU: the served sandbox
     is another process): <= 25 ms;
   - concurrent vs sequential: the same audit's CPU with every app side by side over the CPU of
     one app after another (``width=1``), measured in the same round: <= 1.0;
   - memory per app at 200 apps: what the process grew by, audit and all it keeps alive (RSS,
     after a collection), in a child process that ran a one-app audit first: <= 1.5 MiB.

   The machine's load average is printed with them: other work on a shared machine moves wall
   time most, CPU time less.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from vyxops.analysis.audit import run_audit  # noqa: E402
from vyxops.analysis.investigate import investigate  # noqa: E402
from vyxops.core.errors import RateLimitedError  # noqa: E402
from vyxops.core.facts import FixedWindow, RateLimit  # noqa: E402
from vyxops.fetch import budget as budgets  # noqa: E402
from vyxops.fetch.http import Attempt  # noqa: E402
from vyxops.fetch.session import Session, open_session  # noqa: E402
from vyxops.testing.fleet import generate_fleet  # noqa: E402
from vyxops.testing.served import served_sandbox  # noqa: E402

LATENCY_MS = 200
TARGET_ROUND_TRIPS = 2.5
TARGET_AUDIT_BOUND = 1.5
TARGET_CPU_PER_APP_MS = 25.0
TARGET_CONCURRENT_RATIO = 1.0
TARGET_MIB_PER_APP = 1.5
ROUNDS = 5
MEMORY_APPS = 200
FLEET = {"machines_per_day": 12, "days": 1, "seed": 3}


@contextmanager
def served(scenario: str | Path, latency_ms: int) -> Iterator[str]:
    """``vyxops sandbox serve`` in a child process, every answer ``latency_ms`` late; yields its URL."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        rules = [{"kind": "latency", "latency_ms": latency_ms}] if latency_ms else []
        (directory / "faults.json").write_text(json.dumps({"seed": 0, "rules": rules}))
        env = {**os.environ, "VYXOPS_SANDBOX_DIR": str(directory)}
        env.pop("VYXOPS_SANDBOX_URL", None)
        with served_sandbox(env, scenario=scenario, command=[str(BIN / "vyxops")]) as url:
            yield url


def session_at(url: str) -> Session:
    return open_session("sandbox", environ={"VYXOPS_SANDBOX_URL": url})


class Requests:
    """Every request attempt a session's clients make, told by their retry layer's attempt hook
    (:meth:`vyxops.fetch.session.Session.watch`): no log line to parse."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, attempt: Attempt) -> None:
        self.seen.append({"method": attempt.method, "path": attempt.where.split("?")[0]})


def counting(session: Session) -> Requests:
    counter = Requests()
    session.watch(counter)
    return counter


def stage_round_trips(requests: list[dict[str, Any]], app: str) -> int:
    """The fewest sequential round trips the reads' dependency graph allows for these requests (DESIGN.md
    "Evidence": each read starts when the answers it needs are in).

    The longest chain among: the Fly logs pages (each page's token leads to the next); the function logs (a
    source whose first page was full needs a second trip for the rest, read in slices side by side,
    vyxops.fetch.logreads; there was a rest whenever more queries went out than the window's chunks of each
    source: a day's window is two chunks, one query each, all at once); the plan (project, then its
    organization: two); discovery's table rows (the PostgREST description, then the rows: two); and the
    registry (one GET per reference, once the releases and machines name the images: two).
    """
    paths = Counter(r["path"] for r in requests if r["method"] == "GET")
    fly_pages = paths[f"/api/v1/apps/{app}/logs"]
    log_queries = sum(n for p, n in paths.items() if p.endswith("/analytics/endpoints/logs"))
    first_pages = LOG_SOURCES * LOG_CHUNKS
    function_logs = 1 if log_queries <= first_pages else 2
    return max(2, fly_pages, function_logs)


LOG_SOURCES = 2  # function_edge_logs and function_logs
LOG_CHUNKS = 2  # a day's window, widened to whole minutes: a 24 h chunk and a sliver (vyxops.fetch.logreads)


def seed_latency() -> dict[str, Any]:
    walls: dict[int, float] = {}
    counts: dict[int, int] = {}
    minimum = 0
    for latency in (0, LATENCY_MS):
        with served("stub-image", latency) as url, session_at(url) as s:
            investigate(s, "vyx-app")  # warm: imports and first-use costs are not round trips
        with served("stub-image", latency) as url, session_at(url) as s:
            counter = counting(s)
            start = time.perf_counter()
            inv = investigate(s, "vyx-app")
            walls[latency] = time.perf_counter() - start
            reqs = counter.seen
            counts[latency] = len(reqs)
            minimum = stage_round_trips(reqs, "vyx-app")
            assert inv.root is not None
    trips = (walls[LATENCY_MS] - walls[0]) / (LATENCY_MS / 1000)
    return {"walls": walls, "requests": counts[LATENCY_MS], "trips": trips, "minimum": minimum}


def audit_once(scenario: Path, latency: int, width: int | None = None) -> dict[str, Any]:
    with served(scenario, latency) as url, session_at(url) as s:
        counter = counting(s)
        start, cpu = time.perf_counter(), time.process_time()
        audit = run_audit(s) if width is None else run_audit(s, width=width)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        reqs = counter.seen
        b = budgets.budget_for(s.clock)
        limited = sum(isinstance(e.error, RateLimitedError) for e in audit.errors.values())
        return {
            "apps": len(audit.apps),
            "requests": len(reqs),
            "wall": wall,
            "cpu": cpu,
            "errors": len(audit.errors),
            "unhandled_429": limited,
            "seen_429": b.rate_limited,
            "waited": b.waited_s,
            "reqs": reqs,
        }


def fleet_file(directory: Path, apps: int) -> Path:
    path = directory / f"fleet-{apps}.yaml"
    path.write_text(generate_fleet(apps=apps, **FLEET))
    return path


def rate_floor(requests: list[dict[str, Any]]) -> float:
    """Seconds the documented limits alone impose: the busiest key's (vyxops.core.facts: each limit's least_seconds)."""
    per_key: Counter[tuple[Any, ...]] = Counter()
    limits: dict[tuple[Any, ...], RateLimit | FixedWindow] = {}
    for r in requests:
        platform = "fly-machines" if r["path"].startswith("/v1/apps") else "supabase-mgmt"
        if not r["path"].startswith(("/v1/apps/", "/v1/projects/", "/v1/organizations/")):
            continue
        keyed = budgets.RULES[platform](r["method"], r["path"])
        if keyed:
            per_key[keyed[0]] += 1
            limits[keyed[0]] = keyed[1]
    return max([limits[k].least_seconds(n) for k, n in per_key.items()] or [0.0])


def latency_floor(requests: list[dict[str, Any]], apps: list[str]) -> float:
    """One app's stage round trips (the deepest app's), plus the audit's own list of apps, at the latency."""
    deepest = max(stage_round_trips([r for r in requests if app_of(r) in (a, None)], a) for a in apps)
    return (1 + deepest) * LATENCY_MS / 1000


def app_of(request: dict[str, Any]) -> str | None:
    m = re.match(r"^/(?:v1|api/v1)/apps/([^/]+)", request["path"])
    return m.group(1) if m else None


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """The median and the lowest-highest of ``values``, as the table prints them."""
    lo, hi = min(values), max(values)
    return f"{fmt.format(statistics.median(values))} ({fmt.format(lo)}-{fmt.format(hi)})"


def rss_bytes() -> int:
    """This process's resident set (Linux /proc: the figure a person's `ps` shows)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def memory_child(url: str, apps: int) -> int:
    """In a child process (``bench_live.py memory URL APPS``): what a whole audit keeps, per app, in bytes.
    A one-app audit runs first, so imports and first-use caches are not counted."""
    warnings.simplefilter("ignore")
    logging.getLogger().addHandler(logging.NullHandler())
    with session_at(url) as s:
        run_audit(s, ["fleet-app-1"])
    gc.collect()
    before = rss_bytes()
    with session_at(url) as s:
        audit = run_audit(s)
    gc.collect()
    grown = rss_bytes() - before
    assert len(audit.apps) == apps, audit.apps
    print(json.dumps({"per_app": grown / apps}))
    return 0


def memory_once(scenario: Path, apps: int) -> float:
    """MiB per app an audit of ``apps`` apps keeps (:func:`memory_child`, a fresh process and server)."""
    with served(scenario, 0) as url:
        out = subprocess.run(
            [sys.executable, __file__, "memory", url, str(apps)], capture_output=True, text=True, check=True
        )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["per_app"]) / 2**20


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def audit_targets(directory: Path) -> bool:
    """Issue 23's audit targets, each from ROUNDS interleaved rounds (one run of each kind per round)."""
    fleet, big = fleet_file(directory, 50), fleet_file(directory, MEMORY_APPS)
    apps = [f"fleet-app-{i + 1}" for i in range(50)]
    ratios, bounds, limited, cpu_ms, concurrent, mib = [], [], [], [], [], []
    load_before = os.getloadavg()
    for _ in range(ROUNDS):
        slow = audit_once(fleet, LATENCY_MS)
        bound = max(rate_floor(slow["reqs"]), latency_floor(slow["reqs"], apps))
        ratios.append(slow["wall"] / bound)
        bounds.append(bound)
        limited.append(slow["unhandled_429"])
        side_by_side = audit_once(fleet, 0)
        one_by_one = audit_once(fleet, 0, width=1)
        cpu_ms.append(1000 * side_by_side["cpu"] / len(apps))
        concurrent.append(side_by_side["cpu"] / one_by_one["cpu"])
        mib.append(memory_once(big, MEMORY_APPS))
    load_after = os.getloadavg()
    rows = [
        ("50-app audit at 200 ms, wall / bound", spread(ratios) + "x", f"<= {TARGET_AUDIT_BOUND}x",
         statistics.median(ratios) <= TARGET_AUDIT_BOUND and max(limited) == 0),
        ("client CPU per app, 50 apps at 0 ms", spread(cpu_ms, "{:.1f}") + " ms", f"<= {TARGET_CPU_PER_APP_MS:.0f} ms",
         statistics.median(cpu_ms) <= TARGET_CPU_PER_APP_MS),
        ("CPU concurrent / sequential", spread(concurrent), f"<= {TARGET_CONCURRENT_RATIO:.1f}",
         statistics.median(concurrent) <= TARGET_CONCURRENT_RATIO),
        (f"memory per app at {MEMORY_APPS} apps", spread(mib) + " MiB", f"<= {TARGET_MIB_PER_APP} MiB",
         statistics.median(mib) <= TARGET_MIB_PER_APP),
    ]  # fmt: skip
    print(f"== audit targets (issue 23): median (lowest-highest) of {ROUNDS} interleaved rounds")
    print(f"{'target':<40} {'measured':<26} {'bound':<12} verdict")
    for name, measured, target, met in rows:
        print(f"{name:<40} {measured:<26} {target:<12} {verdict(met)}")
    print(f"bound of the 200 ms audit: {spread(bounds)} s; unhandled 429s: {max(limited)}")
    print("load average (1, 5, 15 min) before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f} on {} cores".format(
        *load_before, *load_after, os.cpu_count()))  # fmt: skip
    return all(met for *_, met in rows)


def main() -> int:
    warnings.simplefilter("ignore")
    logging.getLogger().addHandler(logging.NullHandler())  # no stderr notes
    ok = True
    r = seed_latency()
    ok_trips = r["trips"] <= TARGET_ROUND_TRIPS
    ok &= ok_trips
    print("== seed investigation, served sandbox, latency added to every answer (real sleep)")
    print(f"wall at 0 ms                {r['walls'][0]:.2f} s")
    print(f"wall at {LATENCY_MS} ms              {r['walls'][LATENCY_MS]:.2f} s")
    print(
        f"sequential round trips      {r['trips']:.1f}   (target <= {TARGET_ROUND_TRIPS}; "
        f"{r['requests']} requests, the reads need {r['minimum']} round trips)  {'ok' if ok_trips else 'MISSED'}"
    )
    print()
    print(f"== audit of generated fleets ({FLEET}), requests and wall time")
    print(f"{'apps':>5} {'requests':>9} {'per app':>8} {'wall 0 ms':>10} {'wall 200 ms':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        per_app = []
        for apps in (10, 20, 40):
            fleet = fleet_file(Path(tmp), apps)
            quick, slow = audit_once(fleet, 0), audit_once(fleet, LATENCY_MS)
            per_app.append(quick["requests"] / apps)
            print(f"{apps:>5} {quick['requests']:>9} {per_app[-1]:>8.1f} {quick['wall']:>9.2f}s {slow['wall']:>11.2f}s")
        linear = max(per_app) <= 1.15 * min(per_app)
        ok &= linear
        print(f"requests per app flat within 15%: {'ok' if linear else 'MISSED'}")
        print()
        ok &= audit_targets(Path(tmp))
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["memory"]:
        sys.exit(memory_child(sys.argv[2], int(sys.argv[3])))
    if sys.argv[1:2] == ["targets"]:  # only section 3
        warnings.simplefilter("ignore")
        logging.getLogger().addHandler(logging.NullHandler())
        with tempfile.TemporaryDirectory() as tmp:
            sys.exit(0 if audit_targets(Path(tmp)) else 1)
    sys.exit(main())
